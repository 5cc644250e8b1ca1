"""Community courses and activities: booking, cancellation with refund, waitlist, reminders, check-in.

Booking is one transaction: the resident's booking row is unique per session (a double tap is a
unique violation that rolls the second attempt back), the place is taken with
``UPDATE activity_sessions SET booked = booked + 1 WHERE booked < capacity`` (and a CHECK keeps
``booked <= capacity``), the points are debited with a conditional UPDATE. A full session puts the
resident on the waitlist when they ask for it; a freed place goes to the next in line, in the same
transaction as the cancellation, and they are told through the outbox.

Notices to residents are queued with :func:`bot.wechat.outbox.enqueue` (a table written in the
caller's transaction); their texts are in :data:`NOTICES`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from rapidfuzz import fuzz
from sqlalchemy import (
    Connection,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    delete,
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
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Out
from bot.services import points, readmostly
from bot.services.notify import enqueue
from bot.storage.db import Database, savepoint
from bot.storage.fixedin import fixed_in
from bot.storage.models import (
    Activity,
    ActivitySession,
    Booking,
    CheckIn,
    PartyMember,
    PointsBalance,
    Resident,
    UTCDateTime,
)
from bot.storage.prepared import Prepared, detached

ACTIVE = ("booked", "waitlisted", "attended")

NOTICES = {
    "promoted": "好消息！您候补的「{title}」（{when}）有空位了，已为您约上{paid}。不能来的话回复“取消预约”。",
    "promoted_no_points": "「{title}」（{when}）有空位了，但您的积分不够（需要{cost}分），这次没能为您约上，抱歉。",
    "waitlist_closed": "「{title}」（{when}）已经开始，候补没能排上，下次早点来约哦。",
    "reminder": "温馨提醒：您预约的「{title}」将于{when}在{place}开始，记得准时参加哦。不能来请回复“取消预约”。",
}


class BookingError(Exception):
    """``code``: not_found, not_open, closed, full, duplicate, points, not_yours, not_cancellable."""

    def __init__(self, code: str, **info: Any) -> None:
        super().__init__(code)
        self.code = code
        self.info = info


@dataclass
class BookingResult:
    booking: Booking
    session: ActivitySession
    activity: Activity
    balance: int


@dataclass
class CancelResult:
    booking: Booking
    session: ActivitySession
    activity: Activity
    refunded: int
    previous: str  # booked | waitlisted
    promoted: list[int] = field(default_factory=list)  # booking ids now booked from the waitlist


@dataclass
class CheckInResult:
    checkin: CheckIn
    activity: Activity
    created: bool  # False: this resident had already checked in today
    points: int
    work_unit: str | None


@dataclass(frozen=True)
class Listing:
    """A session of a course or activity as the chat shows it (plain data)."""

    session_id: int
    activity_id: int
    title: str
    category: str
    description: str | None
    organiser: str | None
    place: str | None
    audience: str | None
    points_cost: int
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int

    @classmethod
    def of(cls, sess: ActivitySession, activity: Activity) -> Listing:
        return cls(
            session_id=sess.id, activity_id=activity.id, title=activity.title, category=activity.category,
            description=activity.description, organiser=activity.organiser, place=activity.place,
            audience=activity.audience, points_cost=activity.points_cost, starts_at=sess.starts_at,
            ends_at=sess.ends_at, capacity=sess.capacity, booked=sess.booked,
        )


@dataclass(frozen=True)
class MyBooking:
    """One of a resident's bookings (booked or on the waitlist) as "my bookings" lists it."""

    booking_id: int
    status: str  # booked | waitlisted
    points_paid: int
    title: str
    place: str | None
    starts_at: datetime
    position: int | None = None  # on the waitlist, when asked for


def local_when(when: datetime) -> str:
    local = when.astimezone(points.rules().tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


async def _notify(session: AsyncSession, resident_id: int, text: str, dedup_key: str, now: datetime) -> None:
    openid = await session.scalar(select(Resident.openid).where(Resident.id == resident_id))
    if openid:
        await enqueue(session, openid, [Out.text(text)], dedup_key=dedup_key, not_before=now)


# -- catalogue -------------------------------------------------------------------------------------


async def upcoming(
    session: AsyncSession,
    now: datetime,
    *,
    until: datetime | None = None,
    category: str | None = None,
    activity_id: int | None = None,
) -> list[tuple[ActivitySession, Activity]]:
    """Sessions not yet started, soonest first."""
    stmt = (
        select(ActivitySession, Activity)
        .join(Activity, Activity.id == ActivitySession.activity_id)
        .where(Activity.active.is_(True), ActivitySession.starts_at > now)
        .order_by(ActivitySession.starts_at, ActivitySession.id)
    )
    if until is not None:
        stmt = stmt.where(ActivitySession.starts_at < until)
    if category:
        stmt = stmt.where(Activity.category == category)
    if activity_id is not None:
        stmt = stmt.where(Activity.id == activity_id)
    return [(s, a) for s, a in (await session.execute(stmt)).all()]


async def my_bookings(
    session: AsyncSession, resident_id: int, now: datetime
) -> list[tuple[Booking, ActivitySession, Activity]]:
    stmt = (
        select(Booking, ActivitySession, Activity)
        .join(ActivitySession, ActivitySession.id == Booking.session_id)
        .join(Activity, Activity.id == ActivitySession.activity_id)
        .where(
            Booking.resident_id == resident_id,
            Booking.status.in_(("booked", "waitlisted")),
            ActivitySession.ends_at > now,
        )
        .order_by(ActivitySession.starts_at)
    )
    return [(b, s, a) for b, s, a in (await session.execute(stmt)).all()]


# How many are ahead of a waitlisted booking (queued earlier; at the same time, the older booking).
_AHEAD = (
    select(func.count())
    .select_from(Booking)
    .where(
        Booking.session_id == bindparam("session_id"),
        Booking.status == "waitlisted",
        or_(
            Booking.queued_at < bindparam("queued_at"),
            and_(Booking.queued_at == bindparam("queued_at"), Booking.id < bindparam("booking_id")),
        ),
    )
)


def _position_params(booking: Booking) -> dict[str, Any]:
    return {"session_id": booking.session_id, "queued_at": booking.queued_at, "booking_id": booking.id}


async def waitlist_position(session: AsyncSession, booking: Booking) -> int:
    ahead = await session.scalar(_AHEAD, _position_params(booking))
    return int(ahead or 0) + 1


def _waitlist_position_in(connection: Connection, session_id: int, queued_at: datetime, booking_id: int) -> int:
    ahead = connection.execute(
        _AHEAD, {"session_id": session_id, "queued_at": queued_at, "booking_id": booking_id}
    ).scalar()
    return int(ahead or 0) + 1


# The columns a Listing shows, in its fields' order: read as rows, not ORM objects.
_LISTING_COLUMNS = (
    ActivitySession.id, Activity.id, Activity.title, Activity.category, Activity.description,
    Activity.organiser, Activity.place, Activity.audience, Activity.points_cost, ActivitySession.starts_at,
    ActivitySession.ends_at, ActivitySession.capacity, ActivitySession.booked,
)  # fmt: skip


def _listing(row: Sequence[Any]) -> Listing:
    return Listing(*row)


# The chat's reads are built once and run on the database's synchronous connection, each in one
# hop (:meth:`Database.run_sync_read`): through the async driver every statement costs several.
_LISTINGS = select(*_LISTING_COLUMNS).join(Activity, Activity.id == ActivitySession.activity_id)
_UPCOMING = _LISTINGS.where(
    Activity.active.is_(True),
    ActivitySession.starts_at > bindparam("now"),
    ActivitySession.starts_at < bindparam("until"),
).order_by(ActivitySession.starts_at, ActivitySession.id)
_ONE_LISTING = _LISTINGS.where(ActivitySession.id == bindparam("session_id"))
# :func:`my_bookings`' rows, as plain rows rather than ORM objects.
_MINE = (
    select(
        Booking.id, Booking.status, Booking.points_paid, Activity.title, Activity.place,
        ActivitySession.starts_at, Booking.session_id, Booking.queued_at,
    )
    .join(ActivitySession, ActivitySession.id == Booking.session_id)
    .join(Activity, Activity.id == ActivitySession.activity_id)
    .where(
        Booking.resident_id == bindparam("resident"),
        fixed_in(Booking.status, ("booked", "waitlisted")),
        ActivitySession.ends_at > bindparam("now"),
    )
    .order_by(ActivitySession.starts_at)
)  # fmt: skip


def _upcoming_in(connection: Connection, now: datetime, until: datetime) -> list[Listing]:
    """:func:`upcoming` until ``until`` as plain data, in one statement."""
    return [_listing(row) for row in connection.execute(_UPCOMING, {"now": now, "until": until})]


# Every session of an active course or activity not started yet, soonest first: what the chat's
# listings are cut from (``SESSIONS``).
_FUTURE = _LISTINGS.where(Activity.active.is_(True), ActivitySession.starts_at > bindparam("now")).order_by(
    ActivitySession.starts_at, ActivitySession.id
)


def _load_sessions(connection: Connection, now: datetime) -> tuple[Listing, ...]:
    return tuple(_listing(row) for row in connection.execute(_FUTURE, {"now": now}))


# The sessions the chat lists, served from memory (``services/readmostly.py``): a booking's places
# go into them in place; a cancellation or an edit drops them; another process's changes show
# within a second.
SESSIONS = readmostly.ReadMostly(_load_sessions)


def _between(rows: Sequence[Listing], now: datetime, until: datetime) -> list[Listing]:
    """:data:`_UPCOMING`'s terms on the kept sessions (already in its order)."""
    return [row for row in rows if now < row.starts_at < until]


async def _sessions(db: Database, now: datetime) -> Sequence[Listing]:
    kept = SESSIONS.peek(db, now)
    if kept is not None:
        return kept
    return await db.run_sync_read(lambda connection: SESSIONS.read_in(db, connection, now))


async def listings(db: Database, now: datetime, *, until: datetime) -> list[Listing]:
    """:func:`upcoming` until ``until``, as plain data (from memory: ``SESSIONS``)."""
    return _between(await _sessions(db, now), now, until)


async def whats_on(db: Database, now: datetime) -> tuple[list[Listing], bool]:
    """This week's sessions, or when there are none the next 30 days'; and whether they are this week's."""
    rows = await _sessions(db, now)
    week = _between(rows, now, week_end(now))
    return week or _between(rows, now, now + timedelta(days=30)), bool(week)


def match_listings(query: str, rows: Sequence[Listing], threshold: float = 75) -> list[Listing]:
    """The sessions whose title or category fit ``query`` (a word or two: 书法, 太极), in their order."""
    found = []
    for row in rows:
        score = (
            100.0
            if (query in row.title or query == row.category)
            else max(fuzz.partial_ratio(query, row.title), fuzz.ratio(query, row.category))
        )
        if len(query) == 1:
            score = min(score, 60.0)
        if score >= threshold or _sounds_named(query, row.title):
            found.append(row)
    return found


def _sounds_named(query: str, title: str) -> bool:
    """The title's first two characters said in the query with other characters of the same sound
    (那个花一的课 for 花艺入门: pinyin input and voice recognition type the sound, not the word)."""
    from knowledge.typos import sound

    head = [sound(ch) for ch in title[:2]]
    said = [sound(ch) for ch in query]
    if len(head) < 2 or title[:2] in query or not all(h.isascii() for h in head):
        return False
    return any(said[i : i + 2] == head for i in range(len(said) - 1))


async def listing(db: Database, session_id: int, now: datetime | None = None) -> Listing | None:
    """One session with its activity, whatever its date or state (None when either is gone); with
    ``now``, from ``SESSIONS`` when it holds it (read into memory, in the same read, when not kept)."""
    for kept in (SESSIONS.peek(db, now) if now is not None else None) or ():
        if kept.session_id == session_id:
            return kept

    return await db.run_sync_read(lambda connection: _listing_in(connection, db, session_id, now))


def listing_in(connection: Connection, db: Database, session_id: int, now: datetime) -> Listing | None:
    """:func:`listing` in the caller's transaction (a reply's: ``Context.reply_in``)."""
    for kept in SESSIONS.peek(db, now) or ():
        if kept.session_id == session_id:
            return kept
    return _listing_in(connection, db, session_id, now)


def _listing_in(connection: Connection, db: Database, session_id: int, now: datetime | None) -> Listing | None:
    if now is not None:
        found = next((s for s in SESSIONS.read_in(db, connection, now) if s.session_id == session_id), None)
        if found is not None:
            return found
    row = connection.execute(_ONE_LISTING, {"session_id": session_id}).first()
    return _listing(row) if row is not None else None


async def bookings_of(db: Database, resident_id: int, now: datetime, *, positions: bool = False) -> list[MyBooking]:
    """:func:`my_bookings` as plain data; with ``positions``, each waitlisted one's place in the queue."""

    def read(connection: Connection) -> list[MyBooking]:
        out = []
        rows = connection.execute(_MINE, {"resident": resident_id, "now": now}).all()
        for booking_id, status, paid, title, place, starts_at, session_id, queued_at in rows:
            position = None
            if positions and status == "waitlisted":
                position = _waitlist_position_in(connection, session_id, queued_at, booking_id)
            out.append(MyBooking(booking_id, status, paid, title, place, starts_at, position))
        return out

    return await db.run_sync_read(read)


def waitlist_place_in(connection: Connection, booking: Booking) -> int:
    """:func:`waitlist_place` in the caller's transaction."""
    return _waitlist_position_in(connection, booking.session_id, booking.queued_at, booking.id)


async def waitlist_place(db: Database, booking: Booking) -> int:
    """:func:`waitlist_position` in one read."""
    session_id, queued_at, booking_id = booking.session_id, booking.queued_at, booking.id
    return await db.run_sync_read(
        lambda connection: _waitlist_position_in(connection, session_id, queued_at, booking_id)
    )


# -- booking ---------------------------------------------------------------------------------------


def audience_confirmed(resident: Resident | None, audience: str) -> bool:
    """Whether the resident told us they belong to ``audience`` (e.g. 60岁以上) before."""
    profile = (resident.profile if resident is not None else None) or {}
    confirmed = profile.get("audiences")
    return isinstance(confirmed, dict) and audience.strip() in confirmed


async def confirm_audience(db: Database, *, resident_id: int, audience: str, now: datetime) -> None:
    """Remember on the resident that they said they belong to ``audience`` (asked once, in the chat).

    Ages are not known, so a course's audience is enforced by asking; staff booking for a resident
    through the API is not asked.
    """
    async with db.transaction() as session:
        resident = await session.get(Resident, resident_id, with_for_update=True)
        if resident is None:
            return
        profile = dict(resident.profile or {})
        confirmed = dict(profile.get("audiences") or {})
        confirmed.setdefault(audience.strip(), now.isoformat())
        profile["audiences"] = confirmed
        resident.profile = profile  # a new dict, so the JSON column is seen as changed


async def book(
    db: Database,
    *,
    resident_id: int,
    session_id: int,
    now: datetime,
    waitlist: bool = False,
    request_key: str | None = None,
    welcome: bool = False,
) -> BookingResult:
    """Book a place (or, with ``waitlist`` and a full session, join the waitlist), in a transaction
    of its own: :func:`book_with_reply` in one hop to the database's thread.

    ``request_key`` names the request (a resident's message key): the same request again — a
    message redone after its process died — gets the booking it made, not "already booked".
    ``welcome``: give the one-off registration reward first (:func:`points.welcome`, as the chat
    does at a resident's first use of points), in the booking's transaction, also when the
    booking is refused."""

    def run(connection: Connection) -> BookingResult | BookingError:
        try:
            return book_with_reply(
                connection, db, resident_id=resident_id, session_id=session_id, now=now, waitlist=waitlist,
                request_key=request_key, welcome=welcome,
            )
        except BookingError as refused:  # committed all the same: the reward it may have given
            return refused

    outcome = await db.run_sync_transaction(run)
    if welcome:
        points.welcomed(db, resident_id)
    if isinstance(outcome, BookingError):
        raise outcome
    return outcome


def book_with_reply(
    connection: Connection,
    db: Database,
    *,
    resident_id: int,
    session_id: int,
    now: datetime,
    waitlist: bool = False,
    request_key: str | None = None,
    welcome: bool = False,
) -> BookingResult:
    """:func:`book` in the transaction that stores the chat's reply (``Context.reply_in``): the
    booking exists exactly when the answer telling of it is stored, and costs no transaction or
    hop of its own. A refusal (:class:`BookingError`) leaves nothing of the booking written (a
    savepoint), but the registration reward (``welcome``) all the same. The sessions in memory
    show the place taken at once (before the commit: should the reply's transaction fail, memory
    shows one place more until it is read again, within a second; it never decides a booking).

    On PostgreSQL a first booking of a session that gets a place is one statement
    (:func:`_booking_statement`); anything else (a waitlist, a booking again, a refusal, a race the
    statement's snapshot missed) takes the savepoint, as before."""
    give = welcome and not points.is_welcomed(db, resident_id)
    if connection.dialect.name == "postgresql":
        if give:  # given whatever becomes of the booking
            points.award_registration_in(connection, resident_id, now)
            give = False
        done = _book_in_one(connection, resident_id, session_id, now, request_key)
        if done is not None:
            if done.session.booked is not None:
                _places_taken(db, session_id, done.session.booked)
            return done
    try:
        with savepoint(connection):
            if give:
                points.award_registration_in(connection, resident_id, now)
            result = _book(connection, resident_id, session_id, now, waitlist, request_key)
    except IntegrityError:
        if give:
            points.award_registration_in(connection, resident_id, now)
        raise BookingError("duplicate") from None
    except BookingError:
        if give:
            points.award_registration_in(connection, resident_id, now)
        raise
    if result.booking.status == "booked" and result.session.booked is not None:
        _places_taken(db, session_id, result.session.booked)
    return result


def _places_taken(db: Database, session_id: int, booked: int) -> None:
    """A booking committed by this process left ``booked`` places taken: the sessions in memory
    show it (never fewer than they showed: concurrent bookings may report out of order)."""

    def change(rows: tuple[Listing, ...]) -> tuple[Listing, ...]:
        return tuple(
            dataclasses.replace(row, booked=max(row.booked, booked)) if row.session_id == session_id else row
            for row in rows
        )

    SESSIONS.update(db, change)


_SESSIONS, _ACTIVITIES, _BOOKINGS = ActivitySession.__table__, Activity.__table__, Booking.__table__
_SESSION_COLUMNS, _ACTIVITY_COLUMNS, _BOOKING_COLUMNS = tuple(_SESSIONS.c), tuple(_ACTIVITIES.c), tuple(_BOOKINGS.c)
# The session, its activity and the resident's booking of it (if any), in one statement.
_BOOKABLE = (
    select(*_SESSION_COLUMNS, *_ACTIVITY_COLUMNS, *_BOOKING_COLUMNS)
    .select_from(_SESSIONS)
    .join(_ACTIVITIES, _ACTIVITIES.c.id == _SESSIONS.c.activity_id)
    .outerjoin(
        _BOOKINGS,
        and_(_BOOKINGS.c.session_id == _SESSIONS.c.id, _BOOKINGS.c.resident_id == bindparam("resident")),
    )
    .where(_SESSIONS.c.id == bindparam("session_id"), _ACTIVITIES.c.active.is_(True))
)
# A place taken (never beyond the capacity), returning how many are booked now.
_TAKE_PLACE = (
    update(ActivitySession)
    .where(ActivitySession.id == bindparam("session_id"), ActivitySession.booked < ActivitySession.capacity)
    .values(booked=ActivitySession.booked + 1)
    .returning(ActivitySession.booked)
)
_NEW_BOOKING = insert(Booking).returning(*_BOOKING_COLUMNS)
# A cancelled booking booked again: its next attempt.
_REBOOK = (
    update(Booking)
    .where(Booking.id == bindparam("booking_id"), Booking.status == "cancelled")
    .values(
        status=bindparam("new_status"),
        attempt=Booking.attempt + 1,
        queued_at=bindparam("now"),
        cancelled_at=None,
        reminded_at=None,
        booked_at=bindparam("new_booked_at"),
        points_paid=bindparam("new_paid"),
        updated_at=bindparam("now"),
        request_key=bindparam("key"),
    )
    .returning(*_BOOKING_COLUMNS)
)


# The way a booking succeeds on SQLite runs these on the driver's cursor (bot/storage/prepared.py):
# through ``Connection.execute`` each cost several times what SQLite spends on it.
_BOOKABLE_ROWS, _TAKE_PLACE_ROWS = Prepared(_BOOKABLE), Prepared(_TAKE_PLACE)
_NEW_BOOKING_ROWS = Prepared(_NEW_BOOKING)
_SESSION_KEYS, _ACTIVITY_KEYS, _BOOKING_KEYS = (
    tuple(c.key for c in _SESSION_COLUMNS), tuple(c.key for c in _ACTIVITY_COLUMNS), tuple(c.key for c in _BOOKING_COLUMNS)
)


_BALANCES = cast(Table, PointsBalance.__table__)


@functools.cache
def _booking_statement() -> Any:
    """PostgreSQL: a first booking that gets a place, in one statement, its steps data-modifying
    CTEs each fed by the one before (as :func:`bot.services.coupons._redeem_statement`): a place
    taken, only while, as the statement's snapshot shows them, the activity is active, booking is
    open, the resident has no booking of the session and has the points; the booking inserted
    (``ON CONFLICT DO NOTHING``: one a concurrent double tap committed after the snapshot leaves it
    out instead of failing the batch's transaction); the price debited where the balance still
    covers it, and its ledger row (:func:`bot.services.points.debit_ctes`). Returns a row when a place was taken: the session as after it,
    its activity, the booking (NULL: not inserted), the balance after the debit (NULL: none) and
    the balance as the snapshot shows it. What is written is a prefix: :data:`_GIVE_BACK` undoes it."""
    session_id = bindparam("p_session", type_=Integer())
    resident = bindparam("p_resident", type_=Integer())
    now = bindparam("p_now", type_=UTCDateTime())
    cost = (
        select(_ACTIVITIES.c.points_cost).where(_ACTIVITIES.c.id == _SESSIONS.c.activity_id).scalar_subquery()
    )
    balance = select(_BALANCES.c.balance).where(_BALANCES.c.resident_id == resident).scalar_subquery()
    taken = (
        update(cast(Table, _SESSIONS))
        .where(
            _SESSIONS.c.id == session_id,
            _SESSIONS.c.booked < _SESSIONS.c.capacity,
            _SESSIONS.c.activity_id.in_(select(_ACTIVITIES.c.id).where(_ACTIVITIES.c.active.is_(True))),
            or_(_SESSIONS.c.booking_opens_at.is_(None), _SESSIONS.c.booking_opens_at <= now),
            func.coalesce(_SESSIONS.c.booking_closes_at, _SESSIONS.c.starts_at) > now,
            _SESSIONS.c.starts_at > now,
            ~exists().where(_BOOKINGS.c.session_id == session_id, _BOOKINGS.c.resident_id == resident),
            or_(cost <= 0, func.coalesce(balance, 0) >= cost),
        )
        .values(booked=_SESSIONS.c.booked + 1)
        .returning(*_SESSION_COLUMNS)
        .cte("taken")
    )
    with_activity = taken.join(_ACTIVITIES, _ACTIVITIES.c.id == taken.c.activity_id)
    booked = (
        postgresql.insert(cast(Table, _BOOKINGS))
        .from_select(
            ["session_id", "resident_id", "status", "points_paid", "attempt", "queued_at", "booked_at", "updated_at",
             "request_key"],
            select(
                taken.c.id, resident, literal("booked"), _ACTIVITIES.c.points_cost, literal(1), now, now, now,
                bindparam("p_key", type_=String()),
            ).select_from(with_activity),
        )
        .on_conflict_do_nothing()
        .returning(*_BOOKING_COLUMNS)
        .cte("booking")
    )  # fmt: skip
    booking_id = sql_cast(booked.c.id, String())
    debited, entry = points.debit_ctes(
        booked, resident=resident, amount=booked.c.points_paid, reason="course", ref_type="booking", ref_id=booking_id,
        key=literal("booking:") + booking_id + literal(":") + sql_cast(booked.c.attempt, String()) + literal(":pay"),
        now=now,
    )  # fmt: skip
    return (
        select(*taken.c, *_ACTIVITY_COLUMNS, *booked.c, debited.c.balance, func.coalesce(balance, 0))
        .select_from(with_activity.outerjoin(booked, true()).outerjoin(debited, true()))
        .add_cte(entry)
    )


# What :func:`_booking_statement` took when it did not carry through (our own rows, uncommitted):
# the booking (if inserted) and the place.
_GIVE_BACK = (
    update(cast(Table, _SESSIONS))
    .where(_SESSIONS.c.id == bindparam("p_session"))
    .values(booked=_SESSIONS.c.booked - 1)
    .add_cte(
        delete(cast(Table, _BOOKINGS))
        .where(_BOOKINGS.c.id == bindparam("p_booking", type_=_BOOKINGS.c.id.type))
        .cte("gone")
    )
)


def _book_in_one(
    connection: Connection, resident_id: int, session_id: int, now: datetime, request_key: str | None
) -> BookingResult | None:
    """PostgreSQL: a first booking with a place in one statement (:func:`_booking_statement`);
    None when it did not carry through: what it took is given back and the caller decides."""
    row: Any = connection.execute(
        _booking_statement(), {"p_session": session_id, "p_resident": resident_id, "p_now": now, "p_key": request_key}
    ).first()
    if row is None:  # no place taken, nothing written
        return None
    ends = (len(_SESSION_COLUMNS), len(_SESSION_COLUMNS) + len(_ACTIVITY_COLUMNS))
    booking_end = ends[1] + len(_BOOKING_COLUMNS)
    sess: ActivitySession = _entity(ActivitySession, _SESSION_COLUMNS, row[: ends[0]])
    activity: Activity = _entity(Activity, _ACTIVITY_COLUMNS, row[ends[0] : ends[1]])
    booking_id, debited, balance = row[ends[1]], row[booking_end], row[booking_end + 1]
    if booking_id is None or (activity.points_cost > 0 and debited is None):
        connection.execute(_GIVE_BACK, {"p_session": session_id, "p_booking": booking_id})
        return None
    booking: Booking = _entity(Booking, _BOOKING_COLUMNS, row[ends[1] : booking_end])
    return BookingResult(booking, sess, activity, int(debited if activity.points_cost > 0 else balance))


def _entity(model: Any, columns: Sequence[Any], values: Sequence[Any]) -> Any:
    """A detached ``model`` instance holding a row's values (what the caller reads of it)."""
    return model(**{column.key: value for column, value in zip(columns, values, strict=True)})


def _book(
    connection: Connection,
    resident_id: int,
    session_id: int,
    now: datetime,
    waitlist: bool,
    request_key: str | None = None,
) -> BookingResult:
    """The booking in Core statements: the session with the resident's booking of it, the place
    taken, the booking written in its final status (inserted, or a cancelled one booked again), the
    price debited; anything refused raises and the caller's transaction rolls it all back."""
    found = _BOOKABLE_ROWS.rows(connection, {"resident": resident_id, "session_id": session_id})
    if not found:
        raise BookingError("not_found")
    row = found[0]
    split, tail = len(_SESSION_COLUMNS), len(_SESSION_COLUMNS) + len(_ACTIVITY_COLUMNS)
    sess: ActivitySession = detached(ActivitySession, _SESSION_KEYS, row[:split])
    activity: Activity = detached(Activity, _ACTIVITY_KEYS, row[split:tail])
    existing: Booking | None = detached(Booking, _BOOKING_KEYS, row[tail:]) if row[tail] is not None else None
    if sess.booking_opens_at is not None and now < sess.booking_opens_at:
        raise BookingError("not_open", opens_at=sess.booking_opens_at)
    closes = sess.booking_closes_at or sess.starts_at
    if now >= closes or now >= sess.starts_at:
        raise BookingError("closed")
    if existing is not None and existing.status in ACTIVE:
        if request_key is not None and existing.request_key == request_key:
            return BookingResult(existing, sess, activity, points.balance_in(connection, resident_id))
        raise BookingError("duplicate", status=existing.status)
    taken = _TAKE_PLACE_ROWS.scalars(connection, {"session_id": session_id})
    booked = taken[0] if taken else None
    if booked is None and not waitlist:
        raise BookingError("full")
    if booked is not None:
        sess.booked = booked
    status = "booked" if booked is not None else "waitlisted"
    booked_at = now if booked is not None else None
    paid = max(activity.points_cost, 0) if booked is not None else 0  # debited below, or all rolled back
    if existing is None:
        (values,) = _NEW_BOOKING_ROWS.rows(connection, {
            "session_id": session_id, "resident_id": resident_id, "status": status, "points_paid": paid,
            "attempt": 1, "queued_at": now, "booked_at": booked_at, "updated_at": now, "request_key": request_key,
        })  # the unique (session, resident) row: a concurrent double tap stops here  # fmt: skip
    else:
        again = connection.execute(_REBOOK, {
            "booking_id": existing.id, "new_status": status, "now": now, "new_booked_at": booked_at,
            "new_paid": paid, "key": request_key,
        }).first()  # fmt: skip
        if again is None:
            raise BookingError("duplicate")
        values = again
    booking: Booking = detached(Booking, _BOOKING_KEYS, values)
    if booked is None:
        return BookingResult(booking, sess, activity, points.balance_in(connection, resident_id))
    return BookingResult(booking, sess, activity, _pay_in(connection, booking, activity, now))


def _pay_in(connection: Connection, booking: Booking, activity: Activity, now: datetime) -> int:
    """The booking's price taken from its resident (in the caller's transaction); the new balance.
    Raises :class:`BookingError` ``points`` when the balance is too low."""
    if activity.points_cost <= 0:
        return points.balance_in(connection, booking.resident_id)
    try:
        balance = points.debit_in(
            connection,
            resident_id=booking.resident_id,
            amount=activity.points_cost,
            reason="course",
            ref_type="booking",
            ref_id=str(booking.id),
            idempotency_key=f"booking:{booking.id}:{booking.attempt}:pay",
            now=now,
        )
    except points.InsufficientPoints as exc:
        raise BookingError("points", balance=exc.balance, cost=activity.points_cost) from None
    booking.points_paid = activity.points_cost
    return balance


async def _pay(session: AsyncSession, booking: Booking, activity: Activity, now: datetime) -> int:
    return await session.run_sync(lambda sync: _pay_in(sync.connection(), booking, activity, now))


async def cancel(db: Database, *, resident_id: int | None, booking_id: int, now: datetime) -> CancelResult:
    """Cancel a booking or leave the waitlist; refund before the cut-off; promote the next in line.

    ``resident_id`` None: staff cancelling on the resident's behalf.
    """
    async with db.transaction() as session:
        booking = await session.get(Booking, booking_id)
        if booking is None or (resident_id is not None and booking.resident_id != resident_id):
            raise BookingError("not_found")
        sess = await session.get(ActivitySession, booking.session_id)
        assert sess is not None
        activity = await session.get(Activity, sess.activity_id)
        assert activity is not None
        previous = booking.status
        if previous not in ("booked", "waitlisted") or now >= sess.starts_at:
            raise BookingError("not_cancellable", status=previous)
        changed = await session.execute(
            update(Booking)
            .where(Booking.id == booking_id, Booking.status == previous)
            .values(status="cancelled", cancelled_at=now, updated_at=now)
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise BookingError("not_cancellable", status="changed")
        refunded = 0
        promoted: list[int] = []
        if previous == "booked":
            await session.execute(
                update(ActivitySession)
                .where(ActivitySession.id == sess.id)
                .values(booked=ActivitySession.booked - 1)
            )
            if booking.points_paid > 0 and now <= sess.starts_at - points.rules().cancel_refund_cutoff:
                if await points.credit(
                    session,
                    resident_id=booking.resident_id,
                    amount=booking.points_paid,
                    reason="refund",
                    ref_type="booking",
                    ref_id=str(booking.id),
                    idempotency_key=f"booking:{booking.id}:{booking.attempt}:refund",
                    now=now,
                ):
                    refunded = booking.points_paid
            promoted = await promote(session, sess.id, now)
        await session.refresh(booking)
        await session.refresh(sess)
        return CancelResult(booking, sess, activity, refunded, previous, promoted)


async def promote(session: AsyncSession, session_id: int, now: datetime) -> list[int]:
    """Give free places to the waitlist in order (caller's transaction); notifies each resident."""
    sess = await session.get(ActivitySession, session_id)
    activity = await session.get(Activity, sess.activity_id) if sess is not None else None
    if sess is None or activity is None or now >= sess.starts_at:
        return []
    promoted: list[int] = []
    when = local_when(sess.starts_at)
    while True:
        nxt = await session.scalar(
            select(Booking)
            .where(Booking.session_id == session_id, Booking.status == "waitlisted")
            .order_by(Booking.queued_at, Booking.id)
            .limit(1)
        )
        if nxt is None:
            break
        taken = await session.execute(
            update(ActivitySession)
            .where(ActivitySession.id == session_id, ActivitySession.booked < ActivitySession.capacity)
            .values(booked=ActivitySession.booked + 1)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            break
        balance = await points.lock_account(session, nxt.resident_id, now)
        if balance < activity.points_cost:
            await session.execute(
                update(ActivitySession)
                .where(ActivitySession.id == session_id)
                .values(booked=ActivitySession.booked - 1)
            )
            nxt.status, nxt.cancelled_at, nxt.updated_at = "cancelled", now, now
            await session.flush()
            text = NOTICES["promoted_no_points"].format(
                title=activity.title, when=when, cost=activity.points_cost
            )
            await _notify(session, nxt.resident_id, text, f"booking:{nxt.id}:{nxt.attempt}:no-points", now)
            continue
        await _pay(session, nxt, activity, now)
        nxt.status, nxt.booked_at, nxt.updated_at = "booked", now, now
        await session.flush()
        paid = f"，扣{activity.points_cost}积分" if activity.points_cost else ""
        text = NOTICES["promoted"].format(title=activity.title, when=when, paid=paid)
        await _notify(session, nxt.resident_id, text, f"booking:{nxt.id}:{nxt.attempt}:promoted", now)
        promoted.append(nxt.id)
    return promoted


# -- periodic jobs ---------------------------------------------------------------------------------


async def send_reminders(db: Database, now: datetime) -> int:
    """Remind booked residents of sessions starting within ``remind_hours_before`` (once each)."""
    horizon = now + points.rules().remind_before
    sent = 0
    async with db.session() as session:  # read first: most runs find nothing and take no write lock
        anything = await session.scalar(
            select(Booking.id)
            .join(ActivitySession, ActivitySession.id == Booking.session_id)
            .where(
                Booking.status == "booked",
                Booking.reminded_at.is_(None),
                ActivitySession.starts_at > now,
                ActivitySession.starts_at <= horizon,
            )
            .limit(1)
        )
    if anything is None:
        return 0
    async with db.transaction() as session:
        due = (
            await session.execute(
                select(Booking, ActivitySession, Activity)
                .join(ActivitySession, ActivitySession.id == Booking.session_id)
                .join(Activity, Activity.id == ActivitySession.activity_id)
                .where(
                    Booking.status == "booked",
                    Booking.reminded_at.is_(None),
                    ActivitySession.starts_at > now,
                    ActivitySession.starts_at <= horizon,
                )
                .limit(500)
            )
        ).all()
        for booking, sess, activity in due:
            changed = await session.execute(
                update(Booking)
                .where(Booking.id == booking.id, Booking.reminded_at.is_(None), Booking.status == "booked")
                .values(reminded_at=now)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            text = NOTICES["reminder"].format(
                title=activity.title, when=local_when(sess.starts_at), place=activity.place or "社区活动室"
            )
            await _notify(
                session, booking.resident_id, text, f"booking:{booking.id}:{booking.attempt}:remind", now
            )
            sent += 1
    return sent


async def housekeep_waitlists(db: Database, now: datetime) -> int:
    """Fill places freed by staff (capacity raised); close the waitlists of sessions that started."""
    changed = 0
    async with db.session() as session:  # read first: most runs find nothing and take no write lock
        if await session.scalar(select(Booking.id).where(Booking.status == "waitlisted").limit(1)) is None:
            return 0
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(ActivitySession.id, ActivitySession.starts_at)
                .where(
                    ActivitySession.id.in_(
                        select(Booking.session_id).where(Booking.status == "waitlisted").distinct()
                    )
                )
                .order_by(ActivitySession.id)
            )
        ).all()
        for session_id, starts_at in rows:
            if now < starts_at:
                changed += len(await promote(session, session_id, now))
                continue
            sess = await session.get(ActivitySession, session_id)
            activity = await session.get(Activity, sess.activity_id) if sess else None
            waiting = (
                await session.scalars(
                    select(Booking).where(Booking.session_id == session_id, Booking.status == "waitlisted")
                )
            ).all()
            for b in waiting:
                b.status, b.cancelled_at, b.updated_at = "cancelled", now, now
                if activity is not None:
                    text = NOTICES["waitlist_closed"].format(title=activity.title, when=local_when(starts_at))
                    await _notify(session, b.resident_id, text, f"booking:{b.id}:{b.attempt}:closed", now)
                changed += 1
            await session.flush()
    return changed


# -- check-in --------------------------------------------------------------------------------------


async def check_in(db: Database, *, resident_id: int, activity_id: int, now: datetime) -> CheckInResult:
    """Check the resident in (once per activity and day), credit the points once, record hours."""
    rules = points.rules()
    day = rules.local_day(now)
    try:
        async with db.transaction() as session:
            return await _check_in(session, resident_id, activity_id, now, day)
    except IntegrityError:
        # The same check-in arrived concurrently and won: report it.
        async with db.session() as session:
            row = await session.scalar(
                select(CheckIn).where(
                    CheckIn.activity_id == activity_id, CheckIn.resident_id == resident_id, CheckIn.day == day
                )
            )
            activity = await session.get(Activity, activity_id)
        if row is None or activity is None:
            raise
        return CheckInResult(row, activity, False, 0, row.work_unit)


async def _check_in(
    session: AsyncSession, resident_id: int, activity_id: int, now: datetime, day: str
) -> CheckInResult:
    activity = await session.get(Activity, activity_id)
    if activity is None or not activity.active:
        raise BookingError("not_found")
    existing = await session.scalar(
        select(CheckIn).where(
            CheckIn.activity_id == activity_id, CheckIn.resident_id == resident_id, CheckIn.day == day
        )
    )
    if existing is not None:
        return CheckInResult(existing, activity, False, 0, existing.work_unit)
    start, end = points.rules().day_bounds(now)
    sess = await session.scalar(
        select(ActivitySession)
        .where(
            ActivitySession.activity_id == activity_id,
            ActivitySession.starts_at >= start,
            ActivitySession.starts_at < end,
        )
        .order_by(ActivitySession.starts_at)
        .limit(1)
    )
    member = await session.get(PartyMember, resident_id)
    row = CheckIn(
        activity_id=activity_id,
        resident_id=resident_id,
        session_id=sess.id if sess else None,
        day=day,
        volunteer_hours=activity.volunteer_hours,
        work_unit=member.work_unit if member else None,
        checked_in_at=now,
    )
    session.add(row)
    await session.flush()  # unique (activity, resident, day): a concurrent duplicate stops here
    credited = await points.earn(
        session,
        resident_id=resident_id,
        rule="activity",
        ref_type="check_in",
        ref_id=str(row.id),
        idempotency_key=f"checkin:{activity_id}:{resident_id}:{day}",
        now=now,
        amount=activity.reward_points,
    )
    row.points = credited
    if sess is not None:
        await session.execute(
            update(Booking)
            .where(
                Booking.session_id == sess.id, Booking.resident_id == resident_id, Booking.status == "booked"
            )
            .values(status="attended", updated_at=now)
        )
    await session.flush()
    return CheckInResult(row, activity, True, credited, row.work_unit)


async def register_work_unit(
    db: Database, *, resident_id: int, work_unit: str, now: datetime, name: str | None = None
) -> int:
    """Record an in-service party member's work unit; today's check-ins get it too. Returns how many."""
    work_unit = " ".join(work_unit.split())[:100]
    if not work_unit:
        raise ValueError("the work unit must not be empty")
    day = points.rules().local_day(now)
    async with db.transaction() as session:
        member = await session.get(PartyMember, resident_id)
        if member is None:
            session.add(
                PartyMember(resident_id=resident_id, work_unit=work_unit, name=name, registered_at=now)
            )
        else:
            member.work_unit = work_unit
            if name:
                member.name = name
        result = await session.execute(
            update(CheckIn)
            .where(CheckIn.resident_id == resident_id, CheckIn.day == day)
            .values(work_unit=work_unit)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ServiceRecord:
    day: str
    resident_id: int
    name: str | None
    activity: str
    hours: float
    points: int


async def service_record(
    session: AsyncSession, work_unit: str, since: datetime | None = None, until: datetime | None = None
) -> Sequence[ServiceRecord]:
    """Check-ins of the unit's in-service party members (双报到), oldest first."""
    stmt = (
        select(CheckIn, Activity.title, PartyMember.name)
        .join(Activity, Activity.id == CheckIn.activity_id)
        .outerjoin(PartyMember, PartyMember.resident_id == CheckIn.resident_id)
        .where(CheckIn.work_unit == work_unit)
        .order_by(CheckIn.checked_in_at, CheckIn.id)
    )
    if since is not None:
        stmt = stmt.where(CheckIn.checked_in_at >= since)
    if until is not None:
        stmt = stmt.where(CheckIn.checked_in_at < until)
    rows = (await session.execute(stmt)).all()
    return [
        ServiceRecord(c.day, c.resident_id, name, title, c.volunteer_hours, c.points)
        for c, title, name in rows
    ]


def week_end(now: datetime) -> datetime:
    """The end of this local week (Monday 00:00 next week)."""
    local = now.astimezone(points.rules().tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=7 - local.weekday())
