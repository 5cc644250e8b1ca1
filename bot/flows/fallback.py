"""Out of scope or not understood: say so plainly, show what we can do, offer a person.

What we can do is listed from the intents' registry (each intent's ``summary``). Not understood
twice in a row (this reply the previous time too, within the conversation's idle time), the
resident goes into the staff's handoff queue (reason ``not_understood``) and is told when a person
will answer. The previous reply is remembered as the mark ``mark:fallback`` (``handler/middlewares.py:recall``).
"""

from __future__ import annotations

from bot.flows.handoff import answer_when
from bot.handler.context import Context
from bot.handler.middlewares import MARK
from bot.handler.router import Intent, Router
from bot.language import intents_registry
from bot.services import handoff

router = Router("fallback")

TEXTS = {
    "fallback": "抱歉，这个我帮不上忙。我能帮您：{summaries}。\n需要工作人员帮忙，请回复“转人工”。",
    "handoff": "抱歉，我还是没弄明白您的意思，已经请工作人员来帮您。{when}",
}

MISSED = "fallback"


@router.message(Intent("fallback"))
async def fallback(ctx: Context) -> str:
    mark = ctx.extra.get("mark")
    if ctx.resident is not None and mark is not None and mark[0] == MISSED:
        now = ctx.rt.clock.now()
        before = str(mark[1].get("text") or "")
        words = "\n".join(t for t in (before, ctx.text) if t)
        await handoff.request(ctx.rt.db, ctx.resident.id, "not_understood", words, now)
        return TEXTS["handoff"].format(when=answer_when(ctx, now))
    if ctx.resident is not None:
        await ctx.fsm.set(MARK + MISSED, text=ctx.text[:200])
    return TEXTS["fallback"].format(summaries="、".join(intents_registry(ctx.rt).summaries()))
