"""Menu clicks: each key is routed like its intent; until a flow owns the intent, say how to start."""

from __future__ import annotations

from bot.flows.help import TEXTS as HELP
from bot.handler.context import Context
from bot.handler.router import Event, Intent, Router

router = Router("menu")

TEXTS = {
    "complaint": "请直接告诉我您遇到的问题和位置，比如“3号楼2单元楼道灯不亮”，也可以发照片。",
    "coupon": "积分可以兑换商家优惠券。发送“我的积分”查看余额，发送“积分商城”看看能换什么。",
    "course_booking": "群众夜校有花艺、中医、书法、乐器等课程。发送“有什么课”看看本周的安排。",
    "query": "想办什么事？直接问我就行，比如“居住证明怎么开”“高龄补贴怎么申请”。",
    "handoff": "好的，正在为您联系工作人员，请稍候。工作时间内会尽快回复您。",
    "smalltalk": HELP["menu"],
}


@router.message(Event("click") & Intent(*TEXTS))
async def menu_click(ctx: Context) -> str:
    return TEXTS[ctx.intent or "smalltalk"]
