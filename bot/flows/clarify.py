"""When the intent engine is unsure between a few intents, ask: "您是想：1. … 2. …"."""

from __future__ import annotations

from bot.handler.choices import numbered
from bot.handler.context import Context
from bot.handler.middlewares import CLARIFY_STATE
from bot.handler.router import PHASE_INTENT, Func, Router

router = Router("clarify")

LABELS = {
    "complaint": "反映问题、报修或投诉",
    "coupon": "积分或兑换优惠券",
    "course_booking": "课程、活动报名",
    "query": "咨询办事或政策",
    "smalltalk": "随便聊聊",
    "handoff": "找工作人员",
}

TEXTS = {
    "ask": "我不太确定您的意思，您是想：\n{choices}\n请回复数字。",
}


def _unsure(ctx: Context) -> bool:
    return ctx.decision == "clarify" and bool(getattr(ctx.understanding, "candidates", None))


@router.message(Func(_unsure, phase=PHASE_INTENT, when=lambda p: p.text))  # the engine ran on text
async def ask(ctx: Context) -> str:
    candidates = [label for label, _ in ctx.understanding.candidates if label in LABELS]
    await ctx.fsm.set(CLARIFY_STATE, candidates=candidates, text=ctx.text)
    return TEXTS["ask"].format(choices=numbered([LABELS[c] for c in candidates]))
