"""The dispatcher: middlewares around the router, as in aiogram 3.

A middleware is ``async def mw(ctx, call_next) -> list[Out]``; it may act before and after the
rest of the chain or answer on its own (takeover). The last link asks the router for a handler.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import texts
from bot.handler.context import Context
from bot.handler.router import Pass, Profile, Registered, Router
from bot.handler.state import FSM, StateRecord
from bot.logmask import mask_openid
from bot.messages import Inbound, Out, as_outs
from bot.runtime import Runtime
from bot.storage.models import Resident

log = logging.getLogger("bot.dispatch")

MAX_PROFILES = 1024

Next = Callable[[Context], Awaitable[list[Out]]]
Middleware = Callable[[Context, Next], Awaitable[list[Out]]]


class Dispatcher:
    def __init__(self, router: Router, middlewares: Sequence[Middleware] = ()) -> None:
        self.router = router
        self.middlewares = tuple(middlewares)
        self._handlers: list[Registered] = router.ordered()
        # The chain middlewares → router, linked once (it takes the context as its argument).
        chain: Next = self._route
        for mw in reversed(self.middlewares):
            chain = _bind(mw, chain)
        self._chain = chain
        self._candidates: dict[Profile, list[Registered]] = {}
        # The same narrowed by the conversation state's name: a resident in a flow's step is asked
        # only by that step's state handlers, not the thirty-odd others of every flow.
        self._in_state: dict[tuple[Profile, str], list[Registered]] = {}

    def candidates(self, ctx: Context) -> list[Registered]:
        """The handlers that could match this message, in routing order (cached per profile and
        conversation state)."""
        profile, state = Profile.of(ctx), ctx.state_name
        return self._of_profile(profile) if state is None else self._in(profile, state)

    def _of_profile(self, profile: Profile) -> list[Registered]:
        found = self._candidates.get(profile)
        if found is None:
            if len(self._candidates) >= MAX_PROFILES:  # unknown event names are unbounded
                self._candidates.clear()
                self._in_state.clear()
            found = self._candidates[profile] = [r for r in self._handlers if r.possible(profile)]
        return found

    def _in(self, profile: Profile, state: str) -> list[Registered]:
        """The profile's handlers without those whose state filters cannot match ``state``."""
        key = (profile, state)
        found = self._in_state.get(key)
        if found is None:
            if len(self._in_state) >= MAX_PROFILES:
                self._in_state.clear()
            found = self._in_state[key] = [r for r in self._of_profile(profile) if r.possible_in(state)]
        return found

    async def _route(self, ctx: Context) -> list[Out]:
        notes: list[str] = []
        profile, state = Profile.of(ctx), ctx.state_name
        handlers = self._of_profile(profile) if state is None else self._in(profile, state)
        i = 0
        while i < len(handlers):
            registered = handlers[i]
            i += 1
            matched = registered.check(ctx)
            if matched is not True:
                if matched is False or matched is None:
                    continue
                # A truth value of another type (a match, a string) or an awaitable for one: only
                # the awaitable needs a coroutine.
                if not (await _truth(matched) if inspect.isawaitable(matched) else matched):
                    continue
            ctx.extra["handler"] = registered.name
            ctx.extra["step_handler"] = registered.step
            result = await registered.handler(ctx)
            if isinstance(result, Pass):  # not this handler's after all: the next one answers
                if result.note:
                    notes.append(result.note)
                if state is not None and ctx.state_name != state:
                    # It changed the state: the rest of the handlers of the message's profile are
                    # asked, as if the list had not been narrowed to the state it came in with.
                    handlers = self._of_profile(profile)
                    i, state = handlers.index(registered) + 1, None
                continue
            return _noted(notes, as_outs(result))
        log.info("no handler for %s/%s", ctx.inbound.msg_type, ctx.inbound.event or "-")
        return _noted(notes, [])

    async def process(self, inbound: Inbound, rt: Runtime, preloaded: Preloaded | None = None) -> Processed:
        """Run one message through the middlewares and a handler. Never raises."""
        ctx: Context | None = None
        try:
            record = preloaded.state if preloaded is not None else None
            if record is None:
                record = await rt.states.get(inbound.openid)
            ctx = Context(inbound=inbound, rt=rt, fsm=FSM(record))
            if preloaded is not None and preloaded.resident is not None:
                ctx.resident = preloaded.resident
            return Processed(await self._chain(ctx), ctx)
        except Exception:
            log.exception(
                "handler failed for %s (%s)", mask_openid(inbound.openid), inbound.key.split(":")[0]
            )
            return Processed([Out.text(texts.ERROR)], ctx)


@dataclass
class Preloaded:
    """What the delivery step already read in its claim transaction (saves round trips)."""

    resident: Resident | None
    state: StateRecord | None
    notices: list[tuple[int, Any]] = field(default_factory=list)  # expired outbox rows: (id, payload)


@dataclass
class Processed:
    """A handled message: the answer, and the context whose pending writes go with it."""

    outs: list[Out]
    ctx: Context | None


async def _truth(matched: Any) -> bool:
    """A filter's answer that is not a plain bool: awaited if it is awaitable, then its truth."""
    if inspect.isawaitable(matched):
        matched = await matched
    return bool(matched)


def _noted(notes: list[str], outs: list[Out]) -> list[Out]:
    """Notes of handlers that passed, in front of the answer (in its first text when there is one)."""
    if not notes:
        return outs
    head = "\n".join(notes)
    if outs and outs[0].kind == "text":
        return [Out.text(f"{head}\n{outs[0].content}"), *outs[1:]]
    return [Out.text(head), *outs]


def _bind(mw: Middleware, nxt: Next) -> Next:
    async def call(ctx: Context) -> list[Out]:
        return await mw(ctx, nxt)

    return call
