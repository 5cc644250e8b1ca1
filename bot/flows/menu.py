"""Complaints, points and courses until their own flows take over: say how to start.

Menu clicks arrive here as intents too (see ``MENU_INTENTS``).
"""

from __future__ import annotations

from bot.handler.context import Context
from bot.handler.router import Intent, Router

router = Router("menu")

TEXTS = {
    "query": "想办什么事？直接问我就行，比如“居住证明怎么开”“高龄补贴怎么申请”。",
}


@router.message(Intent(*TEXTS))
async def introduce(ctx: Context) -> str:
    return TEXTS[ctx.intent or "query"]
