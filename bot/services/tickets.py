"""Tickets: numbers, the state machine, the timeline, pushes to the resident, duplicates, rating.

Every function works inside the caller's transaction (``session``) and takes ``now`` from the
caller's clock. Creating a ticket and writing its timeline are synchronous underneath: a ticket is
made in Core statements on a connection (``create_ticket_in``: the row inserted returning its id,
its first timeline entries in one multi-row INSERT, the ticket handed back as written, ``Made``), a
later entry through an ORM :class:`Session` (``record_sync``). The chat runs them on the database's
synchronous connection in one hop (``services/reports.py``), the async API through
``AsyncSession.run_sync`` (``create_ticket`` loads the made ticket into its session). Each status change appends a :class:`TicketEvent` and, for public changes, queues a
customer-service message to the resident in the same transaction (outbox). When WeChat's 48-hour
window is closed the outbox marks that message ``expired``, and the delivery step shows it in front
of the resident's next passive reply (``bot/handler/delivery.py``).

States::

    submitted → dispatched → accepted → in_progress → answered → closed
    plus reopened, escalated, rejected (with a reason)
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, Protocol, TypeVar, cast

import numpy
from rapidfuzz import fuzz, process
from sqlalchemy import (
    ARRAY,
    Boolean,
    Connection,
    String,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import NO_VALUE, Session

from bot.messages import Out
from bot.services import points, staff_notices
from bot.services.dispatch import Decision, Rules
from bot.services.notify import enqueue_sync
from bot.storage.db import dialect_insert, json_dumps
from bot.storage.models import ConsoleUser, Resident, StaffNotification, Ticket, TicketCounter, TicketEvent
from bot.storage.prepared import Prepared

log = logging.getLogger(__name__)

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
STATUSES = (
    "submitted",
    "dispatched",
    "accepted",
    "in_progress",
    "answered",
    "closed",
    "reopened",
    "escalated",
    "rejected",
)
# Staff's first move on a ticket (``tickets.responded_at``, the dashboard's response time).
RESPONSE_ACTIONS = frozenset({"accept", "start", "answer", "reject"})
OPEN_STATUSES = ("submitted", "dispatched", "accepted", "in_progress", "reopened", "escalated")
# Statuses in which someone is working on the ticket: the deadline's reminder goes to its handler.
REMINDABLE = ("dispatched", "accepted", "in_progress", "reopened")
RATINGS = {"满意": "satisfied", "基本满意": "basic", "不满意": "unsatisfied"}
RATING_LABELS = {v: k for k, v in RATINGS.items()}

# action → (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "dispatch": (frozenset({"submitted", "reopened", "escalated", "dispatched"}), "dispatched"),
    "accept": (frozenset({"dispatched", "reopened", "escalated"}), "accepted"),
    "start": (frozenset({"accepted", "dispatched", "reopened", "escalated"}), "in_progress"),
    "answer": (frozenset({"accepted", "in_progress", "reopened", "escalated", "dispatched"}), "answered"),
    "reject": (frozenset({"submitted", "dispatched", "escalated", "reopened"}), "rejected"),
    "reopen": (frozenset({"answered", "closed", "rejected"}), "reopened"),
    "escalate": (frozenset(OPEN_STATUSES) - {"escalated"}, "escalated"),
    "close": (frozenset({"answered", "rejected"}), "closed"),
}

STATUS_LABELS = {
    "submitted": "已受理，等待分派",
    "dispatched": "已派给{department}",
    "accepted": "{department}已接单",
    "in_progress": "正在处理",
    "answered": "已办结，等待您评价",
    "closed": "已完结",
    "reopened": "已重新办理",
    "escalated": "已上报领导督办",
    "rejected": "未能受理",
}

TEXTS = {
    "update": "您的诉求 {number} 有新进展：{what}",
    "update_note": "您的诉求 {number} 有新进展：{what}。\n工作人员说明：{note}",
    "answered": "您的诉求 {number} 已办结：{resolution}\n请回复“满意”“基本满意”或“不满意”评价（也可以回复数字 1、2、3），不满意可以直接说原因。",
    "rejected": "您的诉求 {number} 未能受理：{reason}",
    "comment": "您的诉求 {number} 有新回复：{note}",
    "closed": "您的诉求 {number} 已完结，谢谢您的支持。",
    "reopened": "您的诉求 {number} 已重新办理，我们会尽快处理。",
}


class TicketError(Exception):
    """A refused change (illegal transition, missing field); ``code`` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def local_day(now: datetime) -> str:
    return now.astimezone(CHINA).strftime("%Y%m%d")


async def next_number(session: AsyncSession, now: datetime) -> str:
    """``GD<YYYYMMDD>-<NNNN>``: an atomic per-day counter (INSERT … ON CONFLICT DO UPDATE … RETURNING)."""
    return await session.run_sync(next_number_sync, now)


_COUNTERS: dict[str, Prepared] = {}  # dialect name → the counter's upsert, built once (not per ticket)


def next_number_sync(session: Session, now: datetime) -> str:
    return next_number_in(session.connection(), now)


def next_number_in(connection: Connection, now: datetime) -> str:
    """:func:`next_number` on a synchronous connection, in its transaction."""
    day = local_day(now)
    dialect = connection.dialect.name
    stmt = _COUNTERS.get(dialect)
    if stmt is None:
        stmt = _COUNTERS[dialect] = Prepared(
            dialect_insert(dialect, TicketCounter)
            .values(day=bindparam("day"), value=1)
            .on_conflict_do_update(index_elements=[TicketCounter.day], set_={"value": TicketCounter.value + 1})
            .returning(TicketCounter.value)
        )
    (value,) = stmt.scalars(connection, {"day": day})
    return f"GD{day}-{value:04d}"


def status_label(ticket: TicketFields) -> str:
    return STATUS_LABELS.get(ticket.status, ticket.status).format(department=ticket.department or "相关部门")


async def record(
    session: AsyncSession,
    ticket: Ticket,
    action: str,
    *,
    actor: str,
    now: datetime,
    note: str | None = None,
    public: bool = True,
    from_status: str | None = None,
    data: dict[str, Any] | None = None,
    push: str | None = None,
) -> TicketEvent:
    """Append a timeline event; with ``push`` (a text), queue it to the resident in this transaction."""
    return await session.run_sync(
        lambda sync: record_sync(sync, ticket, action, actor=actor, now=now, note=note, public=public,
                                 from_status=from_status, data=data, push=push)
    )


def _event_values(
    ticket_id: int, action: str, *, actor: str, now: datetime, note: str | None = None, public: bool = True,
    from_status: str | None = None, to_status: str | None = None, data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A timeline entry's columns."""
    return {
        "ticket_id": ticket_id,
        "at": now,
        "actor": actor[:100],
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "note": note,
        "public": public,
        "data": data or {},
    }


def _event(
    ticket: Ticket, action: str, *, actor: str, now: datetime, note: str | None = None, public: bool = True,
    from_status: str | None = None, to_status: str | None = None, data: dict[str, Any] | None = None,
) -> TicketEvent:
    return TicketEvent(**_event_values(ticket.id, action, actor=actor, now=now, note=note, public=public,
                                       from_status=from_status, to_status=to_status, data=data))


def record_sync(
    session: Session,
    ticket: Ticket,
    action: str,
    *,
    actor: str,
    now: datetime,
    note: str | None = None,
    public: bool = True,
    from_status: str | None = None,
    data: dict[str, Any] | None = None,
    push: str | None = None,
) -> TicketEvent:
    """:func:`record` on a synchronous session (the event is flushed: it has its id).

    A resident who unfollowed the account is sent nothing (WeChat refuses it, 43004): the event is
    recorded as ever, with ``data["undelivered"] = "unsubscribed"``, which staff are shown."""
    openid: str | None = None
    if push and public and ticket.resident_id is not None:
        row = session.execute(
            select(Resident.openid, Resident.subscribed).where(Resident.id == ticket.resident_id)).first()
        if row is not None and row.subscribed is False:
            data = {**(data or {}), "undelivered": "unsubscribed"}
        elif row is not None:
            openid = row.openid
    event = _event(ticket, action, actor=actor, now=now, note=note, public=public, from_status=from_status,
                   to_status=ticket.status if from_status is not None else None, data=data)
    session.add(event)
    session.flush()
    if push and public and ticket.resident_id is not None:
        if openid:
            key = f"ticket:{ticket.id}:event:{event.id}"
            enqueue_sync(session, openid, [Out.text(push)], dedup_key=key, not_before=now,
                         template=("ticket", template_fields(ticket, push, now)))
            event.push_key = f"{key}#0"
    return event


def template_fields(ticket: Ticket, push: str, now: datetime) -> dict[str, str]:
    """The fields of the template notification sent when the 48-hour window has closed."""
    remark = push if len(push) <= 100 else push[:99] + "…"
    return {
        "number": ticket.number,
        "status": status_label(ticket)[:20],
        "time": now.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
        "remark": remark,
    }


class TicketFields(Protocol):
    """What a report's snapshot reads of a ticket: a :class:`Ticket`, a row of
    :data:`TICKET_COLUMNS` or a :class:`Made` ticket."""

    @property
    def id(self) -> int: ...
    @property
    def number(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def urgency(self) -> str: ...
    @property
    def department(self) -> str | None: ...
    @property
    def assignee(self) -> str | None: ...
    @property
    def deadline(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def resolution(self) -> str | None: ...
    @property
    def reject_reason(self) -> str | None: ...
    @property
    def resident_id(self) -> int | None: ...
    @property
    def duplicate_of_id(self) -> int | None: ...
    @property
    def category(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Made:
    """A ticket just made, as written (its row is not read back: the values are the caller's)."""

    id: int
    number: str
    text: str
    status: str
    urgency: str
    department: str | None
    assignee: str | None
    deadline: datetime | None
    created_at: datetime
    resident_id: int | None
    duplicate_of_id: int | None
    duplicate_score: float | None
    resolution: str | None = None
    reject_reason: str | None = None
    category: str | None = None


@dataclass
class NewTicket:
    text: str
    resident: Resident | None = None
    channel: str = "wechat"
    attachments: Sequence[dict[str, Any]] = ()
    location: dict[str, Any] | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    category: str | None = None
    confidence: float | None = None
    urgency: str = "normal"
    contact_phone: str | None = None
    actor: str = "resident"
    # The message that reports it (its inbound key): the same message handled again — redone
    # after its process died — finds this ticket instead of making a second one.
    source_key: str | None = None


# The ticket a message made (its inbound key).
BY_SOURCE_KEY = select(Ticket).where(Ticket.source_key == bindparam("key"))
# What a report's snapshot reads of a ticket (:class:`TicketFields`): a row of these gives them by
# name (the JSON columns, attachments and the rest, are neither read nor converted).
TICKET_COLUMNS = (
    Ticket.id, Ticket.number, Ticket.text, Ticket.status, Ticket.urgency, Ticket.department, Ticket.assignee,
    Ticket.deadline, Ticket.created_at, Ticket.resolution, Ticket.reject_reason, Ticket.resident_id,
    Ticket.duplicate_of_id, Ticket.category,
)  # fmt: skip
# The ticket a message made, as such a row.
BY_SOURCE_KEY_ROW = select(*TICKET_COLUMNS).where(Ticket.source_key == bindparam("key"))
_NEW_TICKET = insert(Ticket).returning(Ticket.id)
# A resident's first ticket: their row says they have reported (kept if it said so already).
FIRST_REPORT = (
    update(Resident)
    .where(Resident.id == bindparam("resident"), Resident.reported_at.is_(None))
    .values(reported_at=bindparam("at"), updated_at=bindparam("at"))
)
_NEW_EVENTS = insert(TicketEvent)
# The same, unless the message (``source_key``) has made its ticket already: then nothing is returned.
_NEW_TICKET_ONCE: dict[str, Prepared] = {}  # dialect name → statement, built once
# Making a ticket on SQLite runs these on the driver's cursor (bot/storage/prepared.py): through
# ``Connection.execute`` each cost several times what SQLite spends on it.
_NEW_TICKET_ROWS, _FIRST_REPORT_ROWS, _NEW_EVENTS_ROWS = Prepared(_NEW_TICKET), Prepared(FIRST_REPORT), Prepared(_NEW_EVENTS)


def fields_of(row: Any) -> TicketFields:
    """A ticket's row of :data:`TICKET_COLUMNS`, read as a ticket: a row gives its columns by name,
    which is all a snapshot reads (building an ORM :class:`Ticket` of its thirty columns cost more
    than the query; nothing set on it would be written anyway)."""
    fields: TicketFields = row
    return fields


async def create_ticket(session: AsyncSession, new: NewTicket, rules: Rules, now: datetime) -> Ticket:
    """Create, dispatch by the table (or leave for triage) and look for a possible duplicate.

    With ``new.source_key``, a ticket already made by that message is returned as it is."""
    return await session.run_sync(lambda sync: create_ticket_sync(sync, new, rules, now)[0])


def create_ticket_sync(session: Session, new: NewTicket, rules: Rules, now: datetime) -> tuple[Ticket, bool]:
    """:func:`create_ticket` on a synchronous session (the ticket loaded into it); also whether
    the ticket was made now (False: the message that reports it had made it already)."""
    session.flush()  # what the caller added first is written first (its resident, say), as before
    made, made_now = create_ticket_in(session.connection(), new, rules, now)
    ticket = session.get(Ticket, made.id)
    assert ticket is not None
    return ticket, made_now


def create_ticket_in(
    connection: Connection, new: NewTicket, rules: Rules, now: datetime
) -> tuple[TicketFields, bool]:
    """:func:`create_ticket` in Core statements on a synchronous connection, in its transaction;
    the ticket comes back as read (:func:`fields_of`) or as made (:class:`Made`).

    Five statements whatever the outcome: the message's earlier ticket looked up, the day's
    counter, a neighbour's report looked for, the ticket (in its final status, with its duplicate
    link, returning its row) and its timeline entries (one multi-row INSERT). On PostgreSQL the
    counter, the ticket and its entries are one statement (:func:`_made_in_one`)."""
    if not new.text.strip():
        raise TicketError("empty_text", "a ticket needs a description")
    if new.source_key is not None:
        made = connection.execute(BY_SOURCE_KEY_ROW, {"key": new.source_key}).first()
        if made is not None:
            return fields_of(made), False
    return make_ticket_in(connection, new, rules, now)[0], True


def make_ticket_in(
    connection: Connection, new: NewTicket, rules: Rules, now: datetime
) -> tuple[Made, Candidate | None]:
    """The ticket made, without looking for one ``new.source_key`` made before (the caller has:
    an insert of the same key is refused by the unique key); also the earlier report it is linked
    to as a possible duplicate."""
    made = _make_in(connection, new, rules, now, _NEW_TICKET_ROWS)
    assert made is not None
    return made


def make_ticket_once_in(
    connection: Connection, new: NewTicket, rules: Rules, now: datetime
) -> tuple[Made, Candidate | None] | None:
    """:func:`make_ticket_in`, or None when the message ``new.source_key`` has made its ticket
    already (nothing is written but the day's counter: that number is skipped)."""
    dialect = connection.dialect.name
    stmt = _NEW_TICKET_ONCE.get(dialect)
    if stmt is None:
        stmt = _NEW_TICKET_ONCE[dialect] = Prepared(
            dialect_insert(dialect, Ticket).on_conflict_do_nothing(index_elements=[Ticket.source_key])
            .returning(Ticket.id)
        )
    return _make_in(connection, new, rules, now, stmt)


def _make_in(
    connection: Connection, new: NewTicket, rules: Rules, now: datetime, insert_stmt: Prepared
) -> tuple[Made, Candidate | None] | None:
    if not new.text.strip():
        raise TicketError("empty_text", "a ticket needs a description")
    # The resident's own building only when the ticket has no place of its own, or a unit or room
    # (of that building): a road, the estate's gate or a location sent is not in it (nor its grid).
    own = new.resident is not None and (not new.location or bool(new.unit or new.room))
    building = new.building or (new.resident.building if new.resident is not None and own else None)
    decision = rules.decide(new.category, new.confidence, building, new.urgency)
    resident_id = new.resident.id if new.resident else None
    text = new.text.strip()[:4000]
    one = connection.dialect.name == "postgresql"
    number = "" if one else next_number_in(connection, now)  # PostgreSQL: the statement's counter
    duplicate = _duplicate_in(connection, text, building, new.category, resident_id, rules, now)
    values: dict[str, Any] = {
        "number": number,
        "resident_id": resident_id,
        "channel": new.channel,
        "text": text,
        "attachments": list(new.attachments),
        "location": new.location,
        "community": new.resident.community if new.resident else None,
        "building": building,
        "unit": new.unit,
        "room": new.room,
        "grid": decision.grid,
        "category": new.category,
        "category_confidence": new.confidence,
        "department": decision.department,
        "assignee": decision.assignee,
        "urgency": new.urgency,
        "status": "submitted" if decision.triage else "dispatched",
        "deadline": decision.deadline(now),
        "contact_phone": new.contact_phone,
        "source_key": new.source_key,
        "resolution_photos": [],
        "reopen_count": 0,
        "duplicate_of_id": None,
        "duplicate_score": None,
        "created_at": now,
        "updated_at": now,
    }
    if duplicate is not None:
        score, other = duplicate
        values["duplicate_of_id"] = other.duplicate_of_id or other.id
        values["duplicate_score"] = round(score, 1)
    # The resident's first report (as far as their row said when the message came): from now on
    # the chat reads their open tickets (see Resident.reported_at).
    first = new.resident is not None and resident_id is not None and not _has_reported(new.resident)
    ticket = Made(
        id=0, number=number, text=text, status=values["status"], urgency=new.urgency,
        department=decision.department, assignee=decision.assignee, deadline=values["deadline"], created_at=now,
        resident_id=resident_id, duplicate_of_id=values["duplicate_of_id"], duplicate_score=values["duplicate_score"],
        category=new.category,
    )  # fmt: skip
    if one:
        events = _first_events(ticket, new, decision, duplicate, now)
        row = connection.execute(
            _made_in_one(insert_stmt is not _NEW_TICKET_ROWS), _in_one_params(values, events, local_day(now), first)
        ).first()
        if row is None:
            return None
        ticket = dataclasses.replace(ticket, id=int(row[0]), number=str(row[1]))
        return ticket, duplicate[1] if duplicate is not None else None
    made = insert_stmt.rows(connection, values)
    if not made:
        return None
    ticket = dataclasses.replace(ticket, id=made[0][0])
    _NEW_EVENTS_ROWS.many(connection, _first_events(ticket, new, decision, duplicate, now))
    if first:
        _FIRST_REPORT_ROWS.rows(connection, {"resident": resident_id, "at": now})
    return ticket, duplicate[1] if duplicate is not None else None


_EVENT_COLUMNS = ("at", "actor", "action", "from_status", "to_status", "note", "public")


def _in_one_params(
    values: dict[str, Any], events: Sequence[dict[str, Any]], day: str, first: bool
) -> dict[str, Any]:
    """:func:`_made_in_one`'s parameters: the ticket's columns, its timeline as arrays, the day."""
    return {
        **{f"t_{name}": value for name, value in values.items() if name != "number"},
        **{f"e_{name}": [event[name] for event in events] for name in _EVENT_COLUMNS},
        "e_data": [json_dumps(event["data"]) for event in events],
        "day": day,
        "first": first,
    }


@functools.cache
def _made_in_one(once: bool) -> Any:
    """PostgreSQL: a ticket made in one statement instead of three or four, its steps
    data-modifying CTEs: the day's counter bumped (an upsert, as :func:`next_number_in`), the
    ticket inserted with the number it gives (with ``once``, ``ON CONFLICT (source_key) DO
    NOTHING``: a message that made its ticket already inserts none, and only the counter moves,
    as :func:`make_ticket_once_in` says), its first timeline entries (from arrays, in order) and,
    with ``p_first``, the resident's ``reported_at`` where it is still NULL — both only with the
    ticket inserted. Returns the ticket's id and number, or no row when none was inserted."""
    table = cast(Table, Ticket.__table__)
    day = bindparam("day", type_=String())
    counter = (
        postgresql.insert(TicketCounter)
        .values(day=day, value=1)
        .on_conflict_do_update(index_elements=[TicketCounter.day], set_={"value": TicketCounter.value + 1})
        .returning(TicketCounter.value)
        .cte("counter")
    )
    value = sql_cast(counter.c.value, String())
    number = literal("GD") + day + literal("-") + func.lpad(value, func.greatest(4, func.length(value)), "0")
    names = [c.key for c in table.columns if c.key not in _NOT_GIVEN]
    made = postgresql.insert(table).from_select(
        ["number", *names], select(number, *(bindparam(f"t_{n}", type_=table.c[n].type) for n in names))
    )
    if once:
        made = made.on_conflict_do_nothing(index_elements=["source_key"])
    ticket = made.returning(table.c.id, table.c.number).cte("ticket")
    events_table = cast(Table, TicketEvent.__table__)
    rows = (
        func.unnest(
            *(bindparam(f"e_{n}", type_=ARRAY(events_table.c[n].type)) for n in _EVENT_COLUMNS),
            bindparam("e_data", type_=ARRAY(Text())),  # JSON texts (an ARRAY of JSON would nest them)
        )
        .table_valued(*_EVENT_COLUMNS, "data", with_ordinality="n")
        .render_derived(name="e")
    )
    events = (
        insert(events_table)
        .from_select(
            ["ticket_id", *_EVENT_COLUMNS, "data"],
            select(ticket.c.id, *(rows.c[n] for n in _EVENT_COLUMNS), sql_cast(rows.c.data, events_table.c.data.type))
            .select_from(ticket.join(rows, true()))
            .order_by(rows.c.n),
        )
        .cte("events")
    )
    at = bindparam("t_created_at", type_=table.c.created_at.type)
    reported = (
        update(cast(Table, Resident.__table__))
        .where(
            Resident.id == bindparam("t_resident_id", type_=table.c.resident_id.type),
            Resident.reported_at.is_(None),
            bindparam("first", type_=Boolean()),
            exists(select(ticket.c.id)),
        )
        .values(reported_at=at, updated_at=at)
        .cte("reported")
    )
    return select(ticket.c.id, ticket.c.number).add_cte(events, reported)


# The ticket's columns its statement does not give (the number is the counter's; the rest their defaults).
_NOT_GIVEN = frozenset(
    {"id", "number", "resolution", "reject_reason", "rating", "rating_comment", "reminded_at", "escalated_at",
     "responded_at", "answered_at", "closed_at"}
)  # fmt: skip


def _has_reported(resident: Resident) -> bool:
    """Whether the resident's row, as loaded, says they have reported before (unloaded: not known)."""
    return _loaded_reported_at(resident) not in (None, NO_VALUE)


def never_reported(resident: Resident) -> bool:
    """Whether the resident's row, as loaded (with the message's claim), says they have never
    reported anything: then they have no tickets, open or not, and nothing need be read to know
    (``Resident.reported_at``; not loaded: not known, False). A ticket made since the row was read
    is one made after the message came, as if the read had been done when it came."""
    return _loaded_reported_at(resident) is None


def _loaded_reported_at(resident: Resident) -> Any:
    """``reported_at`` as loaded (``NO_VALUE`` when not), without loading it: what the attribute's
    ``AttributeState.loaded_value`` says, read from the instance's dict directly (``state.attrs`` builds
    a state for each of the row's attributes first, for a row loaded with each message)."""
    return sa_inspect(resident).dict.get("reported_at", NO_VALUE)


def _first_events(
    ticket: Made, new: NewTicket, decision: Decision, duplicate: tuple[float, Candidate] | None, now: datetime
) -> list[dict[str, Any]]:
    """A new ticket's timeline: submitted, then dispatched (or left for triage), then a possible
    duplicate — as if each had been recorded in turn."""
    tid = ticket.id
    events = [_event_values(tid, "submitted", actor=new.actor, now=now, from_status="", to_status="submitted",
                            data={"category": new.category, "confidence": new.confidence, "urgency": new.urgency})]
    if decision.triage:
        events.append(_event_values(tid, "triage", actor="system", now=now, public=False,
                                    note="分类不确定，进入人工分派队列"))
    else:
        events.append(_event_values(tid, "dispatch", actor="system", now=now, from_status="submitted",
                                    to_status="dispatched",
                                    data={"department": ticket.department, "assignee": ticket.assignee}))
    if duplicate is not None:
        other = duplicate[1]
        events.append(_event_values(tid, "possible_duplicate", actor="system", now=now, public=False,
                                    note=f"可能与 {other.number} 重复",
                                    data={"other": other.id, "score": ticket.duplicate_score}))
    return events


_NOT_WORDS = re.compile(r"\W+")


def similarity(a: str, b: str) -> float:
    """How alike two reports' words are (0–100), punctuation and spaces ignored."""
    a, b = _NOT_WORDS.sub("", a), _NOT_WORDS.sub("", b)
    if not a or not b:
        return 0.0
    return float(fuzz.WRatio(a, b))


class _Texted(Protocol):
    @property
    def text(self) -> str: ...


T = TypeVar("T", bound=_Texted)


def most_similar(text: str, candidates: Sequence[T], rules: Rules) -> tuple[float, T] | None:
    """The candidate (a ticket, or a row with its text) whose text is most like ``text`` (the first
    of equals), with its score, if it reaches the table's ``duplicate_similarity``: what counts as
    the same report, for neighbours' duplicates and for a resident's own repeats alike."""
    if not candidates:
        return None
    # :func:`similarity` with every candidate in one call into rapidfuzz (a scan of up to 200 of a
    # building's reports costs half the loop's time): the same scores (an empty text scores 0),
    # those below the threshold set to 0, and the first of the highest taken.
    threshold = rules.duplicate_similarity
    scores = process.cdist(
        [_words(text)], [_words(other.text) for other in candidates],
        scorer=fuzz.WRatio, dtype=numpy.float64, score_cutoff=threshold,
    )[0]  # fmt: skip
    first = int(scores.argmax())
    score = float(scores[first])
    return (score, candidates[first]) if score >= threshold else None


@functools.lru_cache(maxsize=4096)
def _words(text: str) -> str:
    """A report's text without punctuation and spaces, as :func:`similarity` compares it (kept for
    the texts compared again and again: a building's recent reports, with every new one)."""
    return _NOT_WORDS.sub("", text)


class Candidate(NamedTuple):
    """What duplicate detection reads of an earlier ticket (a plain row: loading whole tickets
    would cost more than comparing their texts)."""

    id: int
    number: str
    text: str
    resident_id: int | None
    duplicate_of_id: int | None


# The oldest id among the window's tickets, read from the creation-time index (``id + 0`` keeps
# SQLite from answering min(id) by walking the table from its first row): with it the candidates
# are read from the building/category index as an id range, so the look-up costs what the window
# holds, not every report the building ever made in that category.
_WINDOW_START = select(func.min(Ticket.id + 0)).where(Ticket.created_at >= bindparam("since")).scalar_subquery()
_CANDIDATES = (
    select(Ticket.id, Ticket.number, Ticket.text, Ticket.resident_id, Ticket.duplicate_of_id)
    .where(
        Ticket.building == bindparam("building"),
        Ticket.category == bindparam("category"),
        Ticket.id >= _WINDOW_START,
        Ticket.created_at >= bindparam("since"),
    )
    .order_by(Ticket.id)
    .limit(200)
)
# Another resident's (or nobody's) tickets only.
_CANDIDATES_OF_OTHERS = _CANDIDATES.where(
    or_(Ticket.resident_id.is_(None), Ticket.resident_id != bindparam("resident"))
)
_CANDIDATES_ROWS, _CANDIDATES_OF_OTHERS_ROWS = Prepared(_CANDIDATES), Prepared(_CANDIDATES_OF_OTHERS)


def _duplicate_in(
    connection: Connection, text: str, building: str | None, category: str | None, resident_id: int | None,
    rules: Rules, now: datetime,
) -> tuple[float, Candidate] | None:
    """An earlier ticket of another resident from the same building and category with similar
    text ("neighbours reported this too"), with its score: the new ticket is linked to it (never
    merged). A resident's own repeats are caught before a ticket is made (``reports.own_repeat``)."""
    if not building or not category:
        return None
    since = now - timedelta(days=rules.duplicate_days)
    params: dict[str, Any] = {"building": building, "category": category, "since": since}
    if resident_id is not None:
        params["resident"] = resident_id
    stmt = _CANDIDATES_OF_OTHERS_ROWS if resident_id is not None else _CANDIDATES_ROWS
    rows = [Candidate(*row) for row in stmt.rows(connection, params)]
    best = most_similar(text, rows, rules)
    return best


async def load_for_update(session: AsyncSession, ticket_id: int) -> Ticket | None:
    return await session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update())


def check_transition(ticket: Ticket, action: str) -> str:
    if action not in TRANSITIONS:
        raise TicketError("unknown_action", f"unknown action {action!r}; known: {', '.join(TRANSITIONS)}")
    sources, target = TRANSITIONS[action]
    if ticket.status not in sources:
        allowed = (
            ", ".join(sorted(a for a, (src, _) in TRANSITIONS.items() if ticket.status in src)) or "none"
        )
        raise TicketError(
            "illegal_transition",
            f"cannot {action} ticket {ticket.number}: it is {ticket.status}; allowed now: {allowed}",
        )
    return target


async def transition(
    session: AsyncSession,
    ticket: Ticket,
    action: str,
    *,
    actor: str,
    now: datetime,
    rules: Rules,
    note: str | None = None,
    reason: str | None = None,
    resolution: str | None = None,
    photos: Sequence[str] = (),
    department: str | None = None,
    assignee: str | None = None,
    notify: bool = True,
) -> TicketEvent:
    """Apply ``action``; raises :class:`TicketError` (illegal transition or missing field).
    ``assignee``: for ``dispatch`` the one it is sent to, for ``accept`` the one accepting it (who
    becomes its handler).

    The resident is told by a push (with the staff member's public note), unless ``notify`` is
    false: the change is the resident's own and the chat has answered it."""
    target = check_transition(ticket, action)
    before = ticket.status
    if action in RESPONSE_ACTIONS and ticket.responded_at is None:
        ticket.responded_at = now
    data: dict[str, Any] = {}
    push: str | None = None
    if action == "dispatch":
        if not (department or ticket.department or assignee or ticket.assignee):
            raise TicketError("missing_department", "dispatch needs a department or an assignee")
        ticket.department = department or ticket.department
        ticket.assignee = assignee or ticket.assignee
        data = {"department": ticket.department, "assignee": ticket.assignee}
    elif action == "accept":
        # Who accepts handles it: the handler shown everywhere, and the one the deadline's reminder
        # is addressed to (``jobs.remind_assignees``: the assignee, else the department). ``assignee``
        # is the accepting user's name as notices match it (a console user's, an API token's).
        if assignee and assignee.strip():
            ticket.assignee = assignee.strip()[:100]
        data = {"assignee": ticket.assignee}
    elif action == "reject":
        if not (reason and reason.strip()):
            raise TicketError("missing_reason", "reject needs a reason")
        ticket.reject_reason = reason.strip()
        push = TEXTS["rejected"].format(number=ticket.number, reason=ticket.reject_reason)
    elif action == "answer":
        if not (resolution and resolution.strip()):
            raise TicketError("missing_resolution", "answer needs the resolution text")
        ticket.resolution = resolution.strip()
        ticket.resolution_photos = list(photos)
        ticket.answered_at = now
        push = TEXTS["answered"].format(number=ticket.number, resolution=ticket.resolution)
    elif action == "reopen":
        ticket.reopen_count = (ticket.reopen_count or 0) + 1
        ticket.rating = None
        ticket.answered_at = None
        ticket.closed_at = None
        ticket.reminded_at = None
        ticket.escalated_at = None
        ticket.deadline = now + timedelta(hours=_deadline_hours(ticket, rules))
        push = TEXTS["reopened"].format(number=ticket.number)
    elif action == "escalate":
        ticket.escalated_at = now
        data = {"notify_role": "supervisor"}
    elif action == "close":
        ticket.closed_at = now
        push = TEXTS["closed"].format(number=ticket.number)
    ticket.status = target
    ticket.updated_at = now
    if push is None:
        staff_note = note.strip() if note and note.strip() and not actor.startswith("system") else None
        push = (
            TEXTS["update_note"].format(number=ticket.number, what=status_label(ticket), note=staff_note)
            if staff_note
            else TEXTS["update"].format(number=ticket.number, what=status_label(ticket))
        )
    # The event's text is what the resident was told: an answer's resolution, a refusal's reason
    # (their 查进度 shows the newest public one); the 说明 staff typed with it is kept beside it
    # (data["note"]), not in its place. Other actions' text is the note.
    text = note
    if action in ("answer", "reject"):
        text = ticket.resolution if action == "answer" else ticket.reject_reason
        if note and note.strip():
            data = {**data, "note": note.strip()}
    event = await record(
        session,
        ticket,
        action,
        actor=actor,
        now=now,
        note=text,
        from_status=before,
        data=data,
        push=push if notify else None,
    )
    if action == "close" and before == "answered":
        await credit_report(session, ticket, rules, now)
    if action in ("dispatch", "accept"):
        await remind_new_handler(session, ticket, now)
    return event


def _deadline_hours(ticket: Ticket, rules: Rules) -> float:
    return rules.decide(ticket.category, 1.0, ticket.building, ticket.urgency).deadline_hours


async def comment(
    session: AsyncSession, ticket: Ticket, *, actor: str, text: str, public: bool, now: datetime
) -> TicketEvent:
    push = TEXTS["comment"].format(number=ticket.number, note=text) if public else None
    ticket.updated_at = now
    return await record(session, ticket, "comment", actor=actor, now=now, note=text, public=public, push=push)


async def assign(
    session: AsyncSession,
    ticket: Ticket,
    *,
    actor: str,
    now: datetime,
    department: str | None,
    assignee: str | None,
) -> TicketEvent:
    if ticket.status in ("closed", "rejected"):
        raise TicketError("illegal_transition", f"ticket {ticket.number} is {ticket.status}; reopen it first")
    ticket.department = department if department is not None else ticket.department
    ticket.assignee = assignee if assignee is not None else ticket.assignee
    ticket.updated_at = now
    event = await record(
        session,
        ticket,
        "assign",
        actor=actor,
        now=now,
        public=False,
        data={"department": ticket.department, "assignee": ticket.assignee},
    )
    await remind_new_handler(session, ticket, now)
    return event


def handler_of(ticket: Ticket) -> str | None:
    """Whom the ticket's staff notices are for: its assignee (who accepted it, or was given it), else
    its department; ``None``: every staff member (the staff role)."""
    return ticket.assignee or ticket.department


async def remind(session: AsyncSession, ticket: Ticket, now: datetime, *, handover: bool = False) -> None:
    """The deadline's reminder to the ticket's handler: a line on the timeline (naming whom it went
    to) and a staff notice. ``handover``: to a new handler, the round's reminder having gone to
    another (the notice says the ticket is now theirs)."""
    assert ticket.deadline is not None
    left = max(0, int((ticket.deadline - now).total_seconds() // 60))
    to = handler_of(ticket)
    data: dict[str, Any] = {"notify": to}
    if handover:
        data["handover"] = True
    await record(session, ticket, "reminder", actor="system", now=now, public=False,
                 note=f"距办理期限还有{left}分钟", data=data)
    now_theirs = "现由您处理，" if handover else ""
    await staff_notices.add(session, ticket, "reminder",
                            f"工单 {ticket.number} {now_theirs}距办理期限还有{left}分钟，请尽快处理。", now,
                            role=None if to else "staff", assignee=to)


async def remind_new_handler(session: AsyncSession, ticket: Ticket, now: datetime) -> bool:
    """After the ticket changed hands (dispatched, accepted, assigned): when this round's reminder
    has gone already (``reminded_at``, reset by a reopening) and the deadline is still ahead, the
    new handler is reminded too, unless they had it: addressed to their name, or to the department
    of their console account (whose notices they see). True when a reminder was sent."""
    to = handler_of(ticket)
    if (to is None or ticket.reminded_at is None or ticket.deadline is None or ticket.deadline <= now
            or ticket.status not in REMINDABLE):
        return False
    reminded = set((await session.scalars(
        select(StaffNotification.assignee).where(
            StaffNotification.ticket_id == ticket.id, StaffNotification.kind == "reminder",
            StaffNotification.created_at >= ticket.reminded_at, StaffNotification.assignee.is_not(None),
        )
    )).all())
    if to in reminded:
        return False
    if reminded:
        department = await session.scalar(select(ConsoleUser.department).where(ConsoleUser.name == to))
        if department in reminded:
            return False
    await remind(session, ticket, now, handover=True)
    return True


async def rate(
    session: AsyncSession,
    ticket: Ticket,
    rating: str,
    comment_text: str | None,
    *,
    now: datetime,
    rules: Rules,
    actor: str = "resident",
) -> TicketEvent:
    """The resident's rating of an answered ticket: satisfied/basic close it; unsatisfied reopens it.
    The resident rated in the chat, whose reply says what happened: no push repeats it. ``actor``:
    who closes or reopens it — the resident, or the staff member who took the rating on the phone
    (回访); the rating itself is always the resident's. A rating taken on the phone is the 回访's
    line (private, by that staff member, with their note), not a 评价 as if the resident had rated
    in the chat."""
    if rating not in RATING_LABELS:
        raise TicketError("bad_rating", f"rating must be one of {sorted(RATING_LABELS)}")
    if ticket.status != "answered":
        raise TicketError("illegal_transition", f"ticket {ticket.number} is {ticket.status}, not answered")
    note = comment_text.strip() if comment_text and comment_text.strip() else None
    if actor == "resident":
        await record(session, ticket, "rate", actor="resident", now=now, note=note, data={"rating": rating})
    else:
        await record(session, ticket, "revisit", actor=actor, now=now, note=note, public=False,
                     data={"rating": rating})
    if rating == "unsatisfied":
        event = await transition(
            session, ticket, "reopen", actor=actor, now=now, rules=rules, note=note or "居民不满意，重办",
            notify=False,
        )
        ticket.rating = rating
        ticket.rating_comment = note
        return event
    ticket.rating = rating
    ticket.rating_comment = note
    return await transition(session, ticket, "close", actor=actor, now=now, rules=rules, notify=False)


async def credit_report(session: AsyncSession, ticket: Ticket, rules: Rules, now: datetime) -> bool:
    """Points for a valid, resolved report, once (idempotency key), by the ``valid_report`` earning
    rule of ``bot/rules/points.yml`` (amount and daily cap live there)."""
    if ticket.resident_id is None:
        return False
    credited = await points.earn(
        session,
        resident_id=ticket.resident_id,
        rule="valid_report",
        ref_type="ticket",
        ref_id=str(ticket.id),
        idempotency_key=f"ticket:{ticket.id}:report",
        now=now,
    )
    return credited > 0


async def add_place(
    session: AsyncSession,
    ticket: Ticket,
    *,
    building: str | None,
    unit: str | None,
    room: str | None,
    location: dict[str, Any] | None,
    said: str,
    actor: str,
    now: datetime,
    rules: Rules | None = None,
) -> TicketEvent:
    """Where it is, told after the ticket was made: fills what the ticket does not know yet (the
    building, unit and room it has stay), adds to its location with the words said (``text``).
    With the dispatch ``rules``, a building learnt this way also gives the ticket its grid."""
    ticket.building = ticket.building or building
    ticket.unit = ticket.unit or unit
    ticket.room = ticket.room or room
    if rules is not None and ticket.building:
        ticket.grid = rules.grid_of(ticket.building)[0] or ticket.grid
    ticket.location = {**(ticket.location or {}), **(location or {}), "text": said[:200]}
    ticket.updated_at = now
    return await record(session, ticket, "location_added", actor=actor, now=now, note=said[:200], public=False,
                        data={"building": ticket.building, "unit": ticket.unit})


async def add_attachment(
    session: AsyncSession, ticket: Ticket, item: dict[str, Any], *, actor: str, now: datetime
) -> None:
    """A photo, video or voice the resident sent after the ticket was created joins it."""
    await session.run_sync(lambda sync: add_attachment_sync(sync, ticket, item, actor=actor, now=now))


def add_attachment_sync(session: Session, ticket: Ticket, item: dict[str, Any], *, actor: str, now: datetime) -> None:
    if any(a.get("msg_key") == item.get("msg_key") for a in ticket.attachments or []):
        return  # already attached (a retry)
    ticket.attachments = [*(ticket.attachments or []), item]
    ticket.updated_at = now
    record_sync(session, ticket, "attachment", actor=actor, now=now, public=False, data={"kind": item.get("kind")})


async def tickets_of(session: AsyncSession, resident_id: int, limit: int = 5) -> list[Ticket]:
    rows = await session.scalars(
        select(Ticket).where(Ticket.resident_id == resident_id).order_by(Ticket.id.desc()).limit(limit)
    )
    return list(rows.all())


async def latest_public_event(session: AsyncSession, ticket_id: int) -> TicketEvent | None:
    return await session.scalar(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.public.is_(True))
        .order_by(TicketEvent.id.desc())
        .limit(1)
    )


async def claim(session: AsyncSession, ticket_id: int, column: str, where: Any, now: datetime) -> bool:
    """Set ``column`` = now on one ticket only if ``where`` still holds: exactly one caller wins."""
    result = await session.execute(
        update(Ticket).where(and_(Ticket.id == ticket_id, where)).values({column: now, "updated_at": now})
    )
    return bool(getattr(result, "rowcount", 0) == 1)
