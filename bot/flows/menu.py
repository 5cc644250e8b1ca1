"""An intent chosen with nothing a flow of its own can act on yet — a menu click (咨询办事 before any
question), or an intent that has no flow — gets the intent's ``intro`` from the registry
(``intents/data/intents.yml``), e.g. "想办什么事？直接问我就行…".

Menu clicks arrive here as intents too (menu keys are mapped by the registry's ``menu_keys``).
"""

from __future__ import annotations

from bot.handler.context import Context
from bot.handler.router import PHASE_INTENT, Func, Router
from bot.language import intents_registry

router = Router("menu")


def _intro(ctx: Context) -> str | None:
    return intents_registry(ctx.rt).intro(ctx.intent)


@router.message(Func(lambda ctx: _intro(ctx) is not None, phase=PHASE_INTENT, when=lambda p: p.intent is not None))
async def introduce(ctx: Context) -> str:
    return _intro(ctx) or ""
