"""The dashboard's daily roll-ups: per China day, what its sections would otherwise aggregate
from every message, ticket and points entry of a period (a year's call read two years of rows).

* ``dashboard_message_days``: inbound messages per day and intent; ``dashboard_resident_days``: who
  wrote on which day (distinct residents over a period do not add up across days: they are counted
  over these rows). Messages are never changed, so a finished day is rolled up once.
* ``dashboard_points_days``: points issued and spent per day and reason (the ledger never changes
  an entry's day, reason or amount), rolled up once like the messages.
* ``dashboard_ticket_days``: tickets per creation day, category, department and grid with the
  counts the ticket figures add up. Tickets change (answered, rated, reopened …) long after the day
  they were created, and every change sets ``updated_at``: the roll-up's ``watermark`` says since
  when changes may be missing, and the days those tickets were created on are read from the raw
  rows until the next run rolls them up again.

Only finished days are rolled up, :data:`MARGIN` after they end (a row is assumed committed within
that long of the time it carries); the days after ``through`` (today's partial day among them) are
always computed from the raw rows, so the dashboard's figures equal the raw data at any time.

The scheduler's ``dashboard.rollup`` job runs :func:`rollup` every few minutes; its first run fills
every finished day (``python -m bot db rollup`` does the same by hand).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.services.tickets import CHINA
from bot.storage.dashboard_models import (
    DashboardMessageDay,
    DashboardPointsDay,
    DashboardResidentDay,
    DashboardRollup,
    DashboardTicketDay,
    DashboardTicketDuration,
)
from bot.storage.db import Database
from bot.storage.models import Message, PointsEntry, Ticket

MARGIN = timedelta(minutes=10)
INTERVAL = 300.0  # seconds between runs of the job


def day_start(day: date) -> datetime:
    """The UTC time a China day starts."""
    return datetime.combine(day, time(), CHINA)


def last_full_day(now: datetime) -> date:
    """The last China day that ended at least :data:`MARGIN` before ``now``."""
    return (now - MARGIN).astimezone(CHINA).date() - timedelta(days=1)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def _state(session: AsyncSession, name: str, now: datetime) -> DashboardRollup:
    state = await session.get(DashboardRollup, name, with_for_update=True)
    if state is None:
        state = DashboardRollup(name=name, through=None, watermark=None, version=0, updated_at=now)
        session.add(state)
        await session.flush()
    return state


async def _first_day(session: AsyncSession, column: Any, *where: Any) -> date | None:
    first = await session.scalar(select(func.min(column)).where(*where))
    return None if first is None else first.astimezone(CHINA).date()


async def _rollup_once(db: Database, name: str, now: datetime, column: Any, where: tuple[Any, ...],
                       fill: Callable[[AsyncSession, Any, date, date], Awaitable[None]]) -> int:
    """Roll up the finished days not rolled up yet of rows never changed once written (their time
    is ``column``); ``fill(session, sql, first, last)`` writes the days ``first``..``last``.
    Returns how many days."""
    from bot.services.dashboard import _Sql

    target = last_full_day(now)
    async with db.transaction() as session:
        state = await _state(session, name, now)
        if state.through is not None and state.through >= target:
            return 0
        first = state.through + timedelta(days=1) if state.through is not None else \
            await _first_day(session, column, *where)
        if first is not None and first <= target:
            await fill(session, _Sql(db.dialect), first, target)
        state.through, state.version, state.updated_at = target, state.version + 1, now
        return 0 if first is None or first > target else (target - first).days + 1


async def rollup_messages(db: Database, now: datetime) -> int:
    """Roll up the finished days not rolled up yet; returns how many."""
    from bot.services.dashboard import INBOUND

    m = Message

    async def fill(session: AsyncSession, sql: Any, first: date, last: date) -> None:
        inbound = and_(m.direction == INBOUND, m.created_at >= day_start(first),
                       m.created_at < day_start(last + timedelta(days=1)))
        day = sql.day(m.created_at)
        intent = func.coalesce(m.intent, literal_column("''"))
        for model in (DashboardMessageDay, DashboardResidentDay):
            await session.execute(delete(model).where(model.day >= first, model.day <= last))
        await session.execute(insert(DashboardMessageDay).from_select(
            ["day", "intent", "n"], select(day, intent, func.count()).where(inbound).group_by(day, intent)))
        await session.execute(insert(DashboardResidentDay).from_select(
            ["day", "resident_id"], select(day, m.resident_id).where(inbound).group_by(day, m.resident_id)))

    return await _rollup_once(db, "messages", now, m.created_at, (m.direction == INBOUND,), fill)


def points_sums(amount: Any) -> list[Any]:
    """Points issued (positive amounts) and spent (negative ones, summed as positive)."""
    return [func.sum(case((amount > 0, amount), else_=0)), func.sum(case((amount < 0, -amount), else_=0))]


async def rollup_points(db: Database, now: datetime) -> int:
    """Roll up the points ledger's finished days not rolled up yet; returns how many."""
    pe = PointsEntry

    async def fill(session: AsyncSession, sql: Any, first: date, last: date) -> None:
        day = sql.day(pe.created_at)
        await session.execute(delete(DashboardPointsDay).where(DashboardPointsDay.day >= first,
                                                               DashboardPointsDay.day <= last))
        await session.execute(insert(DashboardPointsDay).from_select(
            ["day", "reason", "issued", "spent"],
            select(day, pe.reason, *points_sums(pe.amount))
            .where(pe.created_at >= day_start(first), pe.created_at < day_start(last + timedelta(days=1)))
            .group_by(day, pe.reason)))

    return await _rollup_once(db, "points", now, pe.created_at, (), fill)


def ticket_counts(sql: Any) -> list[Any]:
    """The roll-up's counts of the tickets selected, in :class:`DashboardTicketDay`'s column order."""
    from bot.services.dashboard import RESOLVED, _count_if

    t = Ticket
    return [
        func.count(),
        _count_if(t.status.in_(RESOLVED)),
        _count_if(t.status == "rejected"),
        _count_if(t.reopen_count > 0),
        _count_if(t.rating.is_not(None)),
        _count_if(t.rating.in_(("satisfied", "basic"))),
        _count_if(t.rating == "satisfied"),
        _count_if(t.answered_at.is_not(None)),
        _count_if(and_(t.answered_at.is_not(None), (t.deadline.is_(None)) | (t.answered_at <= t.deadline))),
    ]


def durations(sql: Any) -> list[Any]:
    """A ticket's response and resolution times in seconds (None until there is one)."""
    t = Ticket
    return [sql.seconds(t.responded_at, t.created_at), sql.seconds(t.answered_at, t.created_at)]


COUNT_COLUMNS = ("n", "resolved", "rejected", "reopened", "rated", "approved", "satisfied", "answered", "in_time")
GROUPS = ("category", "department", "grid")


async def rollup_tickets(db: Database, now: datetime) -> int:
    """Roll up the finished days not rolled up yet and again the days of tickets changed since the
    last run; returns how many days."""
    from bot.services.dashboard import _Sql

    sql = _Sql(db.dialect)
    t = Ticket
    target = last_full_day(now)
    async with db.transaction() as session:
        state = await _state(session, "tickets", now)
        through = state.through
        days: set[date] = set()
        if through is not None and state.watermark is not None:
            changed = await session.scalars(select(t.created_at).where(
                t.updated_at >= state.watermark, t.created_at < day_start(through + timedelta(days=1))))
            days |= {c.astimezone(CHINA).date() for c in changed}
        first = through + timedelta(days=1) if through is not None else await _first_day(session, t.created_at)
        if first is not None and first <= target:
            days |= set(_days(first, target))
        if days:
            ordered = sorted(days)
            await session.execute(delete(DashboardTicketDay).where(DashboardTicketDay.day.in_(ordered)))
            day = sql.day(t.created_at)
            keys = [func.coalesce(getattr(t, g), literal_column("''")) for g in GROUPS]
            chosen = and_(t.created_at >= day_start(ordered[0]),
                          t.created_at < day_start(ordered[-1] + timedelta(days=1)),
                          day.in_([sql.day_value(d) for d in ordered]))
            await session.execute(insert(DashboardTicketDay).from_select(
                ["day", *GROUPS, *COUNT_COLUMNS],
                select(day, *keys, *ticket_counts(sql)).where(chosen).group_by(day, *keys)))
            await session.execute(delete(DashboardTicketDuration).where(DashboardTicketDuration.day.in_(ordered)))
            await session.execute(insert(DashboardTicketDuration).from_select(
                ["day", "response", "resolution"],
                select(day, *durations(sql)).where(chosen, t.responded_at.is_not(None) | t.answered_at.is_not(None))))
        state.through = max(through, target) if through is not None else target
        state.watermark = now - MARGIN
        state.version, state.updated_at = state.version + 1, now
        return len(days)


async def rollup(db: Database, now: datetime) -> int:
    """Bring every roll-up up to date; returns the days rolled up."""
    return await rollup_messages(db, now) + await rollup_tickets(db, now) + await rollup_points(db, now)


async def rollup_job(rt: Runtime, now: datetime) -> int:
    return await rollup(rt.db, now)
