"""Shared set-up for the points tests: a migrated database with residents, a merchant, a coupon, a course."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.services import points
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import (
    Activity,
    ActivitySession,
    Coupon,
    IssuedCoupon,
    Merchant,
    PointsBalance,
    PointsEntry,
    Resident,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Beijing


async def migrated(url: str) -> Database:
    db = Database(url)
    await upgrade(db)
    return db


async def make_residents(db: Database, n: int, points_each: int = 0, prefix: str = "oPts") -> list[int]:
    async with db.transaction() as session:
        rows = [Resident(openid=f"{prefix}{i:022d}", subscribed=True, created_at=NOW) for i in range(n)]
        session.add_all(rows)
        await session.flush()
        ids = [r.id for r in rows]
        for rid in ids:
            if points_each:
                await points.credit(
                    session,
                    resident_id=rid,
                    amount=points_each,
                    reason="adjust",
                    ref_type="test",
                    ref_id="seed",
                    idempotency_key=f"seed:{rid}",
                    now=NOW,
                    actor="test",
                    note="seed",
                )
    return ids


async def make_coupon(
    db: Database, *, stock: int, price: int, limit: int = 1, title: str = "理发立减10元"
) -> int:
    async with db.transaction() as session:
        merchant = Merchant(name=f"测试理发店{stock}{price}{title}", category="理发", created_at=NOW)
        session.add(merchant)
        await session.flush()
        coupon = Coupon(
            merchant_id=merchant.id,
            title=title,
            category="理发",
            price=price,
            stock=stock,
            per_resident_limit=limit,
            valid_from=NOW - timedelta(days=1),
            valid_until=NOW + timedelta(days=30),
            terms="到店出示券码",
            created_at=NOW,
        )
        session.add(coupon)
        await session.flush()
        return coupon.id


async def make_course(
    db: Database, *, capacity: int, cost: int, starts_in: timedelta = timedelta(days=3)
) -> int:
    """A course with one session; returns the session id."""
    async with db.transaction() as session:
        activity = Activity(
            title="花艺入门",
            description="插花基础",
            kind="course",
            category="花艺",
            organiser="王老师",
            place="社区活动室",
            points_cost=cost,
            created_at=NOW,
        )
        session.add(activity)
        await session.flush()
        sess = ActivitySession(
            activity_id=activity.id,
            starts_at=NOW + starts_in,
            ends_at=NOW + starts_in + timedelta(hours=2),
            capacity=capacity,
            booked=0,
            created_at=NOW,
        )
        session.add(sess)
        await session.flush()
        return sess.id


async def assert_ledger_matches(db: Database) -> None:
    async with db.session() as session:
        assert await points.ledger_mismatches(session) == []
        negative = await session.scalar(select(func.count()).where(PointsBalance.balance < 0))
        assert negative == 0


async def total_points(db: Database) -> tuple[int, int]:
    async with db.session() as session:
        ledger = await session.scalar(select(func.coalesce(func.sum(PointsEntry.amount), 0)))
        balances = await session.scalar(select(func.coalesce(func.sum(PointsBalance.balance), 0)))
    return int(ledger or 0), int(balances or 0)


async def issued_count(db: Database, coupon_id: int) -> int:
    async with db.session() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(IssuedCoupon).where(IssuedCoupon.coupon_id == coupon_id)
            )
            or 0
        )
