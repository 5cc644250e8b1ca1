"""Ticket updates the resident could not be pushed (WeChat's 48-hour window had closed) are shown
once, in front of the answer to their next message.

Registered first in ``FLOWS``: the filter matches only when such updates are waiting; the handler
marks them shown, then lets the flow that would otherwise have answered answer, and puts the
updates before that answer.
"""

from __future__ import annotations

import importlib

from bot.handler.context import Context
from bot.handler.dispatcher import as_outs
from bot.handler.router import PHASE_STATE, Func, Router
from bot.handler.types import Out
from bot.services import tickets as svc

router = Router("ticket_notices")

TEXTS = {"head": "{text}"}

_rest: Router | None = None


def _others() -> Router:
    """Every other flow, in ``FLOWS`` order."""
    global _rest
    if _rest is None:
        from bot.flows import FLOWS

        rest = Router("after_ticket_notices")
        for name in FLOWS:
            if name != __name__:
                rest.include(importlib.import_module(name).router)
        _rest = rest
    return _rest


async def _waiting(ctx: Context) -> bool:
    if ctx.resident is None or ctx.inbound.msg_type == "event":
        return False
    async with ctx.rt.db.session() as session:
        return await svc.has_pending_notices(session, ctx.resident.id)


@router.message(Func(_waiting, phase=PHASE_STATE))
async def show_notices(ctx: Context) -> list[Out]:
    assert ctx.resident is not None
    async with ctx.rt.db.transaction() as session:
        notices = await svc.pending_notices(session, ctx.resident.id, ctx.rt.clock.now())
    registered = await _others().resolve(ctx)
    rest = as_outs(await registered.handler(ctx)) if registered is not None else []
    shown = [TEXTS["head"].format(text=t) for t in notices]
    if rest and rest[0].kind == "text":  # one passive reply: the updates, then the answer
        return [Out.text("\n\n".join([*shown, rest[0].content])), *rest[1:]]
    return [Out.text(t) for t in shown] + rest
