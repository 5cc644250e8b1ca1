"""Money-like invariants under concurrency, on SQLite and PostgreSQL: nothing oversold, nothing
spent twice, ledger sums equal balances."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select

from bot.services import coupons, courses, points
from bot.storage.models import ActivitySession, Booking, Coupon, IssuedCoupon, PointsEntry
from tests.points.helpers import (
    NOW,
    assert_ledger_matches,
    issued_count,
    make_coupon,
    make_course,
    make_residents,
    migrated,
    total_points,
)


async def test_200_concurrent_redemptions_of_10_coupons(database_url: str):
    db = await migrated(database_url)
    try:
        residents = await make_residents(db, 200, points_each=100)
        coupon_id = await make_coupon(db, stock=10, price=30)

        async def one(rid: int) -> str:
            try:
                await coupons.redeem(
                    db, resident_id=rid, coupon_id=coupon_id, request_key=f"r:{rid}", now=NOW
                )
                return "ok"
            except coupons.CouponError as exc:
                return exc.code

        outcomes = Counter(await asyncio.gather(*(one(r) for r in residents)))
        assert outcomes == {"ok": 10, "sold_out": 190}
        async with db.session() as session:
            coupon = await session.get(Coupon, coupon_id)
            assert coupon is not None and coupon.stock == 0
            codes = (await session.scalars(select(IssuedCoupon.code))).all()
            assert len(codes) == len(set(codes)) == 10
            spent = (
                await session.scalars(select(PointsEntry.amount).where(PointsEntry.reason == "coupon"))
            ).all()
            assert spent == [-30] * 10
        assert await total_points(db) == (200 * 100 - 300, 200 * 100 - 300)
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


async def test_200_concurrent_bookings_of_10_places(database_url: str):
    db = await migrated(database_url)
    try:
        residents = await make_residents(db, 200, points_each=50)
        session_id = await make_course(db, capacity=10, cost=20)

        async def one(rid: int) -> str:
            try:
                await courses.book(db, resident_id=rid, session_id=session_id, now=NOW)
                return "ok"
            except courses.BookingError as exc:
                return exc.code

        outcomes = Counter(await asyncio.gather(*(one(r) for r in residents)))
        assert outcomes == {"ok": 10, "full": 190}
        async with db.session() as session:
            sess = await session.get(ActivitySession, session_id)
            assert sess is not None and sess.booked == 10
            statuses = (await session.scalars(select(Booking.status))).all()
            assert Counter(statuses) == {"booked": 10}
        assert await total_points(db) == (200 * 50 - 200, 200 * 50 - 200)
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


@pytest.mark.parametrize("limit", [1, 3])
async def test_double_tap_redeems_once(database_url: str, limit: int):
    db = await migrated(database_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=100)
        coupon_id = await make_coupon(db, stock=5, price=10, limit=limit)
        results = await asyncio.gather(
            *(
                coupons.redeem(db, resident_id=rid, coupon_id=coupon_id, request_key="tap-1", now=NOW)
                for _ in range(5)
            )
        )
        assert sum(r.created for r in results) == 1
        assert len({r.issued.code for r in results}) == 1
        assert await issued_count(db, coupon_id) == 1
        async with db.session() as session:
            assert await points.balance_of(session, rid) == 90
            coupon = await session.get(Coupon, coupon_id)
            assert coupon is not None and coupon.stock == 4
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


async def test_per_resident_limit_holds_under_concurrency(database_url: str):
    db = await migrated(database_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=100)
        coupon_id = await make_coupon(db, stock=10, price=10, limit=2)

        async def one(i: int) -> str:
            try:
                await coupons.redeem(db, resident_id=rid, coupon_id=coupon_id, request_key=f"k{i}", now=NOW)
                return "ok"
            except coupons.CouponError as exc:
                return exc.code

        outcomes = Counter(await asyncio.gather(*(one(i) for i in range(8))))
        assert outcomes == {"ok": 2, "limit": 6}
        async with db.session() as session:
            assert await points.balance_of(session, rid) == 80
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


async def test_failed_redemption_leaves_no_trace(database_url: str):
    db = await migrated(database_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=20)
        coupon_id = await make_coupon(db, stock=3, price=30)
        with pytest.raises(coupons.CouponError) as info:
            await coupons.redeem(db, resident_id=rid, coupon_id=coupon_id, request_key="x", now=NOW)
        assert info.value.code == "points" and info.value.info["balance"] == 20
        assert await issued_count(db, coupon_id) == 0
        async with db.session() as session:
            coupon = await session.get(Coupon, coupon_id)
            assert coupon is not None and coupon.stock == 3
            assert await points.balance_of(session, rid) == 20
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


async def test_same_check_in_event_five_times_credits_once(database_url: str):
    db = await migrated(database_url)
    try:
        (rid,) = await make_residents(db, 1)
        session_id = await make_course(db, capacity=5, cost=0)
        async with db.session() as session:
            sess = await session.get(ActivitySession, session_id)
            assert sess is not None
            activity_id = sess.activity_id
        results = await asyncio.gather(
            *(courses.check_in(db, resident_id=rid, activity_id=activity_id, now=NOW) for _ in range(5))
        )
        assert sum(r.created for r in results) == 1
        assert sum(r.points for r in results) == points.rules().earn["activity"]
        async with db.session() as session:
            assert await points.balance_of(session, rid) == points.rules().earn["activity"]
            entries = (await session.scalars(select(PointsEntry).where(PointsEntry.resident_id == rid))).all()
            assert len(entries) == 1 and entries[0].ref_type == "check_in"
        # and the raw credit is idempotent by key, too
        async with db.transaction() as session:
            again = await points.credit(
                session,
                resident_id=rid,
                amount=5,
                reason="activity",
                ref_type="check_in",
                ref_id="x",
                idempotency_key=entries[0].idempotency_key,
                now=NOW,
            )
        assert again is False
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


async def test_balance_can_never_go_negative_in_the_database(database_url: str):
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from bot.storage.models import PointsBalance

    db = await migrated(database_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=5)
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                await session.execute(update(PointsBalance).values(balance=-1))
        coupon_id = await make_coupon(db, stock=1, price=1)
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                await session.execute(update(Coupon).where(Coupon.id == coupon_id).values(stock=-1))
        with pytest.raises(points.InsufficientPoints):
            async with db.transaction() as session:
                await points.debit(
                    session,
                    resident_id=rid,
                    amount=6,
                    reason="x",
                    ref_type="x",
                    ref_id="x",
                    idempotency_key="d",
                    now=NOW,
                )
        await assert_ledger_matches(db)
    finally:
        await db.dispose()
