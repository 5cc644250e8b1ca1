"""The points mall: redeem a coupon for points, verify (核销) it at the merchant, expire it.

Redemption is one transaction: the stock is taken with ``UPDATE … WHERE stock > 0`` (which also
serialises redemptions of one coupon on PostgreSQL), the per-resident limit is checked after that
lock and backed by a unique (coupon, resident, seq) row, the points are debited with a conditional
UPDATE, and the code is issued. Any failure raises and rolls everything back. A redemption carries
a request key (unique), so a resident double-tapping "确认" gets one coupon.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from rapidfuzz import fuzz
from sqlalchemy import (
    Connection,
    Integer,
    String,
    Table,
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
from sqlalchemy.orm import Session

from bot.messages import Out
from bot.services import points, readmostly
from bot.storage.db import Database, dialect_insert, savepoint
from bot.storage.models import (
    Coupon,
    IssuedCoupon,
    Merchant,
    OutboxMessage,
    PointsBalance,
    UTCDateTime,
    utcnow,
)
from bot.storage.prepared import Prepared, detached

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 10
CATEGORIES = ("餐饮", "理发", "超市", "交通", "生活", "其他")
assert 256 % len(CODE_ALPHABET) == 0  # new_code's bytes map evenly onto the alphabet


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
    address: str | None = None  # the merchant's, where it is used


def new_code() -> str:
    # 32 symbols: a random byte modulo 32 is uniform over them, as secrets.choice is (one call
    # for the code's bytes instead of one per symbol).
    return "".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in secrets.token_bytes(CODE_LENGTH))


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
    r"(我要|我想|想要|帮我|(?:用|拿|花)?积分|能不能|可以|能|兑换|换一?张|换个|换|领取?|买|优惠券|代金券|券|一张|的|吧|了|呢|啊|吗)"
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
    """Spend points on one coupon, in a transaction of its own (:func:`redeem_with_reply` in one
    hop to the database's thread); raises :class:`CouponError` with nothing written."""
    return await db.run_sync_transaction(
        lambda connection: redeem_with_reply(
            connection, db, resident_id=resident_id, coupon_id=coupon_id, request_key=request_key, now=now
        )
    )


def redeem_with_reply(
    connection: Connection,
    db: Database,
    *,
    resident_id: int,
    coupon_id: int,
    request_key: str,
    now: datetime,
    qr_to: str | None = None,
) -> Redemption:
    """:func:`redeem` in the transaction that stores the chat's reply (``Context.reply_in``): the
    coupon is issued exactly when the answer giving its code is stored, and costs no transaction
    or hop of its own. A refusal (:class:`CouponError`) leaves nothing written (a savepoint); a
    request key that redeemed already gets that redemption (``created`` False). The catalogue in
    memory shows the stock taken at once (before the commit: should the reply's transaction fail,
    memory shows one fewer until it is read again, within a second; it never decides a redemption)."""
    if connection.dialect.name == "postgresql":
        done = _redeem_in_one(connection, resident_id, coupon_id, request_key, now, qr_to)
        if done is not None:
            _stock_taken(db, coupon_id, done.coupon.stock)
            return done
    try:
        with savepoint(connection):
            done = _redeem_in(connection, resident_id, coupon_id, request_key, now)
    except _Replay as replay:
        return _replayed_in(connection, replay.issued_id)
    except IntegrityError:
        # A concurrent request with the same key (or the same holding slot) won: report that.
        issued_id = connection.execute(
            select(IssuedCoupon.id).where(IssuedCoupon.request_key == bindparam("key")), {"key": request_key}
        ).scalar()
        if issued_id is not None:
            return _replayed_in(connection, int(issued_id))
        raise CouponError("limit") from None
    _stock_taken(db, coupon_id, done.coupon.stock)
    if qr_to is not None:
        queue_qr_in(connection, qr_to, done.issued.id, done.issued.code, now)
    return done


def _redeem_in_one(
    connection: Connection, resident_id: int, coupon_id: int, request_key: str, now: datetime, qr_to: str | None
) -> Redemption | None:
    """PostgreSQL: a redemption that succeeds in one statement (:func:`_redeem_statement`), without
    a savepoint (two round trips, and a statement prepared on the server per savepoint name).
    None when it did not succeed: then whatever it took is given back (the stock, the code issued:
    our own uncommitted rows, still locked by this transaction) and the caller decides the way it
    always did, in a savepoint (a refusal, a replay, or a race the statement's snapshot missed)."""
    code = new_code()
    qr = None
    if qr_to is not None:
        qr = Out(kind="image").to_custom_payload(qr_to)
    row: Any = connection.execute(
        _redeem_statement(),
        {
            "p_coupon": coupon_id, "p_resident": resident_id, "p_key": request_key, "p_code": code, "p_now": now,
            "p_created": utcnow(), "p_qr_openid": qr_to, "p_qr_payload": qr,
        },
    ).first()  # fmt: skip
    if row is None:  # nothing taken, nothing written
        return None
    n_coupon, n_merchant = len(_COUPON_COLUMNS), len(_MERCHANT_COLUMNS)
    coupon: Coupon = _entity(Coupon, _COUPON_COLUMNS, row[:n_coupon])
    merchant: Merchant = _entity(Merchant, _MERCHANT_COLUMNS, row[n_coupon : n_coupon + n_merchant])
    issued_id, seq, debited, balance = row[n_coupon + n_merchant :]
    if issued_id is None or (coupon.price > 0 and debited is None):
        connection.execute(_GIVE_BACK, {"p_coupon": coupon_id, "p_issued": issued_id})
        return None
    issued = IssuedCoupon(
        id=int(issued_id), coupon_id=coupon_id, resident_id=resident_id, seq=int(seq), code=code,
        request_key=request_key, status="issued", points=coupon.price, issued_at=now, expires_at=coupon.valid_until,
    )  # fmt: skip
    return Redemption(issued, coupon, merchant, int(debited if coupon.price > 0 else balance), created=True)


def _replayed_in(connection: Connection, issued_id: int) -> Redemption:
    with Session(bind=connection, expire_on_commit=False, autoflush=False) as session:
        issued = session.get(IssuedCoupon, issued_id)
        assert issued is not None
        coupon = session.get(Coupon, issued.coupon_id)
        assert coupon is not None
        merchant = session.get(Merchant, coupon.merchant_id)
        assert merchant is not None
    return Redemption(issued, coupon, merchant, points.balance_in(connection, issued.resident_id), created=False)


_COUPON_TABLE, _MERCHANT_TABLE = cast(Table, Coupon.__table__), cast(Table, Merchant.__table__)
_ISSUED_TABLE = cast(Table, IssuedCoupon.__table__)
# A redemption's statements, built once and executed with parameters (SQLAlchemy reuses their
# cache key and compiled form), run on one synchronous connection. On the way that succeeds there
# are four: the stock taken, the coupon issued, the points debited (two); a refusal is explained by
# the statements that say why (:func:`_refused`).
_COUPON_AND_MERCHANT = (
    select(*_COUPON_TABLE.columns, *(c.label(f"m_{c.key}") for c in _MERCHANT_TABLE.columns))
    .join_from(_COUPON_TABLE, _MERCHANT_TABLE, _MERCHANT_TABLE.c.id == _COUPON_TABLE.c.merchant_id)
    .where(_COUPON_TABLE.c.id == bindparam("p_coupon"))
)
# One in stock taken from a coupon that can be redeemed now (active, started, not ended, its
# merchant active), returning the coupon and its merchant as they are after it. (On PostgreSQL the
# row's lock serialises the coupon's redemptions until the commit.)
_TAKE = (
    update(_COUPON_TABLE)
    .where(
        _COUPON_TABLE.c.id == bindparam("p_coupon"),
        _COUPON_TABLE.c.stock > 0,
        _COUPON_TABLE.c.active.is_(True),
        _COUPON_TABLE.c.valid_from <= bindparam("p_now", type_=UTCDateTime()),
        _COUPON_TABLE.c.valid_until > bindparam("p_now", type_=UTCDateTime()),
        _COUPON_TABLE.c.merchant_id.in_(select(_MERCHANT_TABLE.c.id).where(_MERCHANT_TABLE.c.active.is_(True))),
    )
    .values(stock=_COUPON_TABLE.c.stock - 1)
    .returning(
        *_COUPON_TABLE.columns,
        *(
            select(c).where(_MERCHANT_TABLE.c.id == _COUPON_TABLE.c.merchant_id).scalar_subquery().label(f"m_{c.key}")
            for c in _MERCHANT_TABLE.columns
        ),
    )
)
_EARLIER_AND_HELD = select(
    select(IssuedCoupon.id).where(IssuedCoupon.request_key == bindparam("p_key")).scalar_subquery(),
    select(func.count())
    .select_from(IssuedCoupon)
    .where(IssuedCoupon.coupon_id == bindparam("p_coupon"), IssuedCoupon.resident_id == bindparam("p_resident"))
    .scalar_subquery(),
)  # the request key's earlier redemption (a replay) and how many of the coupon the resident holds
_HELD_NOW = (
    select(func.count().label("n"))
    .select_from(_ISSUED_TABLE)
    .where(_ISSUED_TABLE.c.coupon_id == bindparam("p_coupon"), _ISSUED_TABLE.c.resident_id == bindparam("p_resident"))
    .subquery()
)
# The coupon issued as the resident's next holding of it, unless the request key has redeemed
# already (a replay) or the resident holds the limit: then nothing is inserted (and
# :data:`_EARLIER_AND_HELD` says which). Holding the coupon's row lock (:data:`_TAKE`), the
# earlier redemptions of it are committed and visible; the unique (coupon, resident, seq) and
# request key back it against anything concurrent.
_ISSUE = (
    insert(_ISSUED_TABLE)
    .from_select(
        ["coupon_id", "resident_id", "seq", "code", "request_key", "status", "points", "issued_at", "expires_at"],
        select(
            bindparam("p_coupon", type_=Integer()), bindparam("p_resident", type_=Integer()), _HELD_NOW.c.n + 1,
            bindparam("p_code", type_=String()), bindparam("p_key", type_=String()), literal("issued"),
            bindparam("p_points", type_=Integer()), bindparam("p_now", type_=UTCDateTime()),
            bindparam("p_expires", type_=UTCDateTime()),
        ).where(
            _HELD_NOW.c.n < bindparam("p_limit", type_=Integer()),
            ~exists().where(_ISSUED_TABLE.c.request_key == bindparam("p_key", type_=String())),
        ),
    )
    .returning(_ISSUED_TABLE.c.id, _ISSUED_TABLE.c.seq)
)  # fmt: skip
_COUPON_COLUMNS, _MERCHANT_COLUMNS = tuple(_COUPON_TABLE.columns), tuple(_MERCHANT_TABLE.columns)
_COUPON_KEYS, _MERCHANT_KEYS = tuple(c.key for c in _COUPON_COLUMNS), tuple(c.key for c in _MERCHANT_COLUMNS)
# The way a redemption succeeds on SQLite runs these on the driver's cursor (bot/storage/prepared.py):
# through ``Connection.execute`` each cost several times what SQLite spends on it.
_TAKE_ROWS, _ISSUE_ROWS = Prepared(_TAKE), Prepared(_ISSUE)
_BALANCES = cast(Table, PointsBalance.__table__)
_OUTBOX_TABLE = cast(Table, OutboxMessage.__table__)


@functools.cache
def _redeem_statement() -> Any:
    """PostgreSQL: a redemption in one statement, its steps data-modifying CTEs each fed by the one
    before: one in stock taken (:data:`_TAKE`, only while, as the statement's snapshot shows them,
    the request key has not redeemed, the resident holds fewer than the limit and has the points:
    the usual refusals take nothing); the code issued as the resident's next holding (``ON
    CONFLICT DO NOTHING``: a holding slot or request key a concurrent redemption committed after
    the snapshot leaves it out instead of failing the batch's transaction); the price debited where
    the balance still covers it and its ledger row (:func:`points.debit_ctes`); and, with
    ``p_qr_openid``, the QR image's outbox row (:func:`queue_qr_in`).
    Returns a row when stock was taken: the coupon and merchant as after it, the issued id and
    seq (NULL: not issued), the balance after the debit (NULL: not debited) and the balance as the
    snapshot shows it (a free coupon's answer). Each later step needs the one before, so what is
    written is a prefix: stock taken, then issued; :data:`_GIVE_BACK` undoes it."""
    coupon = bindparam("p_coupon", type_=Integer())
    resident = bindparam("p_resident", type_=Integer())
    key = bindparam("p_key", type_=String())
    now = bindparam("p_now", type_=UTCDateTime())
    held = (
        select(func.count())
        .select_from(_ISSUED_TABLE)
        .where(_ISSUED_TABLE.c.coupon_id == coupon, _ISSUED_TABLE.c.resident_id == resident)
        .scalar_subquery()
    )
    balance = select(_BALANCES.c.balance).where(_BALANCES.c.resident_id == resident).scalar_subquery()
    taken = _TAKE.where(
        ~exists().where(_ISSUED_TABLE.c.request_key == key),
        held < _COUPON_TABLE.c.per_resident_limit,
        or_(_COUPON_TABLE.c.price <= 0, func.coalesce(balance, 0) >= _COUPON_TABLE.c.price),
    ).cte("taken")
    issued = (
        postgresql.insert(_ISSUED_TABLE)
        .from_select(
            ["coupon_id", "resident_id", "seq", "code", "request_key", "status", "points", "issued_at", "expires_at"],
            select(
                taken.c.id, resident, held + 1, bindparam("p_code", type_=String()), key, literal("issued"),
                taken.c.price, now, taken.c.valid_until,
            ),
        )
        .on_conflict_do_nothing()
        .returning(_ISSUED_TABLE.c.id, _ISSUED_TABLE.c.seq, _ISSUED_TABLE.c.points)
        .cte("issued")
    )  # fmt: skip
    issued_id = sql_cast(issued.c.id, String())
    debited, entry = points.debit_ctes(
        issued, resident=resident, amount=issued.c.points, reason="coupon", ref_type="issued_coupon", ref_id=issued_id,
        key=literal("coupon:") + issued_id, now=now,
    )  # fmt: skip
    qr_openid = bindparam("p_qr_openid", type_=String())
    made = func.jsonb_build_object(
        "make",
        func.jsonb_build_object(
            "qr", bindparam("p_code", type_=String()), "filename", literal("coupon-") + issued_id + literal(".png")
        ),
    )
    payload = sql_cast(bindparam("p_qr_payload", type_=postgresql.JSONB()).op("||")(made), OutboxMessage.payload.type)
    qr = (
        postgresql.insert(_OUTBOX_TABLE)
        .from_select(
            ["openid", "payload", "dedup_key", "status", "attempts", "next_attempt_at", "created_at"],
            select(
                qr_openid, payload, literal("coupon-qr:") + issued_id + literal("#0"), literal("pending"),
                literal(0), now, bindparam("p_created", type_=UTCDateTime()),
            ).where(qr_openid.is_not(None), or_(issued.c.points <= 0, exists(select(debited.c.balance)))),
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .cte("qr")
    )  # fmt: skip
    return (
        select(*taken.c, issued.c.id, issued.c.seq, debited.c.balance, func.coalesce(balance, 0))
        .select_from(taken.outerjoin(issued, true()).outerjoin(debited, true()))
        .add_cte(entry, qr)
    )


# What :func:`_redeem_statement` took when it did not carry through (our own rows, uncommitted):
# the code issued (if it was) and the one in stock.
_GIVE_BACK = (
    update(_COUPON_TABLE)
    .where(_COUPON_TABLE.c.id == bindparam("p_coupon"))
    .values(stock=_COUPON_TABLE.c.stock + 1)
    .add_cte(
        delete(_ISSUED_TABLE)
        .where(_ISSUED_TABLE.c.id == bindparam("p_issued", type_=_ISSUED_TABLE.c.id.type))
        .cte("gone")
    )
)


def _refused(connection: Connection, coupon_id: int, now: datetime) -> CouponError:
    """Why the stock could not be taken: the coupon or its merchant gone (or switched off), not
    started, ended, or none left (in that order)."""
    found = connection.execute(_COUPON_AND_MERCHANT, {"p_coupon": coupon_id}).mappings().first()
    if found is None or not found["active"] or not found["m_active"]:
        return CouponError("not_found")
    if now < found["valid_from"]:
        return CouponError("not_started", valid_from=found["valid_from"])
    if now >= found["valid_until"]:
        return CouponError("ended")
    return CouponError("sold_out")


def _redeem_in(
    connection: Connection, resident_id: int, coupon_id: int, request_key: str, now: datetime
) -> Redemption:
    taken = _TAKE_ROWS.rows(connection, {"p_coupon": coupon_id, "p_now": now})
    if not taken:
        raise _refused(connection, coupon_id, now)
    row = taken[0]
    coupon: Coupon = detached(Coupon, _COUPON_KEYS, row[: len(_COUPON_COLUMNS)])
    merchant: Merchant = detached(Merchant, _MERCHANT_KEYS, row[len(_COUPON_COLUMNS) :])
    issued = IssuedCoupon(
        coupon_id=coupon_id,
        resident_id=resident_id,
        code=new_code(),
        request_key=request_key,
        status="issued",
        points=coupon.price,
        issued_at=now,
        expires_at=coupon.valid_until,
    )
    issuing = _ISSUE_ROWS.rows(
        connection,
        {
            "p_coupon": coupon_id, "p_resident": resident_id, "p_code": issued.code, "p_key": request_key,
            "p_points": issued.points, "p_now": now, "p_expires": issued.expires_at,
            "p_limit": coupon.per_resident_limit,
        },
    )  # fmt: skip
    if not issuing:
        earlier: Any = connection.execute(
            _EARLIER_AND_HELD, {"p_key": request_key, "p_coupon": coupon_id, "p_resident": resident_id}
        ).one()
        if earlier[0] is not None:
            raise _Replay(int(earlier[0]))  # the stock taken above is rolled back with the rest
        raise CouponError("limit", limit=coupon.per_resident_limit)
    made = issuing[0]
    issued.id, issued.seq = int(made[0]), int(made[1])
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


def _entity(model: Any, columns: Sequence[Any], values: Sequence[Any]) -> Any:
    """A detached ``model`` holding a row's values (plain data: a redemption's result is read,
    never written back through a session)."""
    return model(**{column.key: value for column, value in zip(columns, values, strict=True)})


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
        Coupon.title, Merchant.name, Merchant.address,
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


@dataclass(frozen=True)
class _Listed:
    """A coupon of active merchants' active coupons not ended yet, as the chat's catalogue keeps it."""

    offer: Offer
    valid_from: datetime


# What the catalogue in memory holds: :data:`_OFFERS` without the terms that change with time or
# stock (applied when it is shown, so it can serve later asks), and each coupon's start.
_CATALOGUE_ROWS = (
    select(*_OFFER_COLUMNS, Coupon.valid_from)
    .join(Merchant, Merchant.id == Coupon.merchant_id)
    .where(
        Coupon.active.is_(True), Merchant.active.is_(True),
        Coupon.valid_until > bindparam("p_now", type_=UTCDateTime()),
    )
    .order_by(Coupon.id)
)  # fmt: skip


def _load_catalogue(connection: Connection, now: datetime) -> tuple[_Listed, ...]:
    rows: Any = connection.execute(_CATALOGUE_ROWS, {"p_now": now})
    return tuple(_Listed(Offer(*row[:-1]), row[-1]) for row in rows)


# The catalogue served from memory (``services/readmostly.py``): a redemption's stock goes into it
# in place; an edit of a coupon or merchant drops it; another process's changes show within a second.
CATALOGUE = readmostly.ReadMostly(_load_catalogue)


def _available(rows: Sequence[_Listed], now: datetime, category: str | None) -> list[Offer]:
    """:func:`catalogue`'s terms on the kept rows: started, not ended, in stock (by id)."""
    return [
        r.offer for r in rows
        if r.valid_from <= now < r.offer.valid_until and r.offer.stock > 0 and (not category or r.offer.category == category)
    ]  # fmt: skip


def _offers_in(db: Database, connection: Connection, now: datetime, category: str | None) -> list[Offer]:
    return _available(CATALOGUE.read_in(db, connection, now), now, category)


async def offers(db: Database, now: datetime, category: str | None = None) -> list[Offer]:
    """:func:`catalogue` as plain data, from memory (read when not kept or too old)."""
    kept = CATALOGUE.peek(db, now)
    if kept is not None:
        return _available(kept, now, category)
    return await db.run_sync_read(lambda connection: _offers_in(db, connection, now, category))


async def shop(
    db: Database, now: datetime, resident_id: int, category: str | None = None
) -> tuple[list[Offer], points.Statement]:
    """The mall as a resident sees it, in one read: :func:`offers` and their points
    (:func:`points.read_statement_in`: a registration reward not given yet is ``pending``)."""

    def read(connection: Connection) -> tuple[list[Offer], points.Statement]:
        return _offers_in(db, connection, now, category), points.read_statement_in(connection, resident_id, now)

    items, shown = await db.run_sync_read(read)
    if not shown.pending:
        points.welcomed(db, resident_id)
    return items, shown


async def offer(db: Database, coupon_id: int, now: datetime | None = None) -> Offer | None:
    """One coupon with its merchant, whatever its stock or dates (None when either is gone); with
    ``now``, from the catalogue in memory when it holds it (read into memory, in the same read,
    when not kept)."""
    kept = CATALOGUE.peek(db, now) if now is not None else None
    for listed in kept or ():
        if listed.offer.id == coupon_id:
            return listed.offer
    return await db.run_sync_read(lambda connection: _offer_in(db, connection, coupon_id, now, kept))


def offer_in(connection: Connection, db: Database, coupon_id: int, now: datetime) -> Offer | None:
    """:func:`offer` in the caller's transaction (a reply's: ``Context.reply_in``)."""
    kept = CATALOGUE.peek(db, now)
    for listed in kept or ():
        if listed.offer.id == coupon_id:
            return listed.offer
    return _offer_in(db, connection, coupon_id, now, kept)


def _offer_in(
    db: Database, connection: Connection, coupon_id: int, now: datetime | None, kept: Any
) -> Offer | None:
    if now is not None and kept is None:
        rows = CATALOGUE.read_in(db, connection, now)
        found = next((r.offer for r in rows if r.offer.id == coupon_id), None)
        if found is not None:
            return found
    row = connection.execute(_OFFER, {"p_coupon": coupon_id}).first()
    return _offer(row) if row is not None else None


def _stock_taken(db: Database, coupon_id: int, stock: int) -> None:
    """A redemption committed by this process left ``stock`` of the coupon: the catalogue in memory
    shows it (never more than it showed: concurrent redemptions may report out of order)."""

    def change(rows: tuple[_Listed, ...]) -> tuple[_Listed, ...]:
        return tuple(
            dataclasses.replace(r, offer=dataclasses.replace(r.offer, stock=min(r.offer.stock, stock)))
            if r.offer.id == coupon_id else r
            for r in rows
        )  # fmt: skip

    CATALOGUE.update(db, change)


async def held_by(db: Database, resident_id: int, limit: int = 20) -> list[Held]:
    """:func:`my_coupons` as plain data, newest first."""
    rows = await db.run_sync_read(
        lambda connection: connection.execute(_HELD, {"p_resident": resident_id, "p_limit": limit}).all()
    )
    return [Held(*row) for row in rows]


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
def _queue_qr(dialect: str) -> Prepared:
    """The QR image message's outbox row, unless its key is queued already (built once per dialect)."""
    return Prepared(
        dialect_insert(dialect, OutboxMessage)
        .values(
            openid=bindparam("p_openid"), payload=bindparam("p_payload", type_=OutboxMessage.payload.type),
            dedup_key=bindparam("p_key"), status="pending", attempts=0,
            next_attempt_at=bindparam("p_now", type_=UTCDateTime()),
            created_at=bindparam("p_created", type_=UTCDateTime()),
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
    _queue_qr(connection.dialect.name).rows(
        connection,
        {
            "p_openid": openid, "p_payload": payload, "p_key": f"coupon-qr:{issued_id}#0", "p_now": now,
            "p_created": utcnow(),
        },
    )  # fmt: skip
