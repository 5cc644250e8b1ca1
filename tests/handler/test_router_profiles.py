"""The dispatcher asks only the handlers whose filters could match a message's profile: a handler
left out must be one whose filters are false. Checked for every handler of the product's router
over a grid of message types, events, menu keys, states, intents and texts."""

from __future__ import annotations

import itertools
from typing import Any

from bot.flows import build_router
from bot.handler.context import Context
from bot.handler.dispatcher import Dispatcher
from bot.handler.router import Intent, Profile, Router, State
from bot.handler.state import FSM, StateRecord
from bot.messages import Inbound
from intents.registry import packaged_registry


def _filters(router: Router) -> list[Any]:
    out = []
    for registered in router.walk():
        stack = list(registered.filters)
        while stack:
            flt = stack.pop()
            stack.extend(getattr(flt, "parts", ()))
            out.append(flt)
    return out


def _grid(router: Router) -> list[tuple[Inbound, str | None, str | None]]:
    filters = _filters(router)
    states = {None} | {p.replace("*", "x") for f in filters if isinstance(f, State) for p in f.patterns}
    intents = {None} | {i for f in filters if isinstance(f, Intent) for i in f.intents}
    kinds: list[dict[str, Any]] = [
        {"msg_type": t} for t in ("text", "voice", "image", "video", "location", "link")
    ]
    events = ["subscribe", "unsubscribe", "scan", "location", "view", "templatesendjobfinish", "unheard_of"]
    kinds += [{"msg_type": "event", "event": e} for e in events]
    kinds += [{"msg_type": "event", "event": "subscribe", "event_key": "qrscene_building:3"}]
    menu_keys = [*packaged_registry().menu_intents(), "UNKNOWN"]
    kinds += [{"msg_type": "event", "event": "click", "event_key": k} for k in menu_keys]
    texts = ["", "你好", "是", "1", "下一页", "我的券", "积分商城", "书法课", "我的工单"]
    grid = []
    for kind, text in itertools.product(kinds, texts):
        if kind["msg_type"] == "event" and text:
            continue
        inbound = Inbound(openid="o_grid", account="gh_x", create_time=1, content=text or None, **kind)
        grid.extend((inbound, state, intent) for state, intent in itertools.product(states, intents))
    return grid


# What a previous reply may have left as its mark (none; another flow's; the emergency's, for which
# the emergency's own handlers are asked; those after which only some handlers answer: a report
# filed, the reports listed, a question of a new phone or of a withdrawal, 转人工, a booking).
MARKS = (None, "menu", "urgent", "filed", "followed", "phone", "withdraw", "handoff", "course_booked")


async def test_every_handler_left_out_could_not_have_matched() -> None:
    router = build_router()
    dispatcher = Dispatcher(router)
    handlers = router.ordered()
    checked = 0
    for (inbound, state, intent), mark in itertools.product(_grid(router), MARKS):
        if mark is not None and inbound.msg_type not in ("text", "location"):
            continue  # (what may follow a mark: the grid's other kinds are checked without one)
        fsm = FSM(StateRecord(state, {}))
        ctx = Context(inbound=inbound, rt=None, fsm=fsm, intent=intent)  # type: ignore[arg-type]
        if mark is not None:
            ctx.extra["mark"] = (mark, {})
        profile = Profile.of(ctx)
        assert profile.mark == mark
        candidates = {id(r) for r in dispatcher.candidates(ctx)}
        for registered in handlers:
            if id(registered) in candidates:
                continue
            assert not await registered.matches(ctx), (registered.name, profile)
            checked += 1
    assert checked > 10_000  # the grid reached the handlers it should skip


async def test_the_emergencys_handlers_are_asked_only_after_its_registration() -> None:
    """Right after an emergency's registration (its mark) a nod or a phone number goes to the
    emergency's handlers; after any other reply they are not even asked."""
    dispatcher = Dispatcher(build_router())
    names = {}
    for mark in MARKS:
        inbound = Inbound(openid="o_mark", account="gh_x", msg_type="text", create_time=1, msg_id=1, content="好的")
        ctx = Context(inbound=inbound, rt=None, fsm=FSM(StateRecord()))  # type: ignore[arg-type]
        if mark is not None:
            ctx.extra["mark"] = (mark, {})
        names[mark] = {r.name for r in dispatcher.candidates(ctx)}
    after = {"urgent.keep_reported", "urgent.contact", "urgent.nod", "urgent.update", "urgent.place_later",
             "urgent.asked_after"}
    assert after <= names["urgent"]
    assert not after & names[None] and not after & names["menu"]


def test_state_and_menu_patterns_answer_as_fnmatch_and_stay_bounded() -> None:
    """State and MenuKey filters remember each name's answer: the same as fnmatchcase's, every
    time, and no more than MAX_NAMES names at once."""
    import fnmatch

    from bot.handler.router import MenuKey, _Patterns

    router = build_router()
    filters = [f for f in _filters(router) if isinstance(f, State | MenuKey)]
    names = {p.replace("*", "x") for f in filters for p in f.patterns} | {
        "complaint:", "complaint", "xcomplaint:where", "courses:browse:2", "query:feedback", "", "COURSES:BROWSE",
    }
    for _ in range(2):  # worked out, then remembered
        for flt in filters:
            memo = flt._names if isinstance(flt, State) else flt._keys
            for name in sorted(names):
                assert memo.match(name) == any(fnmatch.fnmatchcase(name, p) for p in flt.patterns), (flt.patterns, name)
    patterns = _Patterns(("building:*",))
    for i in range(_Patterns.MAX_NAMES * 3):
        assert patterns.match(f"building:{i}") and not patterns.match(f"other:{i}")
        assert len(patterns._known) <= _Patterns.MAX_NAMES


async def test_a_handler_that_moves_the_state_and_passes_is_followed_by_the_new_states_handler() -> None:
    """The dispatcher narrows a message's handlers to its conversation state; a handler that moves
    the conversation to another step and passes lets that step's handler answer, as before."""
    from bot.handler.dispatcher import Preloaded
    from bot.handler.router import Pass

    router = Router("moves")

    @router.message(State("a:one"))
    async def leaves(ctx: Context) -> Pass:
        await ctx.fsm.set("b:two")
        return Pass("先记下了")

    @router.message(State("b:two"))
    async def second(ctx: Context) -> str:
        return "第二步"

    @router.message()
    async def anything(ctx: Context) -> str:
        return "其他"

    dispatcher = Dispatcher(router)
    inbound = Inbound(openid="o_moves", account="gh_x", msg_type="text", create_time=1, msg_id=1, content="好")
    done = await dispatcher.process(inbound, None, Preloaded(None, StateRecord("a:one", {})))  # type: ignore[arg-type]
    assert [o.content for o in done.outs] == ["先记下了\n第二步"]
    assert [r.name for r in dispatcher.candidates(done.ctx)] == ["moves.second", "moves.anything"]  # type: ignore[arg-type]


async def test_a_marks_own_handlers_are_asked_only_after_it() -> None:
    """A number or a word right after a reply that left a mark (a report filed, the reports listed,
    转人工 …) may answer that reply, so that mark's handlers are asked; after any other reply they
    are not even asked."""
    dispatcher = Dispatcher(build_router())
    own = {
        "filed": {"complaint.contact_after_filing", "complaint.place_after_filing"},
        "followed": {"reports.again", "reports.all_shown"},
        "phone": {"reports.new_phone"},
        "withdraw": {"reports.withdraw_answer"},
        "handoff": {"handoff.phone_for_staff"},
        "course_booked": {"courses.booked_class_fact"},
    }
    for mark, names in own.items():
        for text in ("13800000017", "好的"):
            asked = {}
            for other in (None, "menu", mark):
                inbound = Inbound(openid="o_mark", account="gh_x", msg_type="text", create_time=1, msg_id=1,
                                  content=text)
                ctx = Context(inbound=inbound, rt=None, fsm=FSM(StateRecord()))  # type: ignore[arg-type]
                if other is not None:
                    ctx.extra["mark"] = (other, {})
                asked[other] = {r.name for r in dispatcher.candidates(ctx)}
            assert names <= asked[mark], mark
            assert not names & asked[None] and not names & asked["menu"], mark
