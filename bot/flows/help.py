"""What the assistant can do: the reply to anything no other flow takes."""

from __future__ import annotations

from bot.handler.context import Context
from bot.handler.router import MsgType, Router

router = Router("help")

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


@router.message(MsgType("voice"))
async def voice_without_text(ctx: Context) -> str:
    # Voice reaches here only without a Recognition field (speech recognition is off).
    if ctx.text:
        return TEXTS["menu"]
    return TEXTS["voice_off"]


@router.message(MsgType("text"))
async def capabilities(ctx: Context) -> str:
    return TEXTS["menu"]
