"""Out of scope or not understood: say so plainly, show what we can do, offer a person.

What we can do is listed from the intents' registry (each intent's ``summary``)."""

from __future__ import annotations

from bot.handler.context import Context
from bot.handler.router import Intent, Router
from bot.language import intents_registry

router = Router("fallback")

TEXTS = {
    "fallback": "抱歉，这个我帮不上忙。我能帮您：{summaries}。\n需要工作人员帮忙，请回复“转人工”。",
}


@router.message(Intent("fallback"))
async def fallback(ctx: Context) -> str:
    return TEXTS["fallback"].format(summaries="、".join(intents_registry(ctx.rt).summaries()))
