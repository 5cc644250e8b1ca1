"""PostgreSQL: a redemption that succeeds is one statement without a savepoint; when the statement's
snapshot missed a concurrent redemption (the holding slot taken, the balance spent), what it took is
given back and the redemption is decided as before, leaving no trace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from bot.services import coupons, points
from bot.storage.db import Database
from bot.storage.models import Coupon, IssuedCoupon, OutboxMessage, PointsEntry
from tests.points.helpers import (
    NOW,
    assert_ledger_matches,
    issued_count,
    make_coupon,
    make_residents,
    migrated,
)
from tests.races import while_held


@pytest.fixture
async def pg_db(database_url: str) -> Any:
    if not database_url.startswith("postgresql"):
        pytest.skip("the one-statement redemption is PostgreSQL's")
    db = await migrated(database_url)
    yield db
    await db.dispose()


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    # Every engine: on a SQLite file the reads go through one of their own (``run_sync_read``).
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


def redeem_with_qr(db: Database, rid: int, coupon_id: int, key: str) -> Any:
    return lambda connection: coupons.redeem_with_reply(
        connection, db, resident_id=rid, coupon_id=coupon_id, request_key=key, now=NOW, qr_to="oQr"
    )


async def test_a_redemption_is_one_statement_with_its_debit_ledger_and_qr(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1, points_each=100)
    coupon_id = await make_coupon(db, stock=5, price=30)
    with statements(db) as sent:
        done = await db.run_sync_transaction(redeem_with_qr(db, rid, coupon_id, "k1"))
    assert len(sent) == 1 and "SAVEPOINT" not in sent[0], sent
    assert done.created and done.balance == 70 and done.coupon.stock == 4 and done.merchant.name
    assert done.issued.seq == 1 and done.issued.points == 30 and done.issued.code
    async with db.session() as session:
        issued = (await session.scalars(select(IssuedCoupon))).one()
        assert (issued.id, issued.code, issued.request_key, issued.status) == (done.issued.id, done.issued.code, "k1", "issued")
        entry = (await session.scalars(select(PointsEntry).where(PointsEntry.reason == "coupon"))).one()
        assert (entry.amount, entry.balance_after, entry.ref_id, entry.idempotency_key) == (
            -30, 70, str(issued.id), f"coupon:{issued.id}",
        )  # fmt: skip
        qr = (await session.scalars(select(OutboxMessage))).one()
        assert qr.dedup_key == f"coupon-qr:{issued.id}#0" and qr.openid == "oQr" and qr.status == "pending"
        assert qr.payload == {
            "touser": "oQr", "msgtype": "image", "image": {"media_id": ""},
            "make": {"qr": issued.code, "filename": f"coupon-{issued.id}.png"},
        }  # fmt: skip
    # The same request again: its redemption, nothing more written.
    again = await db.run_sync_transaction(redeem_with_qr(db, rid, coupon_id, "k1"))
    assert not again.created and again.issued.code == done.issued.code
    assert await issued_count(db, coupon_id) == 1
    await assert_ledger_matches(db)


async def test_a_free_coupon_reports_the_balance_and_debits_nothing(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1, points_each=40)
    coupon_id = await make_coupon(db, stock=2, price=0)
    done = await db.run_sync_transaction(redeem_with_qr(db, rid, coupon_id, "free"))
    assert done.created and done.balance == 40
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
        assert await session.scalar(select(func.count()).where(PointsEntry.reason == "coupon")) == 0


async def _while_held(db: Database, first: Any, second: Any) -> Any:
    """:func:`tests.races.while_held`, a refusal (CouponError, BookingError) returned, not raised."""
    try:
        return await while_held(db, first, second)
    except Exception as exc:
        return exc


async def test_a_holding_slot_taken_meanwhile_gives_back_the_stock(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1, points_each=100)
    coupon_id = await make_coupon(db, stock=5, price=10, limit=1)
    outcome = await _while_held(db, redeem_with_qr(db, rid, coupon_id, "a"), redeem_with_qr(db, rid, coupon_id, "b"))
    assert isinstance(outcome, coupons.CouponError) and outcome.code == "limit"
    async with db.session() as session:
        coupon = await session.get(Coupon, coupon_id)
        assert coupon is not None and coupon.stock == 4
        assert await points.balance_of(session, rid) == 90
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert await issued_count(db, coupon_id) == 1
    await assert_ledger_matches(db)


async def test_points_spent_meanwhile_give_back_the_code_and_stock(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1, points_each=100)
    first, second = await make_coupon(db, stock=5, price=60, title="甲"), await make_coupon(db, stock=5, price=60, title="乙")
    outcome = await _while_held(db, redeem_with_qr(db, rid, first, "a"), redeem_with_qr(db, rid, second, "b"))
    assert isinstance(outcome, coupons.CouponError) and outcome.code == "points"
    assert outcome.info["balance"] == 40
    async with db.session() as session:
        stock = dict((await session.execute(select(Coupon.id, Coupon.stock))).all())
        assert stock == {first: 4, second: 5}
        assert await points.balance_of(session, rid) == 40
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert await issued_count(db, second) == 0
    await assert_ledger_matches(db)


async def test_a_code_taken_already_is_redeemed_with_another(pg_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    db = pg_db
    (rid, other) = await make_residents(db, 2, points_each=100)
    coupon_id = await make_coupon(db, stock=5, price=10)
    taken = await db.run_sync_transaction(redeem_with_qr(db, other, coupon_id, "o"))
    codes = iter([taken.issued.code, "FRESHCODE2"])
    monkeypatch.setattr(coupons, "new_code", lambda: next(codes))
    done = await db.run_sync_transaction(redeem_with_qr(db, rid, coupon_id, "mine"))
    assert done.created and done.issued.code == "FRESHCODE2" and done.balance == 90
    async with db.session() as session:
        coupon = await session.get(Coupon, coupon_id)
        assert coupon is not None and coupon.stock == 3
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 2
    assert await issued_count(db, coupon_id) == 2
    await assert_ledger_matches(db)
