"""What the assistant can do: the reply to anything no other flow takes."""

from __future__ import annotations

import logging

from bot.handler.context import Context
from bot.handler.router import Func, MsgType, Router

router = Router("help")
log = logging.getLogger("bot.flows.help")

TEXTS = {
    "menu": (
        "您好，我是社区服务小助手，可以帮您：\n"
        "1. 反映问题：路灯不亮、漏水、噪音、电梯故障等，直接说情况就行\n"
        "2. 积分商城：查积分、兑换商家优惠券\n"
        "3. 群众夜校：花艺、中医、书法、乐器等课程报名\n"
        "4. 办事咨询：证明开具、社保医保、补贴办理等\n"
        "需要工作人员帮忙，请回复“转人工”。"
    ),
    "voice_off": "抱歉，我暂时听不清语音，麻烦您打字告诉我，谢谢！",
}


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
    return TEXTS["menu"]
