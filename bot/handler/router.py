"""Routers and filters: handlers are small async functions registered with the filters they need.

The dispatcher asks the root router for the first handler whose filters all match, looking at
handlers in phases — conversation state, then menu key, then message/event type, then intent,
then catch-alls — and within a phase in registration order. So a flow adds itself by
registering handlers on its own router; nothing central is edited. A handler may return
:class:`Pass` to let the next matching handler answer instead.

Every message would ask every handler; instead each filter also says, from a message's
:class:`Profile` (type, event, intent, whether a state, a menu key or text is there), whether it could
match at all, and the dispatcher asks only the handlers that could, in the same order; a message
in a conversation step is asked only by the state handlers of that step (``Filter.possible_in``).
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from bot.messages import HandlerResult

if TYPE_CHECKING:
    from bot.handler.context import Context



@dataclass(frozen=True)
class Pass:
    """What a handler returns when the message is not its to answer after all (a conversation step
    finds the resident asking something else): the next matching handler answers, with ``note``
    (e.g. "刚才的反映没有登记") in front of its answer. A handler that passes has usually cleared its
    conversation state first, so state handlers no longer match."""

    note: str | None = None


Handler = Callable[["Context"], Awaitable["HandlerResult | Pass"]]

PHASE_STATE, PHASE_MENU, PHASE_TYPE, PHASE_INTENT, PHASE_ANY = range(5)


class Profile(NamedTuple):
    """The few facts about a message that filters mostly look at, known before any handler runs."""

    msg_type: str
    event: str | None
    state: bool  # a conversation state is set
    menu_key: bool  # a menu key (or scene key) is present
    intent: str | None
    text: bool  # there is text to handle (typed, recognised or clarified)
    # What the previous reply left as its mark (``ctx.extra["mark"]``, taken off the state by the
    # recall middleware before routing), e.g. "reported": a handler that answers only right after
    # such a reply says so in its ``Func``'s ``when`` and is not asked about other messages.
    mark: str | None = None

    @classmethod
    def of(cls, ctx: Context) -> Profile:
        inbound = ctx.inbound
        mark = ctx.extra.get("mark")
        return cls(
            inbound.msg_type,
            inbound.event,
            ctx.state_name is not None,
            ctx.menu_key is not None,
            ctx.intent,
            bool(ctx.text),
            mark[0] if mark else None,
        )


class Filter:
    """A condition on the context. ``phase`` says how specific the filter is."""

    phase = PHASE_ANY

    def __call__(self, ctx: Context) -> bool | Awaitable[bool]:
        raise NotImplementedError

    def possible(self, profile: Profile) -> bool:
        """False only if the filter is false for every message of this profile."""
        return True

    def possible_in(self, state: str) -> bool:
        """False only if the filter is false for every message while the conversation state is
        ``state`` (a :class:`State` filter of other patterns)."""
        return True

    def __and__(self, other: Filter) -> Filter:
        return _And(self, other)


class _And(Filter):
    def __init__(self, *parts: Filter) -> None:
        self.parts = parts
        self.phase = min(p.phase for p in parts)

    def __call__(self, ctx: Context) -> bool | Awaitable[bool]:
        return _matches(self.parts, ctx)

    def possible(self, profile: Profile) -> bool:
        return all(part.possible(profile) for part in self.parts)

    def possible_in(self, state: str) -> bool:
        return all(part.possible_in(state) for part in self.parts)


class _Patterns:
    """Whether a name (a conversation state, a menu key) matches any of some ``fnmatch`` patterns,
    worked out once per name: every stateful message asks each of the thirty-odd state filters,
    and ``fnmatchcase`` costs about a microsecond a pattern even with its compiled pattern cached.
    State names are the flows' own and menu keys the menu's, so few; the memory is emptied when it
    fills all the same (a scene key comes from a QR code's parameter)."""

    MAX_NAMES = 512

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        self._known: dict[str, bool] = {}

    def match(self, name: str) -> bool:
        found = self._known.get(name)
        if found is None:
            if len(self._known) >= self.MAX_NAMES:
                self._known.clear()
            found = self._known[name] = any(fnmatch.fnmatchcase(name, p) for p in self.patterns)
        return found


class State(Filter):
    """The resident's conversation state matches one of the patterns (``complaint:*``).

    Only messages count as the resident's answer: events (a menu click, a location report, a
    subscribe) pass through to their own handlers unless ``events=True``.
    """

    phase = PHASE_STATE

    def __init__(self, *patterns: str, events: bool = False) -> None:
        self.patterns = patterns
        self.events = events
        self._names = _Patterns(patterns)

    def __call__(self, ctx: Context) -> bool:
        state = ctx.state_name
        if state is None or (ctx.inbound.msg_type == "event" and not self.events):
            return False
        return self._names.match(state)

    def possible(self, profile: Profile) -> bool:
        return profile.state and (profile.msg_type != "event" or self.events)

    def possible_in(self, state: str) -> bool:
        return self._names.match(state)


class MenuKey(Filter):
    """A menu CLICK (or a scan/subscribe with a scene key) whose key matches."""

    phase = PHASE_MENU

    def __init__(self, *patterns: str) -> None:
        self.patterns = patterns
        self._keys = _Patterns(patterns)

    def __call__(self, ctx: Context) -> bool:
        key = ctx.menu_key
        return key is not None and self._keys.match(key)

    def possible(self, profile: Profile) -> bool:
        return profile.menu_key


class MsgType(Filter):
    phase = PHASE_TYPE

    def __init__(self, *types: str) -> None:
        self.types = {t.lower() for t in types}

    def __call__(self, ctx: Context) -> bool:
        return ctx.inbound.msg_type in self.types

    def possible(self, profile: Profile) -> bool:
        return profile.msg_type in self.types


class Event(Filter):
    phase = PHASE_TYPE

    def __init__(self, *events: str) -> None:
        self.events = {e.lower() for e in events}

    def __call__(self, ctx: Context) -> bool:
        return ctx.inbound.msg_type == "event" and (ctx.inbound.event or "") in self.events

    def possible(self, profile: Profile) -> bool:
        return profile.msg_type == "event" and (profile.event or "") in self.events


class Intent(Filter):
    """The understood intent of a text (or recognised voice) message."""

    phase = PHASE_INTENT

    def __init__(self, *intents: str) -> None:
        self.intents = set(intents)

    def __call__(self, ctx: Context) -> bool:
        return ctx.intent is not None and ctx.intent in self.intents

    def possible(self, profile: Profile) -> bool:
        return profile.intent is not None and profile.intent in self.intents


class Text(Filter):
    """The text equals one of ``words`` (after trimming), or matches a predicate."""

    phase = PHASE_MENU

    def __init__(self, *words: str, predicate: Callable[[str], bool] | None = None) -> None:
        self.words = {w.strip().lower() for w in words}
        self.predicate = predicate

    def __call__(self, ctx: Context) -> bool:
        text = ctx.text.lower()
        if not text:
            return False
        return text in self.words or (self.predicate is not None and self.predicate(text))

    def possible(self, profile: Profile) -> bool:
        return profile.text


class Func(Filter):
    """Any condition. ``when``, if given, is a cheap test on the message's :class:`Profile` that
    holds whenever ``fn`` could (``lambda p: p.text`` for a condition on the text), so the
    dispatcher can leave the handler out for other messages without calling ``fn``."""

    def __init__(
        self,
        fn: Callable[[Context], bool | Awaitable[bool]],
        phase: int = PHASE_ANY,
        when: Callable[[Profile], bool] | None = None,
    ) -> None:
        self.fn = fn
        self.phase = phase
        self.when = when

    def __call__(self, ctx: Context) -> bool | Awaitable[bool]:
        return self.fn(ctx)

    def possible(self, profile: Profile) -> bool:
        return self.when is None or self.when(profile)


async def _check(flt: Filter, ctx: Context) -> bool:
    result = flt(ctx)
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


def _matches(filters: tuple[Filter, ...], ctx: Context) -> bool | Awaitable[bool]:
    """Whether every filter holds: answered synchronously while the filters are (most are, and
    every handler is asked about every message), else an awaitable for the rest."""
    for i, flt in enumerate(filters):
        result = flt(ctx)
        if result is True:
            continue
        if result is False:
            return False
        if inspect.isawaitable(result):
            return _matches_async(result, filters[i + 1 :], ctx)
        if not result:
            return False
    return True


async def _matches_async(pending: Awaitable[bool], rest: tuple[Filter, ...], ctx: Context) -> bool:
    if not await pending:
        return False
    for flt in rest:
        if not await _check(flt, ctx):
            return False
    return True


@dataclass
class Registered:
    handler: Handler
    filters: tuple[Filter, ...]
    phase: int
    order: int
    name: str
    # Like :meth:`matches`, without a coroutine when every filter is synchronous: a truth value,
    # or an awaitable for one. Chosen once: every text message asks dozens of handlers, so a lone
    # filter is called directly (a ``Func``'s own function) rather than through ``_matches``.
    check: Callable[[Context], Any] = field(init=False, repr=False, compare=False)
    # Only in some conversation states (a State filter): what it takes is the answer to a step's
    # question (the phone a report asked for), whatever the intent engine made of the words.
    step: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        filters = self.filters
        self.step = not self.possible_in("\0")
        if len(filters) != 1:
            self.check = lambda ctx: _matches(filters, ctx)
        elif type(filters[0]) is Func:
            self.check = filters[0].fn
        else:
            self.check = filters[0]

    def possible(self, profile: Profile) -> bool:
        return all(f.possible(profile) for f in self.filters)

    def possible_in(self, state: str) -> bool:
        return all(f.possible_in(state) for f in self.filters)

    async def matches(self, ctx: Context) -> bool:
        result = _matches(self.filters, ctx)
        return result if isinstance(result, bool) else await result


@dataclass
class Router:
    name: str
    _handlers: list[Registered] = field(default_factory=list)
    _children: list[Router] = field(default_factory=list)
    _counter: int = 0

    def message(self, *filters: Filter) -> Callable[[Handler], Handler]:
        """Register the decorated async function for messages matching every filter."""

        def decorate(fn: Handler) -> Handler:
            phase = min((f.phase for f in filters), default=PHASE_ANY)
            self._counter += 1
            self._handlers.append(
                Registered(fn, tuple(filters), phase, self._counter, f"{self.name}.{fn.__name__}")
            )
            return fn

        return decorate

    def include(self, *routers: Router) -> None:
        self._children.extend(routers)

    def walk(self) -> Iterator[Registered]:
        yield from self._handlers
        for child in self._children:
            yield from child.walk()

    def ordered(self) -> list[Registered]:
        # Stable by phase; registration order (depth-first over included routers) breaks ties.
        return sorted(self.walk(), key=lambda r: r.phase)

    async def resolve(self, ctx: Context) -> Registered | None:
        for registered in self.ordered():
            if await registered.matches(ctx):
                return registered
        return None


def describe(router: Router) -> list[dict[str, Any]]:
    """What is registered, for docs and debugging."""
    return [
        {"handler": r.name, "phase": r.phase, "filters": [type(f).__name__ for f in r.filters]}
        for r in router.ordered()
    ]
