"""The resident's side of tickets, for the chat: report, repeat, add to, follow up, list and rate.

Each function is one transaction on ``db`` and returns :class:`Report` snapshots (plain data: the
flows never hold ORM rows or change ticket fields). A resident only ever reaches their own tickets:
every lookup is by resident id. The state machine itself is ``bot/services/tickets.py``.

What a conversation does on every report — look for the resident's own open report, make the
ticket, list the open ones — runs synchronously on the database's connection in one hop
(:meth:`Database.run_sync_transaction`): through the async driver each statement would cost a hop
of its own (about 0.3 ms of CPU on SQLite, which answers the statement itself in microseconds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.services import places, tickets
from bot.services.dispatch import Rules, building_number
from bot.storage.db import Database
from bot.storage.fixedin import fixed_in
from bot.storage.models import Ticket, TicketEvent

R = TypeVar("R")
# What 查进度 lists: everything not finished, and answered tickets waiting for the rating.
LISTED = (*tickets.OPEN_STATUSES, "answered")


@dataclass(frozen=True)
class Report:
    """A ticket as the resident may see it."""

    id: int
    number: str
    text: str
    status: str
    status_label: str
    urgency: str
    department: str | None
    assignee: str | None
    deadline: datetime | None
    created_at: datetime
    resolution: str | None = None
    reject_reason: str | None = None
    latest_note: str | None = None  # the newest public note on the timeline
    neighbours: bool = False  # possibly the same problem as another resident's report
    overdue: bool = False
    # Not a new ticket: the resident's own open report, which these words (and attachments) joined.
    repeated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    category: str | None = None  # the routing's (噪音扰民): what a follow-up may call it

    @property
    def subject(self) -> str:
        """What a follow-up about it may name: its words and its category's."""
        return f"{self.text} {self.category}" if self.category else self.text

    @property
    def open(self) -> bool:
        return self.status in tickets.OPEN_STATUSES


async def _snapshot(session: AsyncSession, t: Ticket, now: datetime | None = None, *, neighbours: bool = False) -> Report:
    event = await tickets.latest_public_event(session, t.id)
    return _report(t, event.note if event is not None else None, now, neighbours=neighbours)


def _report(
    t: tickets.TicketFields, latest_note: str | None, now: datetime | None = None, *, neighbours: bool = False,
    repeated: bool = False,
) -> Report:
    return Report(
        id=t.id,
        number=t.number,
        text=t.text,
        status=t.status,
        status_label=tickets.status_label(t),
        urgency=t.urgency,
        department=t.department,
        assignee=t.assignee,
        deadline=t.deadline,
        created_at=t.created_at,
        resolution=t.resolution,
        reject_reason=t.reject_reason,
        latest_note=latest_note or None,
        neighbours=neighbours,
        overdue=bool(now and t.deadline and t.deadline < now and t.status in tickets.OPEN_STATUSES),
        repeated=repeated,
        category=t.category,
    )


def _snapshots_sync(
    session: Session | Connection, rows: Sequence[tickets.TicketFields], now: datetime | None = None) -> list[Report]:
    """Snapshots of several tickets, their newest public notes read in one query."""
    if not rows:
        return []
    connection = session.connection() if isinstance(session, Session) else session
    found = connection.execute(_NEWEST_PUBLIC_NOTES, {"tickets": [t.id for t in rows]})
    notes = {ticket_id: note for ticket_id, note in found}
    return [_report(t, notes.get(t.id), now) for t in rows]


# The newest public timeline entry's note of each of some tickets.
_NEWEST_PUBLIC_NOTES = select(TicketEvent.ticket_id, TicketEvent.note).where(
    TicketEvent.id.in_(
        select(func.max(TicketEvent.id))
        .where(TicketEvent.ticket_id.in_(bindparam("tickets", expanding=True)), TicketEvent.public.is_(True))
        .group_by(TicketEvent.ticket_id)
    )
)


async def _sync(db: Database, fn: Callable[[Session], R]) -> R:
    """``fn`` with an ORM session on the database's synchronous connection, in one transaction."""

    def run(connection: Connection) -> R:
        with Session(bind=connection, expire_on_commit=False, autoflush=False) as session:
            result = fn(session)
            session.flush()
            return result

    return await db.run_sync_transaction(run)


async def _read(db: Database, fn: Callable[[Session], R]) -> R:
    """``fn`` with an ORM session on the database's synchronous connection, reading only (no write
    lock: "怎么样" in a message looks up the resident's open reports, however often it is said)."""

    def run(connection: Connection) -> R:
        with Session(bind=connection, expire_on_commit=False, autoflush=False) as session:
            return fn(session)

    return await db.run_sync_read(run)


async def _own(session: AsyncSession, ticket_id: int, resident_id: int) -> Ticket | None:
    return await session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.resident_id == resident_id).with_for_update()
    )


def _own_sync(session: Session, ticket_id: int, resident_id: int) -> Ticket | None:
    return session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.resident_id == resident_id).with_for_update()
    )


# ------------------------------------------------------------------------------------ new reports
async def create(
    db: Database, new: tickets.NewTicket, rules: Rules, now: datetime, *, unless_repeated: bool = False
) -> Report:
    """A new ticket (dispatched by the table, or left for triage). ``neighbours`` is true when it
    looks like another resident's recent report (never the same resident's).

    With ``unless_repeated``, the resident's own open report that the text repeats (as
    :func:`own_repeat` finds it) gets the words and attachments instead, and comes back with
    ``repeated`` true; no ticket is made. All of it is one transaction.

    A message redone after its process died gets the ticket it made (``new.source_key``): among the
    resident's open reports the own-repeat check reads, or else — the key being unique — when its
    insert is refused, read then."""
    try:
        return await db.run_sync_transaction(lambda connection: _create_in(connection, new, rules, now, unless_repeated))
    except IntegrityError:
        key = new.source_key
        made = await db.run_sync_read(lambda connection: _made_in(connection, key, now)) if key is not None else None
        if made is None:
            raise
        return made


def create_in(
    connection: Connection, new: tickets.NewTicket, rules: Rules, now: datetime, *, unless_repeated: bool = False
) -> Report:
    """:func:`create` in the caller's transaction: a reply's (``Context.reply_in``), so the ticket is
    made exactly when the reply that gives its number is stored — a message redone after its
    process died made none, a retry replays the stored reply. A ticket the message
    (``new.source_key``) made already (by a version that made it in a transaction of its own) is
    found instead of a second one."""
    return _create_in(connection, new, rules, now, unless_repeated, once=True)


def _create_in(
    connection: Connection, new: tickets.NewTicket, rules: Rules, now: datetime, unless_repeated: bool,
    once: bool = False,
) -> Report:
    # A resident who never reported has no open report to repeat (and a message redone after its
    # process died, which may have made its ticket, reads its resident afresh).
    if unless_repeated and new.resident is not None and not tickets.never_reported(new.resident):
        rows = _open_of(connection, new.resident.id, new.source_key)
        if new.source_key is not None and any(r.source_key == new.source_key for r in rows):
            again = _made_in(connection, new.source_key, now)
            assert again is not None  # just read in this transaction
            return again
        earlier_id = _repeated_among(rows, new.text, new.building, rules)
        if earlier_id is not None:
            with Session(bind=connection, expire_on_commit=False, autoflush=False) as session:
                earlier = session.get(Ticket, earlier_id)
                assert earlier is not None
                _add_repeat_sync(session, earlier, new.resident.id, new.text, new.attachments, now)
                session.flush()
                return dataclasses.replace(_snapshots_sync(session, [earlier], now)[0], repeated=True)
    if once:
        made = tickets.make_ticket_once_in(connection, new, rules, now)
        if made is None:  # the message's ticket is there already
            found = _made_in(connection, new.source_key, now)
            assert found is not None  # refused by the key of that ticket
            return found
        ticket, duplicate = made
    else:
        ticket, duplicate = tickets.make_ticket_in(connection, new, rules, now)
    # Its public entries (submitted, dispatched) have no note.
    return _report(ticket, None, now, neighbours=_neighbours(connection, ticket, duplicate))


def _made_in(connection: Connection, source_key: str | None, now: datetime) -> Report | None:
    """The report the message ``source_key`` made, as it is now (None: it made none)."""
    row = connection.execute(tickets.BY_SOURCE_KEY_ROW, {"key": source_key}).first()
    if row is None:
        return None
    made = tickets.fields_of(row)
    return dataclasses.replace(_snapshots_sync(connection, [made], now)[0], neighbours=_neighbours(connection, made))


_RESIDENT_OF = select(Ticket.resident_id).where(Ticket.id == bindparam("ticket"))


def _neighbours(connection: Connection, ticket: tickets.TicketFields, candidate: tickets.Candidate | None = None) -> bool:
    """Whether the report ``ticket`` is linked to as a possible duplicate is another resident's
    (read from the candidate when the link is to it, else looked up)."""
    if ticket.duplicate_of_id is None:
        return False
    if candidate is not None and candidate.id == ticket.duplicate_of_id:
        return candidate.resident_id != ticket.resident_id
    other = connection.execute(_RESIDENT_OF, {"ticket": ticket.duplicate_of_id}).first()
    return other is not None and other.resident_id != ticket.resident_id


def _same_place(a: str | None, b: str | None) -> bool:
    na, nb = building_number(a), building_number(b)
    return na is None or nb is None or na == nb


never_reported = tickets.never_reported


async def own_repeat(
    db: Database, resident_id: int, text: str, building: str | None, rules: Rules
) -> Report | None:
    """The resident's own open report this text repeats (same building when both are known,
    similar words), or None (ask only for a resident who has reported: :func:`never_reported`)."""

    def find(connection: Connection) -> Report | None:
        best = _own_repeat_in(connection, resident_id, text, building, rules)
        if best is None:
            return None
        row = connection.execute(_TICKET_BY_ID, {"ticket": best}).first()
        return _snapshots_sync(connection, [tickets.fields_of(row)])[0] if row is not None else None

    return await db.run_sync_read(find)


class _Open(NamedTuple):
    """What the own-repeat check reads of an open report (the ticket itself is loaded when it is one)."""

    id: int
    text: str
    building: str | None
    source_key: str | None


# The resident's open reports, newest first, and the ticket the message ``key`` made whatever its
# status (a message redone after its process died: see :func:`create`).
_OPEN_OF_RESIDENT = (
    select(Ticket.id, Ticket.text, Ticket.building, Ticket.source_key)
    .where(
        Ticket.resident_id == bindparam("resident"),
        or_(fixed_in(Ticket.status, tickets.OPEN_STATUSES), Ticket.source_key == bindparam("key")),
    )
    .order_by(Ticket.id.desc())
    .limit(50)
)


_TICKET_BY_ID = select(*tickets.TICKET_COLUMNS).where(Ticket.id == bindparam("ticket"))


def _own_repeat_in(connection: Connection, resident_id: int, text: str, building: str | None, rules: Rules) -> int | None:
    """The id of the resident's own open report ``text`` repeats (see :func:`own_repeat`), or None."""
    return _repeated_among(_open_of(connection, resident_id, None), text, building, rules)


def _open_of(connection: Connection, resident_id: int, source_key: str | None) -> list[_Open]:
    return [_Open(*row) for row in connection.execute(_OPEN_OF_RESIDENT, {"resident": resident_id, "key": source_key})]


def _repeated_among(rows: Sequence[_Open], text: str, building: str | None, rules: Rules) -> int | None:
    """The id of the open report among ``rows`` that ``text`` repeats, or None."""
    best = tickets.most_similar(text, [t for t in rows if _same_place(building, t.building)], rules)
    return best[1].id if best is not None else None


def _add_repeat_sync(
    session: Session, ticket: Ticket, resident_id: int, text: str, attachments: Sequence[dict[str, Any]],
    now: datetime,
) -> None:
    for item in attachments:
        tickets.add_attachment_sync(session, ticket, dict(item), actor="resident", now=now)
    ticket.updated_at = now
    tickets.record_sync(session, ticket, "resident_repeat", actor="resident", now=now, note=text[:2000],
                        public=False)


async def add_repeat(
    db: Database, ticket_id: int, resident_id: int, text: str, attachments: Sequence[dict[str, Any]], now: datetime
) -> Report | None:
    """The resident said it again: their words (and anything sent with them) join the open ticket."""

    def add(session: Session) -> Report | None:
        ticket = _own_sync(session, ticket_id, resident_id)
        if ticket is None:
            return None
        _add_repeat_sync(session, ticket, resident_id, text, attachments, now)
        return _snapshots_sync(session, [ticket], now)[0]

    return await _sync(db, add)


async def add_location(
    db: Database, ticket_id: int, resident_id: int, place: places.Place, said: str, now: datetime,
    rules: Rules | None = None,
) -> Report | None:
    """Where it is, told after an urgent ticket was made without a place, or more exactly after
    it (a unit: added). Another building than the ticket's is a correction ("不对 是5号楼"): it
    replaces the building, unit and room (and, with the dispatch ``rules``, the grid)."""
    async with db.transaction() as session:
        ticket = await _own(session, ticket_id, resident_id)
        if ticket is None:
            return None
        building = place.get("building")
        if building and ticket.building and str(building) != ticket.building:
            ticket.building = ticket.unit = ticket.room = None
        await tickets.add_place(session, ticket, building=place.get("building"), unit=place.get("unit"),
                                room=place.get("room"), location=places.location_of(place), said=said,
                                actor="resident", now=now, rules=rules)
        return await _snapshot(session, ticket, now)


async def attach(db: Database, ticket_id: int, resident_id: int, item: dict[str, Any], now: datetime) -> bool:
    """A photo, video, voice or location sent after the ticket was made joins it."""

    def add(session: Session) -> bool:
        ticket = _own_sync(session, ticket_id, resident_id)
        if ticket is None:
            return False
        tickets.add_attachment_sync(session, ticket, item, actor="resident", now=now)
        return True

    return await _sync(db, add)


# ------------------------------------------------------------------------------------- reading
async def by_numbers(db: Database, resident_id: int, numbers: Sequence[str], now: datetime) -> list[Report]:
    def read(session: Session) -> list[Report]:
        rows = session.scalars(
            select(Ticket).where(Ticket.resident_id == resident_id, Ticket.number.in_(list(numbers)))
            .order_by(Ticket.id.desc())
        ).all()
        return _snapshots_sync(session, rows, now)

    return await _read(db, read)


_LISTED_OF_RESIDENT = (Ticket.resident_id == bindparam("resident"), fixed_in(Ticket.status, LISTED))
# A page of them, each with its newest public note and how many there are in all (the window's
# count is taken before LIMIT and OFFSET): one read instead of three (the page, the notes, the count).
_NEWEST_PUBLIC_NOTE = (
    select(TicketEvent.note)
    .where(TicketEvent.ticket_id == Ticket.id, TicketEvent.public.is_(True))
    .order_by(TicketEvent.id.desc())
    .limit(1)
    .scalar_subquery()
)
_LISTED_PAGE = (
    select(*tickets.TICKET_COLUMNS, _NEWEST_PUBLIC_NOTE.label("latest_note"), func.count().over().label("total"))
    .where(*_LISTED_OF_RESIDENT)
    .order_by(Ticket.id.desc())
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)
_LISTED_COUNT = select(func.count()).select_from(Ticket).where(*_LISTED_OF_RESIDENT)


async def listed(db: Database, resident_id: int, now: datetime, *, offset: int = 0, limit: int = 5) -> tuple[list[Report], int]:
    """A page of the resident's unfinished tickets (reopened and escalated too, and answered ones
    waiting for a rating), newest first, and how many there are in all."""
    params = {"resident": resident_id, "offset": offset, "limit": limit}

    def read(connection: Connection) -> tuple[list[Report], int]:
        rows: Any = connection.execute(_LISTED_PAGE, params).all()
        if rows:
            total = int(rows[0].total)
        elif offset == 0:
            total = 0
        else:  # a page beyond the end: counted on its own
            total = int(connection.execute(_LISTED_COUNT, params).scalar() or 0)
        if total <= offset:
            return [], total
        return [_report(tickets.fields_of(row), row.latest_note, now) for row in rows], total

    return await db.run_sync_read(read)


async def listed_texts(db: Database, resident_id: int, limit: int = 50) -> list[tuple[int, str, str | None]]:
    """(id, text, category) of the unfinished tickets, newest first: one cheap query for "is this
    about one of them?"."""

    def read(connection: Connection) -> list[tuple[int, str, str | None]]:
        rows = connection.execute(_LISTED_TEXTS, {"resident": resident_id, "limit": limit})
        return [(int(i), str(t), c) for i, t, c in rows.all()]

    return await db.run_sync_read(read)


_LISTED_TEXTS = (
    select(Ticket.id, Ticket.text, Ticket.category)
    .where(*_LISTED_OF_RESIDENT)
    .order_by(Ticket.id.desc())
    .limit(bindparam("limit"))
)


async def recent(db: Database, resident_id: int, now: datetime, limit: int = 3) -> list[Report]:
    """The newest tickets whatever their status."""

    def read(session: Session) -> list[Report]:
        rows = session.scalars(
            select(Ticket).where(Ticket.resident_id == resident_id).order_by(Ticket.id.desc()).limit(limit)
        ).all()
        return _snapshots_sync(session, rows, now)

    return await _read(db, read)


async def has_reports(db: Database, resident_id: int, within: timedelta | None = None, now: datetime | None = None) -> bool:
    stmt = select(Ticket.id).where(Ticket.resident_id == resident_id)
    if within is not None and now is not None:
        stmt = stmt.where(or_(Ticket.created_at >= now - within, Ticket.status.in_(LISTED)))
    return await db.run_sync_read(lambda connection: connection.execute(stmt.limit(1)).first() is not None)


async def followed_up(db: Database, resident_id: int, ticket_ids: Sequence[int], text: str, now: datetime) -> None:
    """The resident asked how these tickets are doing: a note on their timelines for the staff (催办)."""

    def note(session: Session) -> None:
        for ticket_id in ticket_ids:
            ticket = _own_sync(session, ticket_id, resident_id)
            if ticket is not None and ticket.status in tickets.OPEN_STATUSES:
                tickets.record_sync(session, ticket, "resident_follow_up", actor="resident", now=now,
                                    note=text[:500], public=False)

    await _sync(db, note)


async def add_contact(db: Database, ticket_id: int, resident_id: int, phone: str, now: datetime) -> Report | None:
    """A phone number sent right after a report was filed without one: kept as the ticket's contact
    (a timeline entry says so, without the number). None when the ticket is not the resident's or
    no longer open."""

    def keep(session: Session) -> Report | None:
        ticket = _own_sync(session, ticket_id, resident_id)
        if ticket is None or ticket.status not in tickets.OPEN_STATUSES:
            return None
        ticket.contact_phone = phone
        tickets.record_sync(session, ticket, "resident_contact", actor="resident", now=now, public=False)
        return _snapshots_sync(session, [ticket], now)[0]

    return await _sync(db, keep)


async def contacts(db: Database, resident_id: int) -> list[tuple[str, str | None]]:
    """(number, contact phone) of the resident's open reports, newest first: the only phones of a
    resident the system keeps (a phone is asked with a report, never for the resident)."""
    stmt = (select(Ticket.number, Ticket.contact_phone)
            .where(Ticket.resident_id == resident_id, Ticket.status.in_(tickets.OPEN_STATUSES))
            .order_by(Ticket.id.desc()).limit(50))
    return await db.run_sync_read(lambda connection: [(str(n), p) for n, p in connection.execute(stmt)])


async def change_contact(db: Database, resident_id: int, phone: str, now: datetime) -> list[str]:
    """A new phone for the resident's open reports (我换号了): their contact from now on, each with a
    timeline entry for the staff (without the number). The numbers of the reports changed."""

    def keep(session: Session) -> list[str]:
        rows = session.scalars(
            select(Ticket).where(Ticket.resident_id == resident_id, Ticket.status.in_(tickets.OPEN_STATUSES))
            .order_by(Ticket.id.desc()).limit(50).with_for_update()
        ).all()
        for ticket in rows:
            ticket.contact_phone = phone
            tickets.record_sync(session, ticket, "resident_contact", actor="resident", now=now, note="居民更换了联系电话",
                                public=False)
        return [t.number for t in rows]

    return await _sync(db, keep)


async def add_update(db: Database, ticket_id: int, resident_id: int, text: str, now: datetime) -> bool:
    """What the resident says of an emergency right after reporting it ("已经打了120了", "人送医院了"):
    a note on the ticket's timeline for the staff on duty. False when the ticket is not the
    resident's or no longer open."""

    def note(session: Session) -> bool:
        ticket = _own_sync(session, ticket_id, resident_id)
        if ticket is None or ticket.status not in tickets.OPEN_STATUSES:
            return False
        tickets.record_sync(session, ticket, "resident_update", actor="resident", now=now, note=text[:500],
                            public=False)
        return True

    return await _sync(db, note)


async def withdraw(db: Database, ticket_id: int, resident_id: int, reason: str, now: datetime) -> Report | None:
    """The resident calls an open report off (撤回: "已经清了", "不用来了"): the ticket is closed with
    the resident's words as its resolution and a timeline entry for the staff; no push (the chat has
    answered). None when the ticket is not the resident's or no longer open."""

    def close(session: Session) -> Report | None:
        ticket = _own_sync(session, ticket_id, resident_id)
        if ticket is None or ticket.status not in tickets.OPEN_STATUSES:
            return None
        before = ticket.status
        ticket.status = "closed"
        ticket.closed_at = now
        ticket.updated_at = now
        ticket.resolution = f"居民撤回：{reason[:200]}" if reason else "居民撤回"
        tickets.record_sync(session, ticket, "resident_withdrew", actor="resident", now=now, note=reason[:500] or None,
                            from_status=before, public=False)
        return _snapshots_sync(session, [ticket], now)[0]

    return await _sync(db, close)


# ------------------------------------------------------------------------------------- rating
async def awaiting_rating(db: Database, resident_id: int) -> Report | None:
    """The resident's most recently answered ticket, if one waits for a rating."""

    def read(connection: Connection) -> Report | None:
        row = connection.execute(_AWAITING_RATING, {"resident": resident_id}).first()
        return _snapshots_sync(connection, [tickets.fields_of(row)])[0] if row is not None else None

    return await db.run_sync_read(read)


_AWAITING_RATING = (
    select(*tickets.TICKET_COLUMNS)
    .where(Ticket.resident_id == bindparam("resident"), Ticket.status == "answered")
    .order_by(Ticket.answered_at.desc(), Ticket.id.desc())
    .limit(1)
)


async def rate(
    db: Database, ticket_id: int, resident_id: int, rating: str, comment: str | None, rules: Rules, now: datetime
) -> Report | None:
    """Rate an answered ticket (satisfied/basic close it, unsatisfied reopens it); None when it is
    not the resident's or no longer answered. The chat's reply is the resident's only message
    about it: no push repeats it."""
    async with db.transaction() as session:
        ticket = await _own(session, ticket_id, resident_id)
        if ticket is None or ticket.status != "answered":
            return None
        await tickets.rate(session, ticket, rating, comment, now=now, rules=rules)
        return await _snapshot(session, ticket, now)


async def comment(db: Database, ticket_id: int, resident_id: int, text: str, now: datetime) -> bool:
    """The resident's comment after a rating (why they are not satisfied)."""
    async with db.transaction() as session:
        ticket = await _own(session, ticket_id, resident_id)
        if ticket is None:
            return False
        ticket.rating_comment = text[:2000]
        ticket.updated_at = now
        await tickets.record(session, ticket, "resident_comment", actor="resident", now=now,
                             note=text[:2000], public=True)
        return True
