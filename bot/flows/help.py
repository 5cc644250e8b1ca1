"""What the assistant can do: the reply to anything no other flow takes.

The numbered lines come from the intents' registry (``intents/data/intents.yml``: each intent's
``help``), so a new intent appears here without a code change.
"""

from __future__ import annotations

import logging

from bot.handler.context import Context
from bot.handler.middlewares import MARK, MENU_SHOWN
from bot.handler.router import Func, MsgType, Router, Text
from bot.language import intents_registry
from intents.registry import Registry

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
    global _built
    registry = intents_registry(rt)
    head, line, foot = TEXTS["menu_head"], TEXTS["menu_line"], TEXTS["menu_foot"]
    # Built once per registry (immutable: a reload or another data folder brings a new one) and
    # texts, instead of on every message that gets it.
    built = _built
    if built is not None:
        (b_registry, b_head, b_line, b_foot), text = built
        if b_registry is registry and b_head is head and b_line is line and b_foot is foot:
            return text
    lines = [line.format(n=n, help=text) for n, text in enumerate(registry.help_lines(), 1)]
    text = "\n".join([head, *lines, foot])
    _built = (registry, head, line, foot), text
    return text


_built: tuple[tuple[Registry, str, str, str], str] | None = None  # what the last menu was built from, and it


# Lists and answers a resident may leave without a word: the menu shown after them is what a
# number picks next (a step waiting for an answer — a place, a confirmation — stays).
SUPERSEDED = frozenset({"courses:browse", "courses:detail", "courses:mine", "coupons:browse", "reports:list",
                        "query:choices", "query:feedback", "query:answered"})


async def shown(ctx: Context, reply: str) -> str:
    """``reply``, which ends with the numbered menu: outside any step, a bare number next picks
    its line (``middlewares.understand``), as its button would."""
    if ctx.fsm.state is None or ctx.fsm.state in SUPERSEDED:
        await ctx.fsm.set(MARK + MENU_SHOWN)
    return reply


# What every "回复“帮助”看看我能做什么" asks a resident to send, and other words for the list.
HELP_WORDS = ("帮助", "帮助一下", "求助", "help", "菜单", "功能", "目录", "功能菜单", "使用帮助", "使用说明", "怎么用你",
              "?", "？")


@router.message(Text(*HELP_WORDS))
async def asked_for_help(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    return await shown(ctx, menu(ctx.rt))


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
    return await shown(ctx, menu(ctx.rt))
