"""The standard middlewares, in order: resident, log, takeover, recall, understand.

(Exactly-once delivery, the dedup step, wraps the whole dispatcher: see ``delivery.py``.)
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from bot.handler.choices import parse_choice
from bot.handler.context import Context
from bot.handler.dispatcher import Middleware, Next
from bot.handler.journal import message_row
from bot.handler.rewrite import as_meant
from bot.language import intents_registry
from bot.logmask import mask_openid
from bot.messages import Out
from bot.metrics import count_message
from bot.services import residents
from bot.storage.models import Resident

log = logging.getLogger("bot.messages")


# The last-inbound time is kept to the minute: a conversation's messages do not each rewrite the
# resident's row.
LAST_INBOUND_RESOLUTION = timedelta(minutes=1)


async def resident(ctx: Context, nxt: Next) -> list[Out]:
    """Load (or create) the resident by openid; keep subscription and the last-inbound time (the
    48-hour window) current.

    Only a first contact or a (un)subscribe writes here; the last-inbound time is written with
    the reply, in the same transaction, when it moved by a minute or more.
    """
    inbound = ctx.inbound
    now = ctx.rt.clock.now()
    row = ctx.resident  # usually read already, in the delivery's claim transaction
    if row is None:
        async with ctx.rt.db.session() as session:
            row = await session.scalar(select(Resident).where(Resident.openid == inbound.openid))
    changes: dict[str, object] = {}
    if inbound.event == "subscribe":
        changes = {"subscribed": True, "subscribed_at": now, "unsubscribed_at": None}
    elif inbound.event == "unsubscribe":
        changes = {"subscribed": False, "unsubscribed_at": now}
    elif row is not None and not row.subscribed and inbound.msg_type != "event":
        changes = {"subscribed": True}  # writing to us means they follow the account again
    if row is None or changes:
        # Only the subscription's columns and the last-inbound time are written (a column-targeted
        # UPDATE, not the row as read: a first ticket's reported_at set meanwhile stays).
        row = await residents.arrived(ctx.rt.db, ctx.openid, changes, now)
    ctx.resident = row
    last = row.last_inbound_at
    if last is None or not timedelta(0) <= now - last < LAST_INBOUND_RESOLUTION:
        ctx.last_inbound_at = now  # written with the reply
    return await nxt(ctx)


async def log_message(ctx: Context, nxt: Next) -> list[Out]:
    """Log the inbound message (with intent and confidence when known), whatever happens next.

    The row is written with the reply, in one transaction.
    """
    try:
        return await nxt(ctx)
    finally:
        inbound = ctx.inbound
        if _step_answer(ctx):
            # "确认", "更多", "确认取消" answering the bot's own question: taken by that step, so
            # not "not understood" in the log, the dashboard or the operators' review queue.
            ctx.intent, ctx.confidence = None, None
        if ctx.resident is not None:
            ctx.log_rows.append(
                message_row(
                    ctx.resident.id,
                    "in",
                    inbound.msg_type,
                    ctx.rt.clock.now(),
                    event=inbound.event,
                    content=inbound.content,
                    payload=inbound.raw,
                    intent=ctx.intent,
                    confidence=ctx.confidence,
                    dedup_key=inbound.key,
                )
            )
        count_message(ctx.intent, ctx.extra.get("handler"))
        if log.isEnabledFor(logging.INFO):  # every message passes here: build nothing unless logged
            log.info(
                "in %s %s%s intent=%s conf=%s handler=%s",
                mask_openid(inbound.openid),
                inbound.msg_type,
                f"/{inbound.event}" if inbound.event else "",
                ctx.intent or "-",
                f"{ctx.confidence:.2f}" if ctx.confidence is not None else "-",
                ctx.extra.get("handler", "-"),
            )


def _step_answer(ctx: Context) -> bool:
    """The engine found no intent in a message that a conversation step's handler took, or an unsure
    one ("不留" at the phone question: small talk below the threshold) that a handler of that step
    took as its answer."""
    handler = ctx.extra.get("handler")
    if not ctx.extra.get("in_step") or not isinstance(handler, str) or handler.startswith("fallback."):
        return False
    return ctx.intent == "fallback" or (ctx.decision != "accept" and bool(ctx.extra.get("step_handler")))


async def takeover(ctx: Context, nxt: Next) -> list[Out]:
    """While a staff member has taken over the conversation the bot stays silent."""
    if ctx.resident is not None and ctx.resident.takeover_by:
        ctx.extra["handler"] = "takeover"
        return []
    return await nxt(ctx)


MARK = "mark:"
# ctx.extra key: (what, data) of a mark to leave after the answer (see recall).
MARK_AFTER = "mark_after"


# ctx.extra key (and key of a state's data): a conversation step put aside while the resident asks
# something else (see recall).
PARKED = "parked"
PARKED_MARK = "parked"
# The mark of a reply that ended with the numbered list of what the assistant does (bot/flows/help.py).
MENU_SHOWN = "menu"
# Reminders of a parked step before it is dropped (with its ``dropped`` note).
MAX_REMINDERS = 3
# Steps that ask nothing the resident must answer (an answer's "有帮助吗？", what a follow-up is about):
# a reply that starts one still carries the reminder of a parked step. Flows add theirs.
OPTIONAL_STEPS: set[str] = set()


async def recall(ctx: Context, nxt: Next) -> list[Out]:
    """A state named ``mark:<what>`` is no conversation step: a handler left it to remember what
    its reply was (``mark:fallback``: "I did not understand"). It is taken off before routing —
    into ``ctx.extra["mark"]`` as ``(what, data)`` — so the next message routes as if there were
    no state, and it is gone after that message unless the handler sets it again. So a mark says
    what the previous reply was, within the state's idle time (two hours).

    A step the resident turned away from in the middle (一个报修 half told, then "等一下 我先问问积分")
    can be put aside rather than dropped: its handler leaves ``ctx.extra[PARKED]`` =
    ``{"state", "data", "reminder", "dropped"}`` and passes the message on. The parked step rides
    along in the state's data (under ``parked``) whatever is answered next; each reply given
    outside any step ends with its ``reminder`` ("刚才反映的问题还没提交，要继续吗？"), and the flow's
    own handlers take it up again (``ctx.extra[PARKED]`` before routing) or drop it (popping it).
    After ``MAX_REMINDERS`` reminders it is dropped, with its ``dropped`` note."""
    state = ctx.fsm.state
    parked = ctx.fsm.data.get(PARKED) if state is not None else None
    if isinstance(parked, dict):
        ctx.extra[PARKED] = parked
    if state is not None and state.startswith(MARK):
        data = {k: v for k, v in ctx.fsm.data.items() if k != PARKED}
        ctx.extra["mark"] = (state[len(MARK):], data)
        await ctx.fsm.clear()
    outs = await nxt(ctx)
    after = ctx.extra.pop(MARK_AFTER, None)
    if after is not None and ctx.fsm.state is None:
        # A handler that passed the message on asked for a mark once it is answered: left unless
        # the answering handler started a step of its own.
        what, data = after
        await ctx.fsm.set(MARK + what, **data)
    parked = ctx.extra.get(PARKED)
    if isinstance(parked, dict):
        outs = await _keep_parked(ctx, parked, outs)
    else:
        ctx.fsm.forget(PARKED)  # taken up again or dropped by a handler
    return outs


async def _keep_parked(ctx: Context, parked: dict[str, object], outs: list[Out]) -> list[Out]:
    """A parked step after the message was answered: kept with the state the answer left, and the
    resident reminded of it unless the answer asks a question of its own (a step it started or
    moved: a step merely left standing, such as a list shown earlier, does not count) or is an
    emergency's."""
    state = ctx.fsm.state
    if state is not None and not state.startswith(MARK) and ctx.fsm.changed and state not in OPTIONAL_STEPS:
        if ctx.fsm.data.get(PARKED) != parked:
            ctx.fsm.fill(**{PARKED: parked})  # rides along in the step's data
        return outs
    if not outs or ctx.inbound.msg_type == "event" or str(ctx.extra.get("handler", "")).startswith("urgent."):
        if state is None:
            await ctx.fsm.set(MARK + PARKED_MARK, **{PARKED: parked})
        elif ctx.fsm.data.get(PARKED) != parked:
            ctx.fsm.fill(**{PARKED: parked})
        return outs
    reminded = int(str(parked.get("reminded", 0)))
    if reminded >= MAX_REMINDERS:
        ctx.extra.pop(PARKED, None)
        ctx.fsm.forget(PARKED)
        return _appended(outs, str(parked.get("dropped") or ""))
    parked = {**parked, "reminded": reminded + 1}
    if state is None:
        await ctx.fsm.set(MARK + PARKED_MARK, **{PARKED: parked})
    else:
        ctx.fsm.fill(**{PARKED: parked})
    return _appended(outs, str(parked.get("reminder") or ""))


def _appended(outs: list[Out], line: str) -> list[Out]:
    """``line`` after the last text of the answer (a text of its own when it has none)."""
    if not line:
        return outs
    for i in range(len(outs) - 1, -1, -1):
        if outs[i].kind == "text":
            return [*outs[:i], Out.text(f"{outs[i].content}\n\n{line}"), *outs[i + 1:]]
    return [*outs, Out.text(line)]


CLARIFY_STATE = "clarify:intent"


async def understand(ctx: Context, nxt: Next) -> list[Out]:
    """Classify text (and recognised voice); map menu keys; take the answer to a clarifying question.

    After "您是想：1. … 2. …" a number picks the intent and the original message is handled as
    if it had said so; anything else is understood afresh.
    """
    language = ctx.rt.language
    mark = ctx.extra.get("mark")
    if mark is not None and mark[0] == MENU_SHOWN and ctx.text:
        # Right after the numbered list of what the assistant does (help, the greeting): a number
        # picks that line, as its menu button would (nothing said yet of what it is about).
        listed = intents_registry(ctx.rt).help_intents()
        picked = parse_choice(ctx.text, len(listed))
        if picked is not None:
            ctx.text_override = ""
            ctx.intent, ctx.confidence = listed[picked - 1].name, 1.0
            return await nxt(ctx)
    if ctx.inbound.event == "click" and ctx.menu_key:
        # Menu CLICK keys are routed like intents: the registry's menu_keys (bot/wechat/menu.yml defines the keys).
        intent = intents_registry(ctx.rt).menu_intents().get(ctx.menu_key)
        if intent is not None:
            ctx.intent, ctx.confidence = intent, 1.0
            return await nxt(ctx)
    if ctx.fsm.state == CLARIFY_STATE:
        candidates = list(ctx.fsm.data.get("candidates", []))
        original = str(ctx.fsm.data.get("text", ""))
        choice = parse_choice(ctx.text, len(candidates))
        await ctx.fsm.clear()
        if choice is not None and original:
            ctx.text_override = original
            ctx.intent, ctx.confidence = str(candidates[choice - 1]), 1.0
            ctx.extra["clarified"] = True
            if language is not None:
                ctx.understanding = language.intents.classify(original)
            return await nxt(ctx)
    meant = as_meant(ctx.text)
    if meant != ctx.text:
        ctx.text_override = meant  # 理发的卷 → 理发的券, 等一下 我先问问积分 → 积分 (bot/handler/rewrite.py)
    if ctx.text and language is not None:
        ctx.extra["in_step"] = ctx.fsm.state is not None  # an answer to the bot's own question
        result = language.intents.classify(ctx.text)
        ctx.understanding = result
        ctx.intent = result.intent if result.decision != "clarify" else result.raw_intent
        ctx.confidence = float(result.confidence)
    return await nxt(ctx)


STANDARD: tuple[Middleware, ...] = (resident, log_message, takeover, recall, understand)
