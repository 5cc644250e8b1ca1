"""The points mall: redeem a coupon for points, verify (核销) it at the merchant, expire it.

Redemption is one transaction: the stock is taken with ``UPDATE … WHERE stock > 0`` (which also
serialises redemptions of one coupon on PostgreSQL), the per-resident limit is checked after that
lock and backed by a unique (coupon, resident, seq) row, the points are debited with a conditional
UPDATE, and the code is issued. Any failure raises and rolls everything back. A redemption carries
a request key (unique), so a resident double-tapping "确认" gets one coupon.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import Connection, Integer, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Out
from bot.services import points
from bot.storage.db import Database, dialect_insert
from bot.storage.models import Coupon, IssuedCoupon, Merchant, OutboxMessage, UTCDateTime

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 10
CATEGORIES = ("餐饮", "理发", "超市", "交通", "生活", "其他")


class CouponError(Exception):
    """A redemption that cannot happen; ``code``: not_found, not_started, ended, sold_out, limit, points."""

    def __init__(self, code: str, **info: Any) -> None:
        super().__init__(code)
        self.code = code
        self.info = info


class _Replay(Exception):
    def __init__(self, issued_id: int) -> None:
        self.issued_id = issued_id


@dataclass
class Redemption:
    issued: IssuedCoupon
    coupon: Coupon
    merchant: Merchant
    balance: int
    created: bool  # False: this request key had already redeemed (a double tap)


@dataclass
class Verification:
    """``status``: used (just now), already_used, expired, not_found, other_merchant."""

    status: str
    issued: IssuedCoupon | None = None
    coupon: Coupon | None = None


@dataclass(frozen=True)
class Offer:
    """A coupon and its merchant as the chat shows them (plain data)."""

    id: int
    title: str
    category: str
    price: int
    stock: int
    valid_until: datetime
    terms: str | None
    per_resident_limit: int
    merchant: str
    merchant_address: str | None

    @classmethod
    def of(cls, coupon: Coupon, merchant: Merchant) -> Offer:
        return cls(
            id=coupon.id, title=coupon.title, category=coupon.category, price=coupon.price, stock=coupon.stock,
            valid_until=coupon.valid_until, terms=coupon.terms, per_resident_limit=coupon.per_resident_limit,
            merchant=merchant.name, merchant_address=merchant.address,
        )


@dataclass(frozen=True)
class Held:
    """A coupon a resident redeemed, as "my coupons" lists it."""

    code: str
    status: str  # issued | used | expired
    expires_at: datetime
    used_at: datetime | None
    title: str
    merchant: str


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    return re.sub(r"[\s\-_]", "", text).upper()[:32]


def available(now: datetime) -> Any:
    return (Coupon.active.is_(True), Coupon.valid_from <= now, Coupon.valid_until > now, Coupon.stock > 0)


async def catalogue(
    session: AsyncSession, now: datetime, category: str | None = None
) -> list[tuple[Coupon, Merchant]]:
    """Coupons that can be redeemed now (in stock, valid), cheapest category first then by id."""
    stmt = (
        select(Coupon, Merchant)
        .join(Merchant, Merchant.id == Coupon.merchant_id)
        .where(*available(now), Merchant.active.is_(True))
        .order_by(Coupon.id)
    )
    if category:
        stmt = stmt.where(Coupon.category == category)
    return [(c, m) for c, m in (await session.execute(stmt)).all()]


_FILLER = re.compile(
    r"(我要|我想|想要|帮我|兑换|换一?张|换个|换|领取?|买|优惠券|代金券|券|一张|的|吧|了|呢|啊)"
)


def match_coupons(
    query: str, items: Sequence[tuple[Coupon, Merchant]], threshold: float = 70
) -> list[tuple[Coupon, Merchant]]:
    """Items whose title, merchant or category fit ``query`` ("理发券" finds 理发 coupons), best first."""
    q = _FILLER.sub("", query).strip()
    if not q:
        return []
    scored = []
    for coupon, merchant in items:
        score = _score(q, coupon.title, merchant.name, coupon.category)
        if score >= threshold:
            scored.append((score, coupon.id, coupon, merchant))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [(c, m) for _, _, c, m in scored]


def _score(q: str, title: str, merchant: str, category: str) -> float:
    if q in title or q == category or q in merchant:
        return 100.0
    score = max(fuzz.partial_ratio(q, title), fuzz.partial_ratio(q, merchant), fuzz.ratio(q, category))
    return min(score, 60.0) if len(q) == 1 else score  # one character matches too much


def match_offers(query: str, items: Sequence[Offer], threshold: float = 70) -> list[Offer]:
    """:func:`match_coupons` for :class:`Offer` s."""
    q = _FILLER.sub("", query).strip()
    if not q:
        return []
    scored = [(_score(q, o.title, o.merchant, o.category), o) for o in items]
    return [o for score, o in sorted(scored, key=lambda s: (-s[0], s[1].id)) if score >= threshold]


async def redeem(
    db: Database, *, resident_id: int, coupon_id: int, request_key: str, now: datetime
) -> Redemption:
    """Spend points on one coupon; raises :class:`CouponError` with nothing written."""
    try:
        return await _redeem(db, resident_id, coupon_id, request_key, now)
    except _Replay as replay:
        return await _replayed(db, replay.issued_id)
    except IntegrityError:
        # A concurrent request with the same key (or the same holding slot) won: report that.
        async with db.session() as session:
            issued_id = await session.scalar(
                select(IssuedCoupon.id).where(IssuedCoupon.request_key == request_key)
            )
        if issued_id is not None:
            return await _replayed(db, issued_id)
        raise CouponError("limit") from None


async def _replayed(db: Database, issued_id: int) -> Redemption:
    async with db.session() as session:
        issued = await session.get(IssuedCoupon, issued_id)
        assert issued is not None
        coupon = await session.get(Coupon, issued.coupon_id)
        assert coupon is not None
        merchant = await session.get(Merchant, coupon.merchant_id)
        assert merchant is not None
        balance = await points.balance_of(session, issued.resident_id)
    return Redemption(issued, coupon, merchant, balance, created=False)


async def _redeem(
    db: Database, resident_id: int, coupon_id: int, request_key: str, now: datetime
) -> Redemption:
    """The redemption as one synchronous transaction (:meth:`Database.run_sync_transaction`: one
    hop to the database's thread rather than one per statement)."""
    return await db.run_sync_transaction(
        lambda connection: _redeem_in(connection, resident_id, coupon_id, request_key, now)
    )


def _row_object(model: Any, table: Any, row: Any) -> Any:
    """A detached ORM object of ``model`` from a row of all ``table``'s columns (plain data: a
    redemption's result is read, never written back through a session)."""
    return model(**{column.key: row[column.key] for column in table.columns})


_COUPON_TABLE, _MERCHANT_TABLE = Coupon.__table__, Merchant.__table__
# A redemption's statements, built once and executed with parameters (SQLAlchemy reuses their
# cache key and compiled form), run on one synchronous connection.
_COUPON_AND_MERCHANT = (
    select(*_COUPON_TABLE.columns, *(c.label(f"m_{c.key}") for c in _MERCHANT_TABLE.columns))
    .join_from(_COUPON_TABLE, _MERCHANT_TABLE, _MERCHANT_TABLE.c.id == _COUPON_TABLE.c.merchant_id)
    .where(_COUPON_TABLE.c.id == bindparam("p_coupon"))
)
_TAKE_STOCK = (
    update(Coupon)
    .where(Coupon.id == bindparam("p_coupon"), Coupon.stock > 0)
    .values(stock=Coupon.stock - 1)
    .returning(Coupon.stock)
)
_EARLIER_AND_HELD = select(
    select(IssuedCoupon.id).where(IssuedCoupon.request_key == bindparam("p_key")).scalar_subquery(),
    select(func.count())
    .select_from(IssuedCoupon)
    .where(IssuedCoupon.coupon_id == bindparam("p_coupon"), IssuedCoupon.resident_id == bindparam("p_resident"))
    .scalar_subquery(),
)  # the request key's earlier redemption (a replay) and how many of the coupon the resident holds
_ISSUE = (
    insert(IssuedCoupon)
    .values(
        coupon_id=bindparam("p_coupon"), resident_id=bindparam("p_resident"), seq=bindparam("p_seq"),
        code=bindparam("p_code"), request_key=bindparam("p_key"), status="issued", points=bindparam("p_points"),
        issued_at=bindparam("p_now", type_=UTCDateTime()), expires_at=bindparam("p_expires", type_=UTCDateTime()),
    )
    .returning(IssuedCoupon.id)
)  # fmt: skip


def _redeem_in(
    connection: Connection, resident_id: int, coupon_id: int, request_key: str, now: datetime
) -> Redemption:
    found = connection.execute(_COUPON_AND_MERCHANT, {"p_coupon": coupon_id}).mappings().first()
    if found is None or not found["active"] or not found["m_active"]:
        raise CouponError("not_found")
    coupon: Coupon = _row_object(Coupon, _COUPON_TABLE, found)
    merchant: Merchant = Merchant(**{c.key: found[f"m_{c.key}"] for c in _MERCHANT_TABLE.columns})
    if now < coupon.valid_from:
        raise CouponError("not_started", valid_from=coupon.valid_from)
    if now >= coupon.valid_until:
        raise CouponError("ended")
    stock = connection.execute(_TAKE_STOCK, {"p_coupon": coupon_id}).scalar_one_or_none()
    if stock is None:
        raise CouponError("sold_out")
    coupon.stock = int(stock)
    # Holding the coupon's row lock now: earlier redemptions of it are committed and visible (a
    # replay's stock taken above is rolled back with the rest).
    found_held: Any = connection.execute(
        _EARLIER_AND_HELD, {"p_key": request_key, "p_coupon": coupon_id, "p_resident": resident_id}
    ).one()
    if found_held[0] is not None:
        raise _Replay(int(found_held[0]))
    held = int(found_held[1] or 0)
    if held >= coupon.per_resident_limit:
        raise CouponError("limit", limit=coupon.per_resident_limit)
    issued = IssuedCoupon(
        coupon_id=coupon_id,
        resident_id=resident_id,
        seq=held + 1,
        code=new_code(),
        request_key=request_key,
        status="issued",
        points=coupon.price,
        issued_at=now,
        expires_at=coupon.valid_until,
    )
    issued.id = connection.execute(
        _ISSUE,
        {
            "p_coupon": coupon_id, "p_resident": resident_id, "p_seq": issued.seq, "p_code": issued.code,
            "p_key": request_key, "p_points": issued.points, "p_now": now, "p_expires": issued.expires_at,
        },
    ).scalar_one()  # fmt: skip
    if coupon.price > 0:
        try:
            balance = points.debit_in(
                connection,
                resident_id=resident_id,
                amount=coupon.price,
                reason="coupon",
                ref_type="issued_coupon",
                ref_id=str(issued.id),
                idempotency_key=f"coupon:{issued.id}",
                now=now,
            )
        except points.InsufficientPoints as exc:
            raise CouponError("points", balance=exc.balance, price=coupon.price) from None
    else:
        balance = points.balance_in(connection, resident_id)
    return Redemption(issued, coupon, merchant, balance, created=True)


async def my_coupons(
    session: AsyncSession, resident_id: int, limit: int = 20
) -> list[tuple[IssuedCoupon, Coupon, Merchant]]:
    stmt = (
        select(IssuedCoupon, Coupon, Merchant)
        .join(Coupon, Coupon.id == IssuedCoupon.coupon_id)
        .join(Merchant, Merchant.id == Coupon.merchant_id)
        .where(IssuedCoupon.resident_id == resident_id)
        .order_by(IssuedCoupon.id.desc())
        .limit(limit)
    )
    return [(i, c, m) for i, c, m in (await session.execute(stmt)).all()]


_OFFER_COLUMNS = (
    Coupon.id, Coupon.title, Coupon.category, Coupon.price, Coupon.stock, Coupon.valid_until, Coupon.terms,
    Coupon.per_resident_limit, Merchant.name, Merchant.address,
)  # fmt: skip


def _offer(row: Sequence[Any]) -> Offer:
    return Offer(*row)


def _available_now() -> Any:
    now = bindparam("p_now", type_=UTCDateTime())
    return (Coupon.active.is_(True), Coupon.valid_from <= now, Coupon.valid_until > now, Coupon.stock > 0)


# The chat's reads, built once and executed with parameters (SQLAlchemy reuses their compiled form).
_OFFERS = (
    select(*_OFFER_COLUMNS)
    .join(Merchant, Merchant.id == Coupon.merchant_id)
    .where(*_available_now(), Merchant.active.is_(True))
    .order_by(Coupon.id)
)  # :func:`catalogue`'s query for the columns an :class:`Offer` shows (rows, not ORM objects)
_OFFERS_OF_CATEGORY = _OFFERS.where(Coupon.category == bindparam("p_category"))
_OFFER = select(*_OFFER_COLUMNS).join(Merchant, Merchant.id == Coupon.merchant_id).where(Coupon.id == bindparam("p_coupon"))
_HELD = (
    select(
        IssuedCoupon.code, IssuedCoupon.status, IssuedCoupon.expires_at, IssuedCoupon.used_at,
        Coupon.title, Merchant.name,
    )
    .join(Coupon, Coupon.id == IssuedCoupon.coupon_id)
    .join(Merchant, Merchant.id == Coupon.merchant_id)
    .where(IssuedCoupon.resident_id == bindparam("p_resident"))
    .order_by(IssuedCoupon.id.desc())
    .limit(bindparam("p_limit", type_=Integer()))
)  # :func:`my_coupons`' rows, as plain rows rather than ORM objects  # fmt: skip


def read_offers_in(connection: Connection, now: datetime, category: str | None = None) -> list[Offer]:
    """:func:`catalogue` as plain data, on the caller's synchronous connection."""
    if category:
        rows = connection.execute(_OFFERS_OF_CATEGORY, {"p_now": now, "p_category": category})
    else:
        rows = connection.execute(_OFFERS, {"p_now": now})
    return [_offer(row) for row in rows]


async def offers(db: Database, now: datetime, category: str | None = None) -> list[Offer]:
    """:func:`catalogue` as plain data (one read on the database's synchronous connection)."""
    return await db.run_sync_read(lambda connection: read_offers_in(connection, now, category))


async def shop(
    db: Database, now: datetime, resident_id: int, category: str | None = None
) -> tuple[list[Offer], points.Statement]:
    """The mall as a resident sees it, in one read: :func:`offers` and their points
    (:func:`points.read_statement_in`: a registration reward not given yet is ``pending``)."""

    def read(connection: Connection) -> tuple[list[Offer], points.Statement]:
        return read_offers_in(connection, now, category), points.read_statement_in(connection, resident_id, now)

    items, shown = await db.run_sync_read(read)
    if not shown.pending:
        points.welcomed(db, resident_id)
    return items, shown


async def offer(db: Database, coupon_id: int) -> Offer | None:
    """One coupon with its merchant, whatever its stock or dates (None when either is gone)."""
    row = await db.run_sync_read(lambda connection: connection.execute(_OFFER, {"p_coupon": coupon_id}).first())
    return _offer(row) if row is not None else None


async def held_by(db: Database, resident_id: int, limit: int = 20) -> list[Held]:
    """:func:`my_coupons` as plain data, newest first."""
    rows = await db.run_sync_read(
        lambda connection: connection.execute(_HELD, {"p_resident": resident_id, "p_limit": limit}).all()
    )
    return [Held(code, status, expires, used, title, merchant) for code, status, expires, used, title, merchant in rows]


async def verify(db: Database, *, code: str, merchant_id: int, actor: str, now: datetime) -> Verification:
    """Mark the coupon with ``code`` used, once, by this merchant (only its own coupons)."""
    code = normalise_code(code)
    async with db.transaction() as session:
        own = select(Coupon.id).where(Coupon.merchant_id == merchant_id)
        done = await session.execute(
            update(IssuedCoupon)
            .where(
                IssuedCoupon.code == code,
                IssuedCoupon.status == "issued",
                IssuedCoupon.expires_at > now,
                IssuedCoupon.coupon_id.in_(own),
            )
            .values(status="used", used_at=now, used_by=actor[:100], merchant_id=merchant_id)
        )
        issued = await session.scalar(select(IssuedCoupon).where(IssuedCoupon.code == code))
        if issued is None:
            return Verification("not_found")
        coupon = await session.get(Coupon, issued.coupon_id)
        if coupon is None or coupon.merchant_id != merchant_id:
            return Verification("other_merchant")
        if done.rowcount == 1:  # type: ignore[attr-defined]
            return Verification("used", issued, coupon)
        if issued.status == "used":
            return Verification("already_used", issued, coupon)
        return Verification("expired", issued, coupon)


async def expire(db: Database, now: datetime) -> list[tuple[int, str, int]]:
    """Mark issued coupons past their end ``expired``; with ``refund_expired`` give the points back.

    Returns (resident_id, coupon title, refunded points) for each coupon expired now.
    """
    refund = points.rules().refund_expired_coupons
    out: list[tuple[int, str, int]] = []
    async with db.session() as session:  # read first: most runs find nothing and take no write lock
        due_one = await session.scalar(
            select(IssuedCoupon.id).where(IssuedCoupon.status == "issued", IssuedCoupon.expires_at <= now).limit(1)
        )
    if due_one is None:
        return out
    async with db.transaction() as session:
        due = (
            await session.execute(
                select(IssuedCoupon.id, IssuedCoupon.resident_id, IssuedCoupon.points, Coupon.title)
                .join(Coupon, Coupon.id == IssuedCoupon.coupon_id)
                .where(IssuedCoupon.status == "issued", IssuedCoupon.expires_at <= now)
                .order_by(IssuedCoupon.id)
                .limit(500)
            )
        ).all()
        for issued_id, resident_id, price, title in due:
            changed = await session.execute(
                update(IssuedCoupon)
                .where(IssuedCoupon.id == issued_id, IssuedCoupon.status == "issued")
                .values(status="expired")
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            refunded = 0
            if refund and price > 0:
                ok = await points.credit(
                    session,
                    resident_id=resident_id,
                    amount=price,
                    reason="refund",
                    ref_type="issued_coupon",
                    ref_id=str(issued_id),
                    idempotency_key=f"coupon:{issued_id}:expired-refund",
                    now=now,
                )
                refunded = price if ok else 0
            out.append((resident_id, title, refunded))
    return out


@functools.cache
def _queue_qr(dialect: str) -> Any:
    """The QR image message's outbox row, unless its key is queued already (built once per dialect)."""
    return (
        dialect_insert(dialect, OutboxMessage)
        .values(
            openid=bindparam("p_openid"), payload=bindparam("p_payload", type_=OutboxMessage.payload.type),
            dedup_key=bindparam("p_key"), status="pending", attempts=0,
            next_attempt_at=bindparam("p_now", type_=UTCDateTime()),
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
    )  # fmt: skip


def queue_qr_in(connection: Connection, openid: str, issued_id: int, code: str, now: datetime) -> None:
    """Queue an image message with a QR code of an issued coupon's ``code`` to the resident, once
    per coupon, in the caller's transaction (the chat's: the reply's). The outbox worker makes the
    image and uploads it when it sends the message, so the reply never waits for WeChat's media
    upload; if the upload keeps failing the resident still has the text code. (The row
    ``notify.enqueue_sync`` would queue for ``[Out(kind="image")]`` with ``make``, in one statement.)"""
    payload = Out(kind="image").to_custom_payload(openid)
    payload["make"] = {"qr": code, "filename": f"coupon-{issued_id}.png"}
    connection.execute(
        _queue_qr(connection.dialect.name),
        {"p_openid": openid, "p_payload": payload, "p_key": f"coupon-qr:{issued_id}#0", "p_now": now},
    )
