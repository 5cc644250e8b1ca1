"""The dashboard (驾驶舱, issue 16): how residents were served in a period and the period before it.

A period is a range of China dates ``[start, end)``; the previous period has the same length and
ends where this one starts. Every figure is aggregated in SQL (``GROUP BY``, window functions for
the median and the 90th percentile, day buckets in China time) on SQLite and PostgreSQL alike, so
the cost is a handful of indexed range scans and no rows are loaded into Python. The tickets and
residents sections read the daily roll-ups (:mod:`bot.services.dashboard_rollup`) for the days
they hold and the raw rows for the others, so the figures equal the raw data.

Three sections, each ``{"figures": {...}, "tables": [...]}``:

* ``tickets``: new per day, by category, department and grid; open and overdue now; response and
  resolution times; 响应率, 解决率, 满意率 and the reopen rate (definitions in :data:`DEFINITIONS`).
* ``residents``: active residents, messages per day by intent, handoffs and how fast staff picked
  them up, the bot's resolution rate (conversations that needed no person).
* ``services``: points issued and spent, coupons redeemed and verified per merchant, course fill
  rates, volunteer check-ins (双报到 by work unit).

A figure is ``{"label", "unit", "current", "previous"}`` (``None`` when undefined, e.g. a rate of
nothing); a table is ``{"name", "title", "columns": [{"key", "label"}], "rows": [{...}], "chart"}``,
the same data the console draws, shows and exports (CSV, XLSX).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Date,
    String,
    and_,
    case,
    cast,
    distinct,
    exists,
    extract,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.services.dashboard_rollup import COUNT_COLUMNS, GROUPS, points_sums, ticket_counts
from bot.services.dashboard_rollup import durations as rollup_durations
from bot.services.tickets import CHINA, OPEN_STATUSES
from bot.storage.dashboard_models import (
    DashboardMessageDay,
    DashboardPointsDay,
    DashboardResidentDay,
    DashboardRollup,
    DashboardTicketDay,
    DashboardTicketDuration,
    TakeoverEvent,
)
from bot.storage.db import Database
from bot.storage.models import (
    Activity,
    ActivitySession,
    Booking,
    CheckIn,
    Coupon,
    HandoffRequest,
    IssuedCoupon,
    Merchant,
    Message,
    PartyMember,
    PointsEntry,
    Ticket,
)

_T = TypeVar("_T")

SECTIONS = ("tickets", "residents", "services")
DEFAULT_DAYS = 30
MAX_DAYS = 366
RESOLVED = ("answered", "closed")
NO_INTENT = "（未识别）"
NONE_LABEL = "（未填）"

DEFINITIONS = {
    "response_rate": "响应率：已答复或已过期限的工单中，在期限内答复的比例",
    "resolution_rate": "解决率：期间新建工单中已办结（已答复或已完结）的比例",
    "satisfaction_rate": "满意率（含基本满意）：已评价工单中“满意”或“基本满意”的比例",
    "reopen_rate": "重办率：期间新建工单中被重新办理过的比例",
    "response_time": "响应时长：从提交到工作人员第一次接单、处理、答复或退回",
    "resolution_time": "办结时长：从提交到答复",
    "bot_resolution_rate": "机器人解决率：居民每天的会话中，没有转人工、也没有工作人员接管或回复的比例",
    "pickup_time": "接入时长：从居民转人工到工作人员接管",
}


class PeriodError(ValueError):
    """A bad ``start`` or ``end``: ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Period:
    start: date  # China date, included
    end: date  # China date, excluded

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def previous(self) -> Period:
        return Period(self.start - timedelta(days=self.days), self.start)

    @property
    def lo(self) -> datetime:
        return datetime.combine(self.start, time(), CHINA).astimezone(UTC)

    @property
    def hi(self) -> datetime:
        return datetime.combine(self.end, time(), CHINA).astimezone(UTC)

    def day_list(self) -> list[str]:
        return [(self.start + timedelta(days=i)).isoformat() for i in range(self.days)]

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "days": self.days}


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date(field: str, raw: str) -> date:
    text = raw.strip()
    try:
        value = date.fromisoformat(text) if _DATE.fullmatch(text) else None
    except ValueError:
        value = None
    if value is None or not 2000 <= value.year <= 2100:
        raise PeriodError(field, f"{field} must be a date YYYY-MM-DD (China time) between 2000 and 2100, "
                                 f"got {raw[:40]!r}")
    return value


def period_of(start: str | None, end: str | None, now: datetime) -> Period:
    """The period asked for: dates ``YYYY-MM-DD`` in China time, ``end`` excluded. Without ``end``
    it ends after today; without ``start`` it is :data:`DEFAULT_DAYS` long."""
    end_day = _date("end", end) if end else now.astimezone(CHINA).date() + timedelta(days=1)
    start_day = _date("start", start) if start else end_day - timedelta(days=DEFAULT_DAYS)
    if end_day <= start_day:
        raise PeriodError("end", "end must be after start (end is excluded: one day is start=D&end=D+1)")
    if (end_day - start_day).days > MAX_DAYS:
        raise PeriodError("end", f"end: a period is at most {MAX_DAYS} days long")
    return Period(start_day, end_day)


# ------------------------------------------------------------------------------- SQL on both dialects
class _Sql:
    """Expressions that differ between SQLite and PostgreSQL."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    async def prepare(self, session: AsyncSession) -> None:
        """For this transaction on PostgreSQL: no just-in-time compiling (chosen by estimated cost, it
        costs a dashboard call tens of milliseconds more than it saves), and memory enough for the
        groupings to stay off disk."""
        if self.pg:
            await session.execute(text("SET LOCAL jit = off"))
            await session.execute(text("SET LOCAL work_mem = '64MB'"))

    def day(self, col: Any) -> ColumnElement[Any]:
        """The China date of a UTC timestamp (China has no daylight saving): a ``date`` on
        PostgreSQL, text ``YYYY-MM-DD`` on SQLite; :func:`_day_text` reads either."""
        if self.pg:
            return cast(func.timezone(literal_column("'Asia/Shanghai'"), col), Date)
        return func.strftime(literal_column("'%Y-%m-%d'"), col, literal_column("'+8 hours'"))

    def day_value(self, day: date) -> Any:
        """``day`` as :meth:`day` gives it, to compare with."""
        return day if self.pg else day.isoformat()

    def seconds(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        if self.pg:
            return extract("epoch", later) - extract("epoch", earlier)
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _day_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


# Inbound messages: a literal, so that the partial index ix_messages_inbound matches every plan.
INBOUND: ColumnElement[Any] = literal_column("'in'")


def _which(col: Any, p: Period) -> ColumnElement[str]:
    """'c' for the current period, 'p' for the previous (the query keeps to both)."""
    return case((col >= p.lo, literal("c")), else_=literal("p"))


def _within(col: Any, p: Period) -> ColumnElement[bool]:
    return and_(col >= p.previous.lo, col < p.hi)


async def _rows(session: AsyncSession, stmt: Any) -> list[Any]:
    return [tuple(row) for row in await session.execute(stmt)]


def _count_if(condition: Any) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


async def _percentiles(session: AsyncSession, sql: _Sql, durations: Any) -> dict[str, dict[str, Any]]:
    """Median and 90th percentile (nearest rank) per period of ``durations`` (columns ``p`` and
    ``d``, seconds): PostgreSQL's ``percentile_disc``; on SQLite window functions (rank ⌈p·n⌉), at
    most four rows."""
    sub = durations.subquery()
    out: dict[str, dict[str, Any]] = {w: {"median": None, "p90": None, "n": 0} for w in ("c", "p")}
    if sql.pg:
        stmt = select(
            sub.c.p,
            func.count(sub.c.d),
            func.percentile_disc(0.5).within_group(sub.c.d),
            func.percentile_disc(0.9).within_group(sub.c.d),
        ).where(sub.c.d.is_not(None)).group_by(sub.c.p)
        for which, n, median, p90 in await _rows(session, stmt):
            out[which] = {"n": int(n), "median": round(max(float(median), 0.0), 1),
                          "p90": round(max(float(p90), 0.0), 1)}
        return out
    ranked = select(
        sub.c.p,
        sub.c.d,
        func.row_number().over(partition_by=sub.c.p, order_by=sub.c.d).label("rn"),
        func.count().over(partition_by=sub.c.p).label("n"),
    ).where(sub.c.d.is_not(None)).subquery()
    stmt = select(ranked.c.p, ranked.c.rn, ranked.c.n, ranked.c.d).where(
        or_(ranked.c.rn == (ranked.c.n * 50 + 99) // 100, ranked.c.rn == (ranked.c.n * 90 + 99) // 100)
    )
    for which, rn, n, d in await _rows(session, stmt):
        entry = out[which]
        entry["n"] = int(n)
        value = round(max(float(d), 0.0), 1)
        if rn == (n * 50 + 99) // 100:
            entry["median"] = value
        if rn == (n * 90 + 99) // 100:
            entry["p90"] = value
    return out


def _seconds(value: Any) -> float | None:
    return None if value is None else round(max(float(value), 0.0), 1)


def _rate(numerator: int | None, denominator: int | None) -> float | None:
    if not denominator:
        return None
    return round((numerator or 0) / denominator, 4)


def _figure(label: str, current: Any, previous: Any, unit: str = "") -> dict[str, Any]:
    return {"label": label, "unit": unit, "current": current, "previous": previous}


def _table(name: str, title: str, columns: Sequence[tuple[str, str]], rows: list[dict[str, Any]],
           chart: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "title": title, "columns": [{"key": k, "label": v} for k, v in columns],
            "rows": rows, "chart": chart}


def _by_period(rows: Any) -> dict[str, Any]:
    found = {row[0]: row for row in rows}
    return {w: found.get(w) for w in ("c", "p")}


def _int(value: Any) -> int:
    return int(value or 0)


# ------------------------------------------------------------------------------------------ tickets
def _kind(name: str) -> Any:
    return literal_column(f"'{name}'").label("kind")


async def _rollup_state(session: AsyncSession, name: str) -> tuple[Any, ...]:
    row = (await session.execute(select(DashboardRollup.through, DashboardRollup.watermark, DashboardRollup.version)
                                 .where(DashboardRollup.name == name))).first()
    return tuple(row) if row is not None else (None, None, None)


async def _consistent(session: AsyncSession, name: str, read: Callable[[tuple[Any, ...]], Awaitable[_T]]) -> _T:
    """``read(state)`` of the roll-up ``name``, again if the roll-up moved on meanwhile (its rows and
    its state change in one transaction: an unchanged version means the reads saw one of them)."""
    state = await _rollup_state(session, name)
    for _ in range(5):
        result = await read(state)
        again = await _rollup_state(session, name)
        if again == state:
            break
        state = again
    return result


def _split(p: Period, through: date | None) -> date:
    """The first day of the two periods not held by a roll-up that holds days up to ``through``."""
    if through is None:
        return p.previous.start
    return min(max(through + timedelta(days=1), p.previous.start), p.end)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), CHINA).astimezone(UTC)


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days, (first, last) each."""
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and runs[-1][1] + timedelta(days=1) == d:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


async def _ticket_groups(session: AsyncSession, p: Period, tr: Any, now: datetime) -> dict[str, Any]:
    """In one statement: tickets per day (this period), per category, department and grid (new in
    each period; from ``tr``, the roll-up's rows and the raw ones' alike), and open and overdue now in
    total and per category, department and grid."""
    t = Ticket
    late = case((and_(t.deadline.is_not(None), t.deadline < now), 1), else_=0)
    op = select(t.category, t.department, t.grid, late.label("late")).where(t.status.in_(OPEN_STATUSES)).cte("op")
    zero: ColumnElement[Any] = literal_column("0")
    current = tr.c.day >= p.start
    branches: list[Any] = [
        select(_kind("day"), cast(tr.c.day, String).label("k"), func.sum(tr.c.n).label("v1"), zero.label("v2"))
        .where(current).group_by(tr.c.day),
        select(_kind("open"), literal_column("NULL").label("k"), func.count(), func.coalesce(func.sum(op.c.late), 0)),
    ]
    for name in ("category", "department", "grid"):
        branches.append(select(_kind(name), tr.c[name], func.sum(case((current, tr.c.n), else_=0)),
                               func.sum(case((current, 0), else_=tr.c.n))).group_by(tr.c[name]))
        branches.append(select(_kind("open_" + name), func.coalesce(op.c[name], literal_column("''")), func.count(),
                               func.sum(op.c.late)).group_by(func.coalesce(op.c[name], literal_column("''"))))
    out: dict[str, Any] = {"day": {}, "open": (0, 0), "category": {}, "department": {}, "grid": {}}
    for kind, key, v1, v2 in await _rows(session, union_all(*branches)):
        if kind == "day":
            out["day"][_day_text(key)] = _int(v1)
        elif kind == "open":
            out["open"] = (_int(v1), _int(v2))
        else:
            name = kind.removeprefix("open_")
            row = out[name].setdefault(key or NONE_LABEL, {"name": key or NONE_LABEL, "current": 0, "previous": 0,
                                                           "open": 0, "overdue": 0})
            if kind.startswith("open_"):
                row["open"], row["overdue"] = row["open"] + _int(v1), row["overdue"] + _int(v2)
            else:
                row["current"], row["previous"] = row["current"] + _int(v1), row["previous"] + _int(v2)
    for name in ("category", "department", "grid"):
        out[name] = sorted(out[name].values(), key=lambda r: (-r["current"], -r["open"], r["name"]))
    return out


async def _ticket_reads(session: AsyncSession, sql: _Sql, p: Period, now: datetime,
                        state: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ticket figures' reads: the roll-up's days, and the raw tickets of the days it does not hold
    (after ``through``, and the days of tickets changed since its ``watermark``)."""
    t = Ticket
    through, watermark, _ = state
    split = _split(p, through)
    split_at = _day_start(split)
    dirty: list[date] = []
    if through is not None and watermark is not None and split > p.previous.start:
        changed = await session.scalars(select(t.created_at).where(
            t.updated_at >= watermark, t.created_at >= p.previous.lo, t.created_at < split_at))
        dirty = sorted({c.astimezone(CHINA).date() for c in changed})
    day = sql.day(t.created_at)
    live: ColumnElement[bool] = and_(t.created_at >= split_at, t.created_at < p.hi)
    for first, last in _runs(dirty):  # index ranges of the changed days (not one range across them)
        live = or_(live, and_(t.created_at >= _day_start(first), t.created_at < _day_start(last + timedelta(days=1))))
    rd, rdur = DashboardTicketDay, DashboardTicketDuration

    def rolled(col: Any) -> ColumnElement[bool]:
        held = and_(col >= p.previous.start, col < split)
        return and_(held, col.not_in(dirty)) if dirty else held

    keys = [func.coalesce(getattr(t, g), literal_column("''")) for g in GROUPS]
    tr = union_all(
        select(rd.day, rd.category, rd.department, rd.grid, *(getattr(rd, c) for c in COUNT_COLUMNS))
        .where(rolled(rd.day)),
        select(day, *keys, *ticket_counts(sql)).where(live).group_by(day, *keys),
    ).cte("tr")
    current = tr.c.day >= p.start
    which = case((current, literal("c")), else_=literal("p"))
    summary = _by_period(await _rows(session, select(
        which, *(func.sum(tr.c[c]) for c in COUNT_COLUMNS)).group_by(which)))
    # Not answered yet and past the deadline now: counted in 响应率 (not rolled up: it depends on now).
    late = select(_which(t.created_at, p).label("w")).where(
        _within(t.created_at, p), t.answered_at.is_(None), t.deadline.is_not(None), t.deadline < now).subquery()
    overdue = {w: _int(n) for w, n in await _rows(session, select(late.c.w, func.count()).group_by(late.c.w))}
    durations = union_all(
        select(case((rdur.day >= p.start, literal("c")), else_=literal("p")).label("p"), rdur.response,
               rdur.resolution).where(rolled(rdur.day)),
        select(_which(t.created_at, p), *rollup_durations(sql)).where(live),
    ).subquery("durations")
    d = durations.c
    if sql.pg:  # each column sorted once for both quantiles (ordered-set aggregates skip NULLs)
        quantiles: ColumnElement[Any] = literal_column("ARRAY[0.5, 0.9]")
        found = {w: (r, s) for w, r, s in await _rows(session, select(
            d.p, func.percentile_disc(quantiles).within_group(d.response),
            func.percentile_disc(quantiles).within_group(d.resolution)).group_by(d.p))}

        def pct(index: int) -> dict[str, Any]:
            out = {}
            for w in ("c", "p"):
                values = found.get(w, (None, None))[index] or [None, None]
                out[w] = {"median": _seconds(values[0]), "p90": _seconds(values[1])}
            return out
        response, resolution = pct(0), pct(1)
    else:
        response = await _percentiles(session, sql, select(d.p, d.response.label("d")))
        resolution = await _percentiles(session, sql, select(d.p, d.resolution.label("d")))
    groups = await _ticket_groups(session, p, tr, now)
    return summary, overdue, response, resolution, groups


async def tickets(db: Database, p: Period, now: datetime) -> dict[str, Any]:
    sql = _Sql(db.dialect)
    async with db.session() as session:
        await sql.prepare(session)
        summary, overdue, response, resolution, groups = await _consistent(
            session, "tickets", lambda state: _ticket_reads(session, sql, p, now, state))
    per_day = groups["day"]
    now_open, now_overdue = groups["open"]

    def pick(which: str, index: int) -> int:
        row = summary[which]
        return _int(row[index]) if row is not None else 0

    def both(fn: Any) -> tuple[Any, Any]:
        return fn("c"), fn("p")

    figures = {
        "new": _figure("新建工单", *both(lambda w: pick(w, 1)), "件"),
        "open_now": _figure("当前未办结", _int(now_open), None, "件"),
        "overdue_now": _figure("当前超期", _int(now_overdue), None, "件"),
        "resolved": _figure("已办结", *both(lambda w: pick(w, 2)), "件"),
        "response_rate": _figure("响应率", *both(lambda w: _rate(pick(w, 9), pick(w, 8) + overdue.get(w, 0))), "%"),
        "resolution_rate": _figure("解决率", *both(lambda w: _rate(pick(w, 2), pick(w, 1))), "%"),
        # 基本满意 counts as satisfied: the label says so and 基本满意 has its own count beside 满意
        "satisfaction_rate": _figure("满意率（含基本满意）", *both(lambda w: _rate(pick(w, 6), pick(w, 5))), "%"),
        "reopen_rate": _figure("重办率", *both(lambda w: _rate(pick(w, 4), pick(w, 1))), "%"),
        "rated": _figure("已评价", *both(lambda w: pick(w, 5)), "件"),
        "satisfied": _figure("满意", *both(lambda w: pick(w, 7)), "件"),
        "basic": _figure("基本满意", *both(lambda w: pick(w, 6) - pick(w, 7)), "件"),
        "rejected": _figure("退回", *both(lambda w: pick(w, 3)), "件"),
        "response_median": _figure("响应时长中位数", response["c"]["median"], response["p"]["median"], "s"),
        "response_p90": _figure("响应时长P90", response["c"]["p90"], response["p"]["p90"], "s"),
        "resolution_median": _figure("办结时长中位数", resolution["c"]["median"], resolution["p"]["median"], "s"),
        "resolution_p90": _figure("办结时长P90", resolution["c"]["p90"], resolution["p"]["p90"], "s"),
    }
    group_columns = (("name", "{}"), ("current", "本期"), ("previous", "上期"), ("open", "未办结"), ("overdue", "超期"))
    tables = [
        _table("tickets_per_day", "每日新建工单", (("day", "日期"), ("count", "新建")),
               [{"day": d, "count": per_day.get(d, 0)} for d in p.day_list()],
               {"type": "line", "x": "day", "series": ["count"]}),
    ]
    for key, title in (("category", "类别"), ("department", "部门"), ("grid", "网格")):
        cols = tuple((k, v.format(title)) for k, v in group_columns)
        tables.append(_table(f"tickets_by_{key}", f"按{title}", cols, groups[key],
                             {"type": "bar", "x": "name", "series": ["current", "previous"]}))
    tables.append(_table("tickets_figures", "工单指标", (("label", "指标"), ("current", "本期"), ("previous", "上期"), ("unit", "单位")),
                         [{k: f[k] for k in ("label", "current", "previous", "unit")} for f in figures.values()]))
    return {"figures": figures, "tables": tables}


# ---------------------------------------------------------------------------------------- residents
async def residents(db: Database, p: Period, now: datetime) -> dict[str, Any]:
    sql = _Sql(db.dialect)
    h = HandoffRequest
    async with db.session() as session:
        await sql.prepare(session)
        counted = await _consistent(session, "messages", lambda state: _message_counts(session, sql, p, state))
        summary = counted["total"]
        per_day_intent = counted["day_intent"]
        intent_totals = counted["intent"]
        conversations = counted["conversations"]
        with_person = counted["with_person"]

        hinner = select(_which(h.created_at, p).label("p"), h.reason, h.status, h.claimed_at).where(
            _within(h.created_at, p)).subquery()
        handoffs = _by_period(await _rows(session, select(
            hinner.c.p, func.count(), _count_if(hinner.c.claimed_at.is_not(None))).group_by(hinner.c.p)))
        reasons = [(r, _int(c), _int(pv)) for r, c, pv in await _rows(session,
            select(hinner.c.reason, _count_if(hinner.c.p == "c"), _count_if(hinner.c.p == "p")).group_by(hinner.c.reason))]
        waiting = _int(await session.scalar(select(func.count()).where(h.status == "waiting")))
        pickup = await _percentiles(session, sql, select(
            _which(h.created_at, p).label("p"), sql.seconds(h.claimed_at, h.created_at).label("d")
        ).where(_within(h.created_at, p), h.claimed_at.is_not(None)))

    def s(which: str, index: int) -> int:
        row = summary[which]
        return _int(row[index]) if row is not None else 0

    def hs(which: str, index: int) -> int:
        row = handoffs[which]
        return _int(row[index]) if row is not None else 0

    def bot_rate(which: str) -> float | None:
        total = conversations.get(which, 0)
        return _rate(total - min(with_person.get(which, 0), total), total)

    figures = {
        "active_residents": _figure("活跃居民", s("c", 2), s("p", 2), "人"),
        "messages": _figure("居民消息", s("c", 1), s("p", 1), "条"),
        "conversations": _figure("会话（居民·天）", conversations.get("c", 0), conversations.get("p", 0), "个"),
        "handoffs": _figure("转人工", hs("c", 1), hs("p", 1), "次"),
        "handoffs_picked": _figure("已接入", hs("c", 2), hs("p", 2), "次"),
        "handoffs_waiting": _figure("当前等待接入", waiting, None, "人"),
        "pickup_median": _figure("接入时长中位数", pickup["c"]["median"], pickup["p"]["median"], "s"),
        "pickup_p90": _figure("接入时长P90", pickup["c"]["p90"], pickup["p"]["p90"], "s"),
        "bot_resolution_rate": _figure("机器人解决率", bot_rate("c"), bot_rate("p"), "%"),
    }
    intents = sorted({i for _, i, _ in per_day_intent} | {i for i, c, _ in intent_totals if c})
    counts = {(d, i): n for d, i, n in per_day_intent}
    day_rows = [{"day": d, **{i: counts.get((d, i), 0) for i in intents}} for d in p.day_list()]
    tables = [
        _table("messages_per_day", "每日居民消息（按意图）", (("day", "日期"), *((i, i) for i in intents)), day_rows,
               {"type": "stack", "x": "day", "series": intents}),
        _table("messages_by_intent", "按意图", (("name", "意图"), ("current", "本期"), ("previous", "上期")),
               sorted(({"name": i, "current": c, "previous": pv} for i, c, pv in intent_totals),
                      key=lambda r: (-r["current"], r["name"])),
               {"type": "bar", "x": "name", "series": ["current", "previous"]}),
        _table("handoffs_by_reason", "转人工原因", (("name", "原因"), ("current", "本期"), ("previous", "上期")),
               [{"name": r, "current": c, "previous": pv} for r, c, pv in sorted(reasons)]),
        _table("residents_figures", "居民指标", (("label", "指标"), ("current", "本期"), ("previous", "上期"), ("unit", "单位")),
               [{k: f[k] for k in ("label", "current", "previous", "unit")} for f in figures.values()]),
    ]
    return {"figures": figures, "tables": tables}


async def _message_counts(session: AsyncSession, sql: _Sql, p: Period, state: tuple[Any, ...]) -> dict[str, Any]:
    """Inbound messages, in one statement: counts per day and intent (both periods: a few thousand
    rows, summed here per period and intent), and per period the conversations (a resident writing
    on a China day), those that needed a person (the resident asked for one, or staff took the
    conversation over or wrote in it, that day) and the residents who wrote. The days the roll-up
    holds come from it, the rest (today among them) from the messages (index-only scans of
    ix_messages_inbound)."""
    m, h, te = Message, HandoffRequest, TakeoverEvent
    md, rdays = DashboardMessageDay, DashboardResidentDay
    split = _split(p, state[0])
    day = sql.day(m.created_at)
    intent = func.coalesce(m.intent, literal_column("''"))
    live = and_(m.direction == INBOUND, m.created_at >= _day_start(split), m.created_at < p.hi)
    none: ColumnElement[Any] = literal_column("NULL")
    day_intent = union_all(
        select(md.day, md.intent, md.n).where(md.day >= p.previous.start, md.day < split),
        select(day, intent, func.count()).where(live).group_by(day, intent),
    ).subquery("day_intent")
    live_days = select(day.label("day"), m.resident_id.label("rid")).where(live).group_by(day, m.resident_id) \
        .subquery("live_days")
    resident_days = union_all(
        select(rdays.day, rdays.resident_id.label("rid")).where(rdays.day >= p.previous.start, rdays.day < split),
        select(live_days.c.day, live_days.c.rid),
    ).subquery("resident_days")
    labelled = select(
        case((resident_days.c.day >= p.start, literal_column("'c'")), else_=literal_column("'p'")).label("p"),
        resident_days.c.rid,
    ).subquery("labelled")
    # Resident-days with a person (a handoff request, or staff took over or wrote) that were
    # conversations: looked up in the roll-up's primary key, or among today's and other live days.
    person = union(
        select(h.resident_id.label("rid"), sql.day(h.created_at).label("day")).where(_within(h.created_at, p)),
        select(te.resident_id, sql.day(te.at)).where(_within(te.at, p)),
    ).subquery("person")
    split_value = sql.day_value(split)
    hits = union_all(
        select(person.c.day).where(person.c.day < split_value, exists().where(
            rdays.day == person.c.day, rdays.resident_id == person.c.rid)),
        select(person.c.day).join(live_days, and_(live_days.c.rid == person.c.rid, live_days.c.day == person.c.day))
        .where(person.c.day >= split_value),
    ).subquery("hits")
    hit = select(case((hits.c.day >= sql.day_value(p.start), literal_column("'c'")), else_=literal_column("'p'"))
                 .label("p")).subquery("hit")
    stmt = union_all(
        select(_kind("day_intent"), cast(day_intent.c.day, String).label("k1"), day_intent.c.intent.label("k2"),
               day_intent.c.n.label("v1"), literal_column("0").label("v2")),
        select(_kind("people"), labelled.c.p, none, func.count(), func.count(distinct(labelled.c.rid)))
        .group_by(labelled.c.p),
        select(_kind("person"), hit.c.p, none, func.count(), literal_column("0")).group_by(hit.c.p),
    )
    start = p.start.isoformat()
    messages = {"c": 0, "p": 0}
    residents = {"c": 0, "p": 0}
    conversations: dict[str, int] = {}
    with_person: dict[str, int] = {}
    per_day_intent: dict[tuple[str, str], int] = {}
    intents: dict[str, list[int]] = {}
    for kind, k1, k2, v1, v2 in await _rows(session, stmt):
        if kind == "people":
            conversations[k1], residents[k1] = _int(v1), _int(v2)
            continue
        if kind == "person":
            with_person[k1] = _int(v1)
            continue
        which = "c" if _day_text(k1) >= start else "p"
        name = k2 or NO_INTENT
        messages[which] += _int(v1)
        counts = intents.setdefault(name, [0, 0])
        counts[0 if which == "c" else 1] += _int(v1)
        if which == "c":
            key = (_day_text(k1), name)
            per_day_intent[key] = per_day_intent.get(key, 0) + _int(v1)
    return {"total": {w: (w, messages[w], residents[w]) for w in ("c", "p")}, "conversations": conversations,
            "with_person": with_person, "day_intent": [(d, i, n) for (d, i), n in per_day_intent.items()],
            "intent": [(i, c, pv) for i, (c, pv) in intents.items()]}


# ----------------------------------------------------------------------------------------- services
async def _ledger(session: AsyncSession, sql: _Sql, p: Period, state: tuple[Any, ...]) -> list[Any]:
    """(day, reason, issued, spent) over both periods."""
    pe, pd = PointsEntry, DashboardPointsDay
    split = _split(p, state[0])
    day = sql.day(pe.created_at)
    pday = union_all(
        select(pd.day.label("day"), pd.reason.label("reason"), pd.issued.label("i"), pd.spent.label("s"))
        .where(pd.day >= p.previous.start, pd.day < split),
        select(day, pe.reason, *points_sums(pe.amount))
        .where(pe.created_at >= _day_start(split), pe.created_at < p.hi).group_by(day, pe.reason),
    ).subquery("pday")
    return await _rows(session, select(pday.c.day, pday.c.reason, func.sum(pday.c.i), func.sum(pday.c.s))
                       .group_by(pday.c.day, pday.c.reason))


async def services(db: Database, p: Period, now: datetime) -> dict[str, Any]:
    sql = _Sql(db.dialect)
    ic = IssuedCoupon
    async with db.session() as session:
        await sql.prepare(session)
        # The ledger per day and reason (a few hundred rows), summed here per period, reason and day:
        # the days the roll-up holds from it, the rest (today among them) from the ledger.
        ledger = await _consistent(session, "points", lambda state: _ledger(session, sql, p, state))
        points: dict[str, Any] = {"c": ("c", 0, 0), "p": ("p", 0, 0)}
        reasons: list[tuple[str, str, int, int]] = []
        points_days: dict[str, tuple[int, int]] = {}
        for d, reason, i, sp in ledger:
            day_text = _day_text(d)
            which = "c" if day_text >= p.start.isoformat() else "p"
            _, total_i, total_s = points[which]
            points[which] = (which, total_i + _int(i), total_s + _int(sp))
            reasons.append((reason, which, _int(i), _int(sp)))
            if which == "c":
                before = points_days.get(day_text, (0, 0))
                points_days[day_text] = (before[0] + _int(i), before[1] + _int(sp))

        redeemed_inner = (
            select(_which(ic.issued_at, p).label("p"), Coupon.merchant_id.label("mid"), ic.points)
            .join(Coupon, Coupon.id == ic.coupon_id).where(_within(ic.issued_at, p)).subquery()
        )
        redeemed = [(mid, _int(c), _int(pv), _int(pts)) for mid, c, pv, pts in await _rows(session, select(
            redeemed_inner.c.mid, _count_if(redeemed_inner.c.p == "c"), _count_if(redeemed_inner.c.p == "p"),
            func.sum(case((redeemed_inner.c.p == "c", redeemed_inner.c.points), else_=0)),
        ).group_by(redeemed_inner.c.mid))]
        verified_inner = (
            select(_which(ic.used_at, p).label("p"), func.coalesce(ic.merchant_id, Coupon.merchant_id).label("mid"))
            .join(Coupon, Coupon.id == ic.coupon_id).where(ic.used_at.is_not(None), _within(ic.used_at, p)).subquery()
        )
        verified = [(mid, _int(c), _int(pv)) for mid, c, pv in await _rows(session, select(
            verified_inner.c.mid, _count_if(verified_inner.c.p == "c"), _count_if(verified_inner.c.p == "p"),
        ).group_by(verified_inner.c.mid))]
        merchant_ids = {r[0] for r in redeemed} | {r[0] for r in verified}
        names: dict[Any, Any] = dict(await _rows(
            session, select(Merchant.id, Merchant.name).where(Merchant.id.in_(merchant_ids)))) if merchant_ids else {}

        sinner = select(
            _which(ActivitySession.starts_at, p).label("p"), ActivitySession.capacity, ActivitySession.booked
        ).where(_within(ActivitySession.starts_at, p)).subquery()
        seats = _by_period(await _rows(session, select(
            sinner.c.p, func.count(), func.sum(sinner.c.capacity), func.sum(sinner.c.booked)).group_by(sinner.c.p)))
        attended = (
            select(Booking.session_id, _count_if(Booking.status == "attended").label("attended"))
            .group_by(Booking.session_id).subquery()
        )
        courses = [
            {"name": title, "kind": kind, "sessions": _int(n), "capacity": _int(cap), "booked": _int(booked),
             "attended": _int(att), "fill_rate": _rate(_int(booked), _int(cap))}
            for title, kind, n, cap, booked, att in await _rows(session,
                select(Activity.title, Activity.kind, func.count(), func.sum(ActivitySession.capacity),
                       func.sum(ActivitySession.booked), func.sum(func.coalesce(attended.c.attended, 0)))
                .select_from(ActivitySession)
                .join(Activity, Activity.id == ActivitySession.activity_id)
                .outerjoin(attended, attended.c.session_id == ActivitySession.id)
                .where(ActivitySession.starts_at >= p.lo, ActivitySession.starts_at < p.hi)
                .group_by(Activity.id, Activity.title, Activity.kind)
            )
        ]

        ck = CheckIn
        cinner = select(_which(ck.checked_in_at, p).label("p"), ck.resident_id, ck.volunteer_hours, ck.work_unit).where(
            _within(ck.checked_in_at, p)).subquery()
        checkins = _by_period(await _rows(session, select(
            cinner.c.p, func.count(), func.count(distinct(cinner.c.resident_id)), func.sum(cinner.c.volunteer_hours),
            _count_if(cinner.c.work_unit.is_not(None)),
            func.sum(case((cinner.c.work_unit.is_not(None), cinner.c.volunteer_hours), else_=0.0)),
        ).group_by(cinner.c.p)))
        units = [(u, _int(c), _int(pv), _int(r), float(hrs or 0)) for u, c, pv, r, hrs in await _rows(session, select(
            cinner.c.work_unit, _count_if(cinner.c.p == "c"), _count_if(cinner.c.p == "p"),
            func.count(distinct(case((cinner.c.p == "c", cinner.c.resident_id)))),
            func.sum(case((cinner.c.p == "c", cinner.c.volunteer_hours), else_=0.0)),
        ).where(cinner.c.work_unit.is_not(None)).group_by(cinner.c.work_unit))]
        members: dict[Any, Any] = dict(await _rows(
            session, select(PartyMember.work_unit, func.count()).group_by(PartyMember.work_unit)))

    def v(rows: dict[str, Any], which: str, index: int) -> int:
        row = rows[which]
        return _int(row[index]) if row is not None else 0

    def hours(which: str, index: int) -> float:
        row = checkins[which]
        return round(float(row[index] or 0), 1) if row is not None else 0.0

    figures = {
        "points_issued": _figure("发放积分", v(points, "c", 1), v(points, "p", 1), "分"),
        "points_spent": _figure("使用积分", v(points, "c", 2), v(points, "p", 2), "分"),
        "coupons_redeemed": _figure("兑换优惠券", sum(r[1] for r in redeemed), sum(r[2] for r in redeemed), "张"),
        "coupons_verified": _figure("核销优惠券", sum(r[1] for r in verified), sum(r[2] for r in verified), "张"),
        "course_sessions": _figure("课程场次", v(seats, "c", 1), v(seats, "p", 1), "场"),
        "course_fill_rate": _figure("课程满座率", _rate(v(seats, "c", 3), v(seats, "c", 2)),
                                    _rate(v(seats, "p", 3), v(seats, "p", 2)), "%"),
        "checkins": _figure("志愿签到", v(checkins, "c", 1), v(checkins, "p", 1), "次"),
        "volunteers": _figure("签到居民", v(checkins, "c", 2), v(checkins, "p", 2), "人"),
        "volunteer_hours": _figure("志愿时长", hours("c", 3), hours("p", 3), "小时"),
        "dual_checkins": _figure("双报到签到", v(checkins, "c", 4), v(checkins, "p", 4), "次"),
        "dual_hours": _figure("双报到时长", hours("c", 5), hours("p", 5), "小时"),
    }
    by_reason: dict[str, dict[str, Any]] = {}
    for reason, which, i, s in reasons:
        row = by_reason.setdefault(reason, {"name": reason, "issued": 0, "spent": 0, "issued_prev": 0, "spent_prev": 0})
        suffix = "" if which == "c" else "_prev"
        row["issued" + suffix] += i
        row["spent" + suffix] += s
    merchants: dict[int, dict[str, Any]] = {}
    for mid, c, pv, pts in redeemed:
        merchants[mid] = {"name": names.get(mid, f"#{mid}"), "redeemed": c, "redeemed_prev": pv, "points": pts,
                          "verified": 0, "verified_prev": 0}
    for mid, c, pv in verified:
        row = merchants.setdefault(mid, {"name": names.get(mid, f"#{mid}"), "redeemed": 0, "redeemed_prev": 0,
                                         "points": 0, "verified": 0, "verified_prev": 0})
        row["verified"], row["verified_prev"] = c, pv
    tables = [
        _table("points_per_day", "每日积分", (("day", "日期"), ("issued", "发放"), ("spent", "使用")),
               [{"day": d, "issued": points_days.get(d, (0, 0))[0], "spent": points_days.get(d, (0, 0))[1]}
                for d in p.day_list()], {"type": "line", "x": "day", "series": ["issued", "spent"]}),
        _table("points_by_reason", "积分按事由", (("name", "事由"), ("issued", "发放"), ("spent", "使用"),
                                                ("issued_prev", "上期发放"), ("spent_prev", "上期使用")),
               sorted(by_reason.values(), key=lambda r: (-r["issued"] - r["spent"], r["name"]))),
        _table("coupons_by_merchant", "优惠券（按商户）", (("name", "商户"), ("redeemed", "兑换"), ("verified", "核销"),
                                                      ("points", "兑换积分"), ("redeemed_prev", "上期兑换"),
                                                      ("verified_prev", "上期核销")),
               sorted(merchants.values(), key=lambda r: (-r["redeemed"], r["name"])),
               {"type": "bar", "x": "name", "series": ["redeemed", "verified"]}),
        _table("courses", "课程与活动满座率", (("name", "名称"), ("kind", "类型"), ("sessions", "场次"), ("capacity", "名额"),
                                              ("booked", "已报名"), ("attended", "已签到"), ("fill_rate", "满座率")),
               sorted(courses, key=lambda r: (-r["booked"], r["name"])),
               {"type": "bar", "x": "name", "series": ["fill_rate"]}),
        _table("checkins_by_work_unit", "双报到（按单位）", (("name", "单位"), ("checkins", "签到"), ("residents", "党员"),
                                                          ("hours", "时长"), ("previous", "上期签到"), ("members", "报到党员")),
               sorted(({"name": u, "checkins": c, "residents": r, "hours": round(hrs, 1), "previous": pv,
                        "members": _int(members.get(u))} for u, c, pv, r, hrs in units),
                      key=lambda r: (-r["checkins"], r["name"]))),
        _table("services_figures", "积分、课程与志愿指标", (("label", "指标"), ("current", "本期"), ("previous", "上期"), ("unit", "单位")),
               [{k: f[k] for k in ("label", "current", "previous", "unit")} for f in figures.values()]),
    ]
    return {"figures": figures, "tables": tables}


BUILDERS = {"tickets": tickets, "residents": residents, "services": services}


async def section(db: Database, name: str, p: Period, now: datetime) -> dict[str, Any]:
    data = await BUILDERS[name](db, p, now)
    return {"section": name, "period": p.as_json(), "previous": p.previous.as_json(),
            "generated_at": now.isoformat(), **data}
