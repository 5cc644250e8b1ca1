"""What the assistant can do: the reply to anything no other flow takes.

The numbered lines come from the intents' registry (``intents/data/intents.yml``: each intent's
``help``), so a new intent appears here without a code change.
"""

from __future__ import annotations

import logging

from bot.handler.context import Context
from bot.handler.router import Func, MsgType, Router
from bot.language import intents_registry

router = Router("help")
log = logging.getLogger("bot.flows.help")

TEXTS = {
    "menu_head": "您好，我是社区服务小助手，可以帮您：",
    "menu_line": "{n}. {help}",
    "menu_foot": "需要工作人员帮忙，请回复“转人工”。",
    "voice_off": "抱歉，我暂时听不清语音，麻烦您打字告诉我，谢谢！",
}


def menu(rt: object) -> str:
    """"您好，我是社区服务小助手，可以帮您：1. … 2. …" for the intents of the running engine."""
    lines = [TEXTS["menu_line"].format(n=n, help=text) for n, text in enumerate(intents_registry(rt).help_lines(), 1)]
    return "\n".join([TEXTS["menu_head"], *lines, TEXTS["menu_foot"]])


@router.message(MsgType("voice"), Func(lambda ctx: not ctx.text))
async def voice_without_text(ctx: Context) -> str:
    # Voice without a Recognition field: speech recognition is off in the 公众号 settings.
    log.warning("voice message without Recognition: enable 语音识别 in the 公众号 settings")
    return TEXTS["voice_off"]


@router.message(
    Func(lambda ctx: ctx.inbound.msg_type in ("text", "voice"), when=lambda p: p.msg_type in ("text", "voice"))
)
async def capabilities(ctx: Context) -> str:
    """Any text no other handler took (the last catch-all)."""
    return menu(ctx.rt)
