"""When the intent engine is unsure between a few intents, ask: "您是想：1. … 2. …".

The choices are the intents' ``label`` in the registry (``intents/data/intents.yml``)."""

from __future__ import annotations

from bot.flows.query import answer_if_known
from bot.handler.choices import numbered
from bot.handler.context import Context
from bot.handler.middlewares import CLARIFY_STATE
from bot.handler.router import PHASE_INTENT, Func, Router
from bot.language import intents_registry

router = Router("clarify")

TEXTS = {
    "ask": "我不太确定您的意思，您是想：\n{choices}\n请回复数字。",
}


def _unsure(ctx: Context) -> bool:
    return ctx.decision == "clarify" and bool(getattr(ctx.understanding, "candidates", None))


@router.message(Func(_unsure, phase=PHASE_INTENT, when=lambda p: p.text))  # the engine ran on text
async def ask(ctx: Context) -> str:
    answered = await answer_if_known(ctx)
    if answered is not None:
        return answered
    return await ask_between(ctx, [label for label, _ in ctx.understanding.candidates])


async def ask_between(ctx: Context, intents: list[str]) -> str:
    """The clarifying question among ``intents`` (those with a label), for the text being handled."""
    labels = intents_registry(ctx.rt).labels()
    candidates = [label for label in dict.fromkeys(intents) if label in labels]
    await ctx.fsm.set(CLARIFY_STATE, candidates=candidates, text=ctx.text)
    return TEXTS["ask"].format(choices=numbered([labels[c] for c in candidates]))
