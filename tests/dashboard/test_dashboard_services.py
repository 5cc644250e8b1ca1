"""The dashboard's points, coupons, courses and check-ins on SQLite and PostgreSQL, from what the
services record: points credited, coupons redeemed and verified, places booked, check-ins by a
resident and by an in-service party member (双报到)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.services import coupons, courses, dashboard
from bot.storage.models import ActivitySession, Coupon, PointsEntry
from tests.points.helpers import NOW, make_coupon, make_course, make_residents, migrated


async def test_points_coupons_courses_and_check_ins(database_url: str) -> None:
    db = await migrated(database_url)
    try:
        r0, r1, r2 = await make_residents(db, 3, points_each=100)
        coupon_id = await make_coupon(db, stock=10, price=30)
        session_id = await make_course(db, capacity=4, cost=10, starts_in=timedelta(hours=2))
        first = await coupons.redeem(db, resident_id=r0, coupon_id=coupon_id, request_key="k0", now=NOW)
        await coupons.redeem(db, resident_id=r1, coupon_id=coupon_id, request_key="k1", now=NOW)
        async with db.session() as s:
            merchant_id = await s.scalar(select(Coupon.merchant_id).where(Coupon.id == coupon_id))
            activity_id = await s.scalar(select(ActivitySession.activity_id).where(ActivitySession.id == session_id))
        assert merchant_id is not None and activity_id is not None
        verified = await coupons.verify(db, code=first.issued.code, merchant_id=merchant_id, actor="shop", now=NOW)
        assert verified.status == "used"
        for rid in (r0, r1):
            await courses.book(db, resident_id=rid, session_id=session_id, now=NOW)
        await courses.register_work_unit(db, resident_id=r2, work_unit="区税务局", now=NOW)
        for rid in (r0, r2):
            await courses.check_in(db, resident_id=rid, activity_id=activity_id, now=NOW + timedelta(hours=2))

        period = dashboard.period_of(NOW.date().isoformat(), (NOW.date() + timedelta(days=1)).isoformat(), NOW)
        data = await dashboard.section(db, "services", period, NOW + timedelta(hours=3))
        f = {k: (v["current"], v["previous"]) for k, v in data["figures"].items()}
        rows = {t["name"]: t["rows"] for t in data["tables"]}
        async with db.session() as s:
            earned = await s.scalar(select(func.sum(PointsEntry.amount)).where(PointsEntry.amount > 0))
        assert f["points_issued"] == (earned, 0) and earned >= 300
        assert f["points_spent"] == (2 * 30 + 2 * 10, 0)
        assert f["coupons_redeemed"] == (2, 0) and f["coupons_verified"] == (1, 0)
        (merchant,) = rows["coupons_by_merchant"]
        assert (merchant["redeemed"], merchant["verified"], merchant["points"]) == (2, 1, 60)
        assert f["course_sessions"] == (1, 0) and f["course_fill_rate"] == (0.5, None)
        (course,) = rows["courses"]
        assert (course["capacity"], course["booked"], course["fill_rate"]) == (4, 2, 0.5)
        assert f["checkins"] == (2, 0) and f["volunteers"] == (2, 0) and f["dual_checkins"] == (1, 0)
        (unit,) = rows["checkins_by_work_unit"]
        assert (unit["name"], unit["checkins"], unit["members"]) == ("区税务局", 1, 1)
        reasons = {r["name"]: r for r in rows["points_by_reason"]}
        assert reasons["coupon"]["spent"] == 60 and reasons["course"]["spent"] == 20
        assert sum(r["issued"] for r in rows["points_per_day"]) == earned
    finally:
        await db.dispose()
