"""Out of scope or not understood: say so plainly, show what we can do, offer a person."""

from __future__ import annotations

from bot.handler.context import Context
from bot.handler.router import Intent, Router

router = Router("fallback")

TEXTS = {
    "fallback": (
        "抱歉，这个我帮不上忙。我能帮您：反映小区问题、查积分换优惠券、报名群众夜校课程、咨询社区办事。\n"
        "需要工作人员帮忙，请回复“转人工”。"
    ),
}


@router.message(Intent("fallback"))
async def fallback(ctx: Context) -> str:
    return TEXTS["fallback"]
