"""Points (积分): an append-only ledger and a balance per resident that never goes below zero.

Every change writes one ledger row and moves the resident's ``points_balances`` row in the same
transaction (the caller's): credits with an ``INSERT … ON CONFLICT DO NOTHING`` on the ledger's
unique idempotency key (the same earning event credits once, however often it arrives, in any
process), debits with a conditional ``UPDATE … WHERE balance >= amount``. The balance row has a
CHECK (balance >= 0), so even a bug here could not make it negative. The ledger is the source of
truth: :func:`ledger_mismatches` compares it with the balances.

Earning rules (amounts, daily caps, cut-offs) live in ``bot/rules/points.yml``.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy import (
    Connection,
    Integer,
    String,
    Table,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Out
from bot.services.notify import enqueue
from bot.storage.db import Database, dialect_insert
from bot.storage.models import PointsBalance, PointsEntry, Resident, UTCDateTime
from bot.storage.prepared import Prepared

RULES_FILE = Path(__file__).resolve().parent.parent / "rules" / "points.yml"
MAX_AMOUNT = 1_000_000


class RulesError(ValueError):
    """A problem in the rules file; ``str()`` names the file and the setting."""


class PointsError(Exception):
    """A points operation that cannot be done; ``code`` says why."""

    def __init__(self, code: str, message: str, **info: Any) -> None:
        super().__init__(message)
        self.code = code
        self.info = info


class InsufficientPoints(PointsError):
    def __init__(self, balance: int, needed: int) -> None:
        super().__init__("points", f"balance {balance} is less than {needed}", balance=balance, needed=needed)
        self.balance = balance
        self.needed = needed


@dataclass(frozen=True)
class Rules:
    earn: dict[str, int]
    daily_caps: dict[str, int]
    cancel_refund_cutoff: timedelta
    remind_before: timedelta
    refund_expired_coupons: bool
    tz: ZoneInfo

    def local_day(self, when: datetime) -> str:
        return when.astimezone(self.tz).date().isoformat()

    def day_bounds(self, when: datetime) -> tuple[datetime, datetime]:
        local = when.astimezone(self.tz)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)


def _int(data: dict[str, Any], name: str, file: Path, where: str, lo: int = 0, hi: int = MAX_AMOUNT) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RulesError(f"{file}: {where}{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return value


def load_rules(file: Path = RULES_FILE) -> Rules:
    """Read and check the rules file; raises :class:`RulesError` naming the file and setting."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{file}: cannot read: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RulesError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RulesError(f"{file}: expected a mapping of settings at the top level")
    sections: dict[str, dict[str, Any]] = {}
    for name in ("earn", "daily_caps", "courses", "coupons"):
        section = data.get(name) or {}
        if not isinstance(section, dict):
            raise RulesError(f"{file}: '{name}' must be a mapping")
        sections[name] = section
    earn = {str(k): _int(sections["earn"], k, file, "earn.") for k in sections["earn"]}
    caps = {str(k): _int(sections["daily_caps"], k, file, "daily_caps.") for k in sections["daily_caps"]}
    courses = {"cancel_refund_cutoff_hours": 24, "remind_hours_before": 24, **sections["courses"]}
    cutoff = _int(courses, "cancel_refund_cutoff_hours", file, "courses.", 0, 24 * 60)
    remind = _int(courses, "remind_hours_before", file, "courses.", 1, 24 * 14)
    refund = sections["coupons"].get("refund_expired", False)
    if not isinstance(refund, bool):
        raise RulesError(f"{file}: coupons.refund_expired must be true or false, got {refund!r}")
    try:
        tz = ZoneInfo(str(data.get("timezone", "Asia/Shanghai")))
    except (ZoneInfoNotFoundError, ValueError):
        raise RulesError(f"{file}: unknown timezone {data.get('timezone')!r}") from None
    return Rules(earn, caps, timedelta(hours=cutoff), timedelta(hours=remind), refund, tz)


@functools.cache
def rules() -> Rules:
    """The shipped rules (read once)."""
    return load_rules()


def _insert(session: AsyncSession, table: Any) -> Any:
    return dialect_insert(session.get_bind().dialect.name, table)


async def ensure_account(session: AsyncSession, resident_id: int, now: datetime) -> None:
    """Create the resident's balance row (at 0) if it does not exist yet."""
    stmt = _insert(session, PointsBalance).values(resident_id=resident_id, balance=0, updated_at=now)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["resident_id"]))


async def lock_account(session: AsyncSession, resident_id: int, now: datetime) -> int:
    """Create and lock the resident's balance row (PostgreSQL: FOR UPDATE); returns the balance."""
    await ensure_account(session, resident_id, now)
    stmt = select(PointsBalance.balance).where(PointsBalance.resident_id == resident_id).with_for_update()
    return int((await session.execute(stmt)).scalar_one())


def _check_entry(amount: int, reason: str, ref_type: str, ref_id: str, key: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise ValueError(f"amount must be a whole number from 1 to {MAX_AMOUNT}, got {amount!r}")
    for name, value, limit in (("reason", reason, 32), ("ref_type", ref_type, 32), ("ref_id", ref_id, 64)):
        if not value or len(value) > limit:
            raise ValueError(f"{name} must be 1 to {limit} characters")
    if not key or len(key) > 160:
        raise ValueError("idempotency_key must be 1 to 160 characters")


def _now_param() -> Any:
    return bindparam("p_now", type_=UTCDateTime())


def _amount_param() -> Any:
    return bindparam("p_amount", type_=Integer())


@functools.cache
def _entry_values(amount: Any) -> dict[str, Any]:
    """A ledger row's columns as bound parameters (a credit's or a debit's ``amount``)."""
    return {
        "resident_id": bindparam("p_resident"),
        "amount": amount,
        "balance_after": bindparam("p_balance"),
        "reason": bindparam("p_reason"),
        "ref_type": bindparam("p_ref_type"),
        "ref_id": bindparam("p_ref_id"),
        "idempotency_key": bindparam("p_key"),
        "actor": bindparam("p_actor"),
        "note": bindparam("p_note"),
        "created_at": _now_param(),
    }


@functools.cache
def _credit_statements(dialect: str) -> tuple[Prepared, Prepared, Prepared]:
    """A credit's statements, built once per dialect and prepared (``bot/storage/prepared.py``: on
    SQLite's writing thread ``Connection.execute`` cost more than the statements themselves): the
    balance raised (its row created when missing) returning the new balance; the ledger row unless
    its key is there, returning its id; the raise undone when it was."""
    raise_balance = (
        dialect_insert(dialect, PointsBalance)
        .values(resident_id=bindparam("p_resident"), balance=_amount_param(), updated_at=_now_param())
        .on_conflict_do_update(
            index_elements=["resident_id"],
            set_={"balance": PointsBalance.balance + _amount_param(), "updated_at": _now_param()},
        )
        .returning(PointsBalance.balance)
    )
    entry = (
        dialect_insert(dialect, PointsEntry)
        .values(**_entry_values(_amount_param()))
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(PointsEntry.id)
    )
    undo = (
        update(PointsBalance)
        .where(PointsBalance.resident_id == bindparam("p_resident"))
        .values(balance=PointsBalance.balance - _amount_param())
    )
    return Prepared(raise_balance), Prepared(entry), Prepared(undo)


@functools.cache
def _credit_in_one() -> Any:
    """PostgreSQL: a credit in one statement instead of two: the balance raised (the upsert, which
    takes the row's lock) unless the statement's snapshot shows the key credited already, and the
    ledger row with the new balance unless its key is there (``ON CONFLICT DO NOTHING``). Returns
    the new balance and the ledger row's id (NULL: the key was credited by a transaction the
    snapshot did not see; then the raise is to be undone), or no row when nothing was raised."""
    resident, key = bindparam("p_resident", type_=Integer()), bindparam("p_key", type_=String())
    raised = (
        postgresql.insert(PointsBalance)
        .from_select(
            ["resident_id", "balance", "updated_at"],
            select(resident, _amount_param(), _now_param()).where(~exists().where(PointsEntry.idempotency_key == key)),
        )
        .on_conflict_do_update(
            index_elements=["resident_id"],
            set_={"balance": PointsBalance.balance + _amount_param(), "updated_at": _now_param()},
        )
        .returning(PointsBalance.balance)
        .cte("raised")
    )
    text = String()
    entry = (
        postgresql.insert(PointsEntry)
        .from_select(
            ["resident_id", "amount", "balance_after", "reason", "ref_type", "ref_id", "idempotency_key", "actor",
             "note", "created_at"],
            select(
                resident, _amount_param(), raised.c.balance, bindparam("p_reason", type_=text),
                bindparam("p_ref_type", type_=text), bindparam("p_ref_id", type_=text), key,
                bindparam("p_actor", type_=text), bindparam("p_note", type_=text), _now_param(),
            ),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(PointsEntry.id)
        .cte("entry")
    )  # fmt: skip
    return select(raised.c.balance, entry.c.id).select_from(raised.outerjoin(entry, true()))


# A debit's statements (built once and prepared; see _credit_statements): the balance lowered if
# it is enough, returning the new balance; the ledger row (a repeated key: IntegrityError).
_DEBIT_BALANCE = Prepared(
    update(PointsBalance)
    .where(PointsBalance.resident_id == bindparam("p_resident"), PointsBalance.balance >= _amount_param())
    .values(balance=PointsBalance.balance - _amount_param(), updated_at=_now_param())
    .returning(PointsBalance.balance)
)
_DEBIT_ENTRY = Prepared(insert(PointsEntry).values(**_entry_values(-_amount_param())))
_BALANCE = select(PointsBalance.balance).where(PointsBalance.resident_id == bindparam("p_resident"))


def _entry_params(
    resident_id: int, amount: int, reason: str, ref_type: str, ref_id: str, key: str, now: datetime,
    actor: str | None, note: str | None,
) -> dict[str, Any]:
    return {
        "p_resident": resident_id, "p_amount": amount, "p_reason": reason, "p_ref_type": ref_type,
        "p_ref_id": ref_id, "p_key": key, "p_now": now, "p_actor": actor, "p_note": note,
    }  # fmt: skip


async def credit(
    session: AsyncSession,
    *,
    resident_id: int,
    amount: int,
    reason: str,
    ref_type: str,
    ref_id: str,
    idempotency_key: str,
    now: datetime,
    actor: str | None = None,
    note: str | None = None,
) -> bool:
    """Add ``amount`` points in the caller's transaction; False when this key was already credited.

    Two statements: the balance row raised (an upsert, which also takes its lock on PostgreSQL),
    then the ledger row with the new balance; when the key was already credited the ledger insert
    does nothing and the raise is undone (a third). On PostgreSQL both are one statement
    (:func:`_credit_in_one`), which raises nothing for a key its snapshot shows credited."""
    return await session.run_sync(lambda sync: credit_in(
        sync.connection(), resident_id=resident_id, amount=amount, reason=reason, ref_type=ref_type,
        ref_id=ref_id, idempotency_key=idempotency_key, now=now, actor=actor, note=note,
    ))  # fmt: skip


def credit_in(
    connection: Connection,
    *,
    resident_id: int,
    amount: int,
    reason: str,
    ref_type: str,
    ref_id: str,
    idempotency_key: str,
    now: datetime,
    actor: str | None = None,
    note: str | None = None,
) -> bool:
    """:func:`credit` on a synchronous connection, in its transaction (a reply's: ``ctx.with_reply``)."""
    _check_entry(amount, reason, ref_type, ref_id, idempotency_key)
    raise_balance, entry, undo = _credit_statements(connection.dialect.name)
    params = _entry_params(resident_id, amount, reason, ref_type, ref_id, idempotency_key, now, actor, note)
    if connection.dialect.name == "postgresql":
        row = connection.execute(_credit_in_one(), params).first()
        if row is None:  # credited already (as the statement's snapshot shows it): nothing written
            return False
        if row[1] is None:  # credited meanwhile by a transaction the snapshot did not see
            undo.rows(connection, params)
            return False
        return True
    (balance,) = raise_balance.scalars(connection, params)
    if not entry.rows(connection, {**params, "p_balance": balance}):
        undo.rows(connection, params)
        return False
    return True


async def debit(
    session: AsyncSession,
    *,
    resident_id: int,
    amount: int,
    reason: str,
    ref_type: str,
    ref_id: str,
    idempotency_key: str,
    now: datetime,
    actor: str | None = None,
    note: str | None = None,
) -> int:
    """Take ``amount`` points in the caller's transaction; returns the new balance.

    Raises :class:`InsufficientPoints` (nothing written) when the balance is too low. A repeated
    ``idempotency_key`` is an IntegrityError that rolls the caller's transaction back.
    """
    return await session.run_sync(lambda sync: debit_in(
        sync.connection(), resident_id=resident_id, amount=amount, reason=reason, ref_type=ref_type,
        ref_id=ref_id, idempotency_key=idempotency_key, now=now, actor=actor, note=note,
    ))  # fmt: skip


def debit_in(
    connection: Connection,
    *,
    resident_id: int,
    amount: int,
    reason: str,
    ref_type: str,
    ref_id: str,
    idempotency_key: str,
    now: datetime,
    actor: str | None = None,
    note: str | None = None,
) -> int:
    """:func:`debit` on a synchronous connection, in its transaction; returns the new balance.

    Raises :class:`InsufficientPoints` (nothing written) when the balance is too low; a repeated
    ``idempotency_key`` is an IntegrityError."""
    _check_entry(amount, reason, ref_type, ref_id, idempotency_key)
    # No balance row yet is a balance of 0: the UPDATE finds nothing and the debit is refused.
    params = _entry_params(resident_id, amount, reason, ref_type, ref_id, idempotency_key, now, actor, note)
    lowered = _DEBIT_BALANCE.scalars(connection, params)
    balance = lowered[0] if lowered else None
    if balance is None:
        raise InsufficientPoints(balance_in(connection, resident_id), amount)
    _DEBIT_ENTRY.rows(connection, {**params, "p_balance": balance})
    return int(balance)


def debit_ctes(
    source: Any, *, resident: Any, amount: Any, reason: str, ref_type: str, ref_id: Any, key: Any, now: Any
) -> tuple[Any, Any]:
    """PostgreSQL: :func:`debit_in` as two data-modifying CTEs of a caller's one statement, fed by
    ``source`` (a CTE of that statement: the row being paid for; ``amount``, ``ref_id`` and ``key``
    are expressions over it, ``resident`` and ``now`` its bound parameters). ``debited``: the
    balance lowered by ``amount`` where it is positive and the balance still covers it (the row's
    lock and recheck, as :func:`debit_in`), returning the new balance (no row: not debited);
    ``entry``: its ledger row, written only with the debit. Returns ``(debited, entry)``: the
    caller selects ``debited.c.balance`` and adds ``entry`` to the statement (``add_cte``)."""
    balances, ledger = cast(Table, PointsBalance.__table__), cast(Table, PointsEntry.__table__)
    debited = (
        update(balances)
        .where(balances.c.resident_id == resident, amount > 0, balances.c.balance >= amount)
        .values(balance=balances.c.balance - amount, updated_at=now)
        .returning(balances.c.balance)
        .cte("debited")
    )
    entry = (
        insert(ledger)
        .from_select(
            ["resident_id", "amount", "balance_after", "reason", "ref_type", "ref_id", "idempotency_key", "created_at"],
            select(
                resident, -amount, debited.c.balance, literal(reason), literal(ref_type), ref_id, key, now
            ).select_from(source.join(debited, true())),
        )
        .cte("entry")
    )  # fmt: skip
    return debited, entry


def balance_in(connection: Connection, resident_id: int) -> int:
    """:func:`balance_of` on a synchronous connection."""
    value = connection.execute(_BALANCE, {"p_resident": resident_id}).scalar_one_or_none()
    return int(value or 0)


async def earned_today(session: AsyncSession, resident_id: int, reason: str, now: datetime) -> int:
    start, end = rules().day_bounds(now)
    total = await session.scalar(
        select(func.coalesce(func.sum(PointsEntry.amount), 0)).where(
            PointsEntry.resident_id == resident_id,
            PointsEntry.reason == reason,
            PointsEntry.amount > 0,
            PointsEntry.created_at >= start,
            PointsEntry.created_at < end,
        )
    )
    return int(total or 0)


async def earn(
    session: AsyncSession,
    *,
    resident_id: int,
    rule: str,
    ref_type: str,
    ref_id: str,
    idempotency_key: str,
    now: datetime,
    amount: int | None = None,
) -> int:
    """Credit what the earning rule ``rule`` gives (or ``amount``), within its daily cap.

    Returns the points credited: 0 when the event was already credited or the cap is reached.
    """
    the_rules = rules()
    points = the_rules.earn.get(rule, 0) if amount is None else amount
    if points <= 0:
        return 0
    cap = the_rules.daily_caps.get(rule)
    if cap is not None:
        # Lock the resident's balance row first: concurrent earnings of one resident then see each
        # other's ledger rows when the cap is computed. (Without a cap the credit alone decides:
        # its ledger insert does nothing for a key already credited.)
        await lock_account(session, resident_id, now)
        already = await session.scalar(
            select(PointsEntry.id).where(PointsEntry.idempotency_key == idempotency_key)
        )
        if already is not None:
            return 0
        points = min(points, cap - await earned_today(session, resident_id, rule, now))
        if points <= 0:
            return 0
    credited = await credit(
        session,
        resident_id=resident_id,
        amount=points,
        reason=rule,
        ref_type=ref_type,
        ref_id=ref_id,
        idempotency_key=idempotency_key,
        now=now,
    )
    return points if credited else 0


def _registration(resident_id: int) -> dict[str, Any]:
    return {
        "reason": "registration",
        "ref_type": "resident",
        "ref_id": str(resident_id),
        "idempotency_key": f"registration:{resident_id}",
    }


def registration_points() -> int:
    """What the one-off registration reward gives (``earn.registration``; 0: none)."""
    return max(rules().earn.get("registration", 0), 0)


async def award_registration(session: AsyncSession, resident_id: int, now: datetime) -> int:
    """The one-off registration reward in the caller's transaction (0 if already given)."""
    key = _registration(resident_id)
    return await earn(
        session,
        resident_id=resident_id,
        rule="registration",
        ref_type=key["ref_type"],
        ref_id=key["ref_id"],
        idempotency_key=key["idempotency_key"],
        now=now,
    )


def award_registration_in(connection: Connection, resident_id: int, now: datetime) -> int:
    """:func:`award_registration` on a synchronous connection (the reply's transaction: a flow
    that showed the reward as :attr:`Statement.pending` writes it with ``ctx.with_reply``)."""
    amount = registration_points()
    if amount <= 0:
        return 0
    credited = credit_in(connection, resident_id=resident_id, amount=amount, now=now, **_registration(resident_id))
    return amount if credited else 0


# Residents whose registration reward this process knows to be in the ledger, per database: the
# reward is given once, so a later ``welcome`` is a no-op that needs no statement.
_WELCOMED: weakref.WeakKeyDictionary[Database, set[int]] = weakref.WeakKeyDictionary()


async def welcome(db: Database, resident_id: int, now: datetime) -> int:
    """The registration reward at a resident's first use of points, in its own transaction; 0
    once given. (A booking gives it in its own transaction: ``courses.book(welcome=True)``.)"""
    known = _WELCOMED.setdefault(db, set())
    if resident_id in known:
        return 0
    async with db.transaction() as session:
        given = await award_registration(session, resident_id, now)
    known.add(resident_id)  # committed now, or found already given
    return given


def is_welcomed(db: Database, resident_id: int) -> bool:
    """Whether this process knows the resident's registration reward is in the ledger."""
    return resident_id in _WELCOMED.setdefault(db, set())


def welcomed(db: Database, resident_id: int) -> None:
    """Remember that the resident's registration reward is in the ledger (committed)."""
    _WELCOMED.setdefault(db, set()).add(resident_id)


MAX_TOLD_REASON = 40  # characters of the reason told to the resident
ADJUST_TEXTS = {
    "add": "您好！社区工作人员为您增加了{amount}积分{why}。调整后您共有{balance}积分，"
           "可以在“积分商城”兑换优惠券或报名课程。",
    "take": "您好，社区工作人员扣减了您的{amount}积分{why}。调整后您共有{balance}积分。"
            "如有疑问，回复“转人工”联系工作人员。",
    "why": "，原因：{reason}",
}


def told_reason(text: str | None) -> str:
    """The reason as the resident reads it: one line, without closing punctuation ('' for none)."""
    return " ".join((text or "").split()).rstrip("。.！!；;，,、 ")


def adjustment_text(amount: int, balance: int, reason: str | None) -> str:
    """The WeChat message telling a resident of a staff adjustment (never the staff's note)."""
    why = told_reason(reason)
    return ADJUST_TEXTS["add" if amount > 0 else "take"].format(
        amount=abs(amount), balance=balance, why=ADJUST_TEXTS["why"].format(reason=why) if why else "")


async def adjust(
    session: AsyncSession,
    *,
    resident_id: int,
    amount: int,
    actor: str,
    note: str,
    request_key: str,
    now: datetime,
    tell: bool = False,
    reason: str | None = None,
) -> PointsEntry:
    """A manual adjustment by staff (``actor``) with a note; positive or negative, audited in the ledger.

    ``note`` is the staff's own record and is never shown to the resident. With ``tell`` the
    resident is sent a WeChat message (a customer-service message through the outbox, in this
    transaction) saying how many points were added or taken, ``reason`` (what staff chose to tell
    the resident, if anything) and the balance after it; once per adjustment (a repeated request
    finds its entry and queues nothing), and not to a resident who no longer follows the account
    (WeChat would refuse it)."""
    if not actor.strip() or not note.strip():
        raise ValueError("an adjustment needs the staff member's name and a note")
    key = f"adjust:{request_key}"
    args: dict[str, Any] = {
        "resident_id": resident_id,
        "amount": abs(amount),
        "reason": "adjust",
        "ref_type": "manual",
        "ref_id": request_key[:64],
        "idempotency_key": key,
        "now": now,
        "actor": actor,
        "note": note,
    }
    existing = await session.scalar(select(PointsEntry).where(PointsEntry.idempotency_key == key))
    if existing is not None:
        return existing
    if amount > 0:
        await credit(session, **args)
    elif amount < 0:
        await debit(session, **args)
    else:
        raise ValueError("an adjustment must not be zero")
    entry = await session.scalar(select(PointsEntry).where(PointsEntry.idempotency_key == key))
    assert entry is not None
    told = told_reason(reason)[:MAX_TOLD_REASON]
    if told:  # kept for the resident's 积分明细 (the ledger's own columns hold the staff's note)
        entry.reason_for_resident = told
        await session.flush()
    if tell:
        who = (await session.execute(
            select(Resident.openid, Resident.subscribed).where(Resident.id == resident_id))).first()
        if who is not None and who.subscribed:
            await enqueue(session, who.openid, [Out.text(adjustment_text(amount, entry.balance_after, reason))],
                          dedup_key=f"points-adjust:{entry.id}", not_before=now)
    return entry


async def balance_of(session: AsyncSession, resident_id: int) -> int:
    value = await session.scalar(
        select(PointsBalance.balance).where(PointsBalance.resident_id == resident_id)
    )
    return int(value or 0)


async def history(session: AsyncSession, resident_id: int, limit: int = 10) -> Sequence[PointsEntry]:
    stmt = (
        select(PointsEntry)
        .where(PointsEntry.resident_id == resident_id)
        .order_by(PointsEntry.id.desc())
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


@dataclass(frozen=True)
class Entry:
    """One ledger line as the resident sees it."""

    amount: int
    reason: str
    created_at: datetime
    told: str | None = None  # a staff adjustment's reason as the resident was told it


@dataclass(frozen=True)
class Statement:
    """What the chat shows of a resident's points: the registration reward given with this answer
    (0 when given before), the balance (with it) and the newest ledger lines (it among them).

    ``pending``: the reward is shown but not written yet; the flow writes it in the reply's
    transaction (``ctx.with_reply(registration_writer(...))``), exactly once by its ledger key."""

    welcome: int
    balance: int
    entries: tuple[Entry, ...] = ()
    pending: bool = False


async def balance(db: Database, resident_id: int) -> int:
    """The resident's balance, read in its own session."""
    async with db.session() as session:
        return await balance_of(session, resident_id)


_HEAD = select(
    select(PointsBalance.balance).where(PointsBalance.resident_id == bindparam("p_resident")).scalar_subquery(),
    exists().where(PointsEntry.idempotency_key == bindparam("p_key")),
)  # the balance and whether the registration reward is in the ledger


@functools.cache
def _lines(entries: int) -> Any:
    return (
        select(PointsEntry.amount, PointsEntry.reason, PointsEntry.created_at, PointsEntry.reason_for_resident)
        .where(PointsEntry.resident_id == bindparam("p_resident"))
        .order_by(PointsEntry.id.desc())
        .limit(entries)
    )


@functools.cache
def _head_and_lines(entries: int) -> Any:
    """:data:`_HEAD` and :func:`_lines` in one statement: a row per line, newest first, each with
    the head's balance and reward flag (one row with no line when there is none: ``amount`` NULL,
    which a ledger line never is)."""
    head = _HEAD.subquery("head")
    lines = _lines(entries).add_columns(PointsEntry.id).subquery("lines")
    return (
        select(*head.c, lines.c.amount, lines.c.reason, lines.c.created_at, lines.c.reason_for_resident)
        .select_from(head.outerjoin(lines, true()))
        .order_by(lines.c.id.desc())
    )


def read_statement_in(connection: Connection, resident_id: int, now: datetime, *, entries: int = 0) -> Statement:
    """The balance, whether the registration reward is in the ledger, and the ``entries`` newest
    ledger lines, in one statement; a reward not given yet is shown as ``pending``."""
    params = {"p_resident": resident_id, "p_key": _registration(resident_id)["idempotency_key"]}
    lines: tuple[Entry, ...] = ()
    if entries > 0:
        rows: Any = connection.execute(_head_and_lines(entries), params).all()
        found = rows[0]
        lines = tuple(Entry(row[2], row[3], row[4], row[5]) for row in rows if row[2] is not None)
    else:
        found = connection.execute(_HEAD, params).one()
    value, given = int(found[0] or 0), bool(found[1])
    reward = registration_points()
    if given or reward <= 0:
        return Statement(0, value, lines)
    lines = ((Entry(reward, "registration", now), *lines)[:entries]) if entries > 0 else ()
    return Statement(reward, value + reward, lines, pending=True)


async def statement(db: Database, resident_id: int, now: datetime, *, entries: int = 0) -> Statement:
    """:func:`read_statement_in` in one read on the database's synchronous connection (no write: a
    reward not given yet is ``pending``, for the caller to write with its reply)."""
    shown = await db.run_sync_read(lambda connection: read_statement_in(connection, resident_id, now, entries=entries))
    if not shown.pending:
        welcomed(db, resident_id)
    return shown


def registration_writer(resident_id: int, now: datetime) -> Callable[[Connection], None]:
    """The write of a :attr:`Statement.pending` reward, for ``ctx.with_reply``."""

    def write(connection: Connection) -> None:
        award_registration_in(connection, resident_id, now)

    return write


async def ledger_mismatches(session: AsyncSession) -> list[tuple[int, int, int]]:
    """(resident_id, ledger sum, balance) wherever the ledger and the balances disagree."""
    sums = dict(
        (
            await session.execute(
                select(PointsEntry.resident_id, func.sum(PointsEntry.amount)).group_by(
                    PointsEntry.resident_id
                )
            )
        ).all()
    )
    balances = dict((await session.execute(select(PointsBalance.resident_id, PointsBalance.balance))).all())
    out = []
    for rid in sorted(set(sums) | set(balances)):
        total, balance = int(sums.get(rid) or 0), int(balances.get(rid) or 0)
        if total != balance:
            out.append((rid, total, balance))
    return out
