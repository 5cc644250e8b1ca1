"""The coupon catalogue and the course sessions the chat lists are served from memory
(``bot/services/readmostly.py``): this process's own changes show at once, another process's
within ``readmostly.MAX_AGE``, and what memory shows never decides a redemption or a booking."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.services import coupons, courses, readmostly
from bot.storage.db import Database
from bot.storage.models import ActivitySession, Coupon
from tests.points.helpers import NOW, make_coupon, make_course, make_residents, migrated


async def _elsewhere(url: str, statement: object) -> None:
    """A change made as another process makes it: Core on a connection of its own (no ORM session
    of this process sees it)."""
    other = Database(url)
    try:
        async with other.engine.begin() as conn:
            await conn.execute(statement)  # type: ignore[call-overload]
    finally:
        await other.dispose()


async def _stocks(db: Database) -> list[int]:
    return [o.stock for o in await coupons.offers(db, NOW)]


async def test_the_catalogue_shows_own_changes_at_once_and_others_within_max_age(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readmostly, "MAX_AGE", 0.3)
    db = await migrated(database_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=100)
        coupon_id = await make_coupon(db, stock=5, price=10, limit=5)
        assert await _stocks(db) == [5]
        async with db.transaction() as session:  # the staff API's way: an ORM session
            coupon = await session.get(Coupon, coupon_id)
            assert coupon is not None
            coupon.stock = 9
        assert await _stocks(db) == [9]
        await coupons.redeem(db, resident_id=rid, coupon_id=coupon_id, request_key="r1", now=NOW)
        assert await _stocks(db) == [8]  # the redemption's own count, without reading again
        offered = await coupons.offer(db, coupon_id, NOW)
        assert offered is not None and offered.stock == 8

        await _elsewhere(database_url, update(Coupon).where(Coupon.id == coupon_id).values(active=False))
        assert await _stocks(db) == [8]  # another process's change: not seen yet …
        with pytest.raises(coupons.CouponError) as refused:  # … and never decides anything
            await coupons.redeem(db, resident_id=rid, coupon_id=coupon_id, request_key="r2", now=NOW)
        assert refused.value.code == "not_found"
        await asyncio.sleep(0.35)
        assert await _stocks(db) == []  # … shown within MAX_AGE

        async with db.transaction() as session:  # a bulk ORM update counts as this process's too
            await session.execute(update(Coupon).where(Coupon.id == coupon_id).values(active=True, stock=2))
        assert await _stocks(db) == [2]
        assert await coupons.offers(db, NOW - timedelta(days=2)) == []  # before it started: read again
    finally:
        await db.dispose()


async def test_sessions_show_own_bookings_and_cancellations_at_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readmostly, "MAX_AGE", 0.3)
    db = await migrated(database_url)
    try:
        me, you = await make_residents(db, 2, points_each=20)
        sid = await make_course(db, capacity=2, cost=0)

        async def booked() -> list[int]:
            return [r.booked for r in await courses.listings(db, NOW, until=NOW + timedelta(days=60))]

        assert await booked() == [0]
        mine = await courses.book(db, resident_id=me, session_id=sid, now=NOW)
        assert await booked() == [1]
        listed = await courses.listing(db, sid, NOW)
        assert listed is not None and listed.booked == 1
        await courses.cancel(db, resident_id=me, booking_id=mine.booking.id, now=NOW)  # an ORM session
        assert await booked() == [0]

        await _elsewhere(database_url, update(ActivitySession).where(ActivitySession.id == sid).values(booked=2))
        assert await booked() == [0]  # another process's booking: not seen yet …
        with pytest.raises(courses.BookingError) as full:  # … and the database decides
            await courses.book(db, resident_id=you, session_id=sid, now=NOW)
        assert full.value.code == "full"
        await asyncio.sleep(0.35)
        assert await booked() == [2]
    finally:
        await db.dispose()
