"""Services beyond the happy path: expiry, waitlist housekeeping and promotion rules, daily caps,
the rules file, and the 双报到 export CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.services import coupons, courses, points
from bot.storage.models import ActivitySession, Booking, IssuedCoupon, OutboxMessage
from tests.points.helpers import (
    NOW,
    assert_ledger_matches,
    make_coupon,
    make_course,
    make_residents,
    migrated,
)

REPO = Path(__file__).resolve().parents[2]


async def test_expired_coupons_are_marked_and_not_refunded(database_url: str):
    db = await migrated(database_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=50)
        coupon_id = await make_coupon(db, stock=2, price=20)
        result = await coupons.redeem(db, resident_id=rid, coupon_id=coupon_id, request_key="a", now=NOW)
        assert await coupons.expire(db, NOW) == []
        later = result.issued.expires_at + timedelta(seconds=1)
        assert [(r, refunded) for r, _, refunded in await coupons.expire(db, later)] == [(rid, 0)]
        assert await coupons.expire(db, later) == []  # once
        async with db.session() as s:
            issued = await s.get(IssuedCoupon, result.issued.id)
            assert issued is not None and issued.status == "expired"
            assert await points.balance_of(s, rid) == 30
        # an expired coupon cannot be verified
        async with db.session() as s:
            from bot.storage.models import Coupon

            coupon = await s.get(Coupon, coupon_id)
            assert coupon is not None
        verdict = await coupons.verify(
            db, code=result.issued.code, merchant_id=coupon.merchant_id, actor="m", now=later
        )
        assert verdict.status == "expired"
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


async def test_promotion_skips_residents_without_enough_points(database_url: str):
    db = await migrated(database_url)
    try:
        rich, poor, next_rich = await make_residents(db, 3, points_each=0)
        async with db.transaction() as s:
            for rid in (rich, next_rich):
                await points.credit(
                    s,
                    resident_id=rid,
                    amount=30,
                    reason="adjust",
                    ref_type="t",
                    ref_id="t",
                    idempotency_key=f"p{rid}",
                    now=NOW,
                )
        session_id = await make_course(db, capacity=1, cost=20)
        first = await courses.book(db, resident_id=rich, session_id=session_id, now=NOW)
        with pytest.raises(courses.BookingError) as full:
            await courses.book(db, resident_id=poor, session_id=session_id, now=NOW)
        assert full.value.code == "full"
        await courses.book(db, resident_id=poor, session_id=session_id, now=NOW, waitlist=True)
        await courses.book(
            db, resident_id=next_rich, session_id=session_id, now=NOW + timedelta(minutes=1), waitlist=True
        )
        result = await courses.cancel(db, resident_id=rich, booking_id=first.booking.id, now=NOW)
        assert result.refunded == 20 and len(result.promoted) == 1
        async with db.session() as s:
            statuses = dict((await s.execute(select(Booking.resident_id, Booking.status))).all())
            assert statuses == {rich: "cancelled", poor: "cancelled", next_rich: "booked"}
            assert await points.balance_of(s, next_rich) == 10
            notes = (await s.scalars(select(OutboxMessage.payload))).all()
            texts = " ".join(n["text"]["content"] for n in notes)
            assert "积分不够" in texts and "有空位了" in texts
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


async def test_waitlist_housekeeping_fills_raised_capacity_and_closes_started_sessions(database_url: str):
    db = await migrated(database_url)
    try:
        a, b, c = await make_residents(db, 3)
        session_id = await make_course(db, capacity=1, cost=0, starts_in=timedelta(hours=5))
        await courses.book(db, resident_id=a, session_id=session_id, now=NOW)
        await courses.book(db, resident_id=b, session_id=session_id, now=NOW, waitlist=True)
        await courses.book(db, resident_id=c, session_id=session_id, now=NOW, waitlist=True)
        assert await courses.housekeep_waitlists(db, NOW) == 0  # still full
        async with db.transaction() as s:
            sess = await s.get(ActivitySession, session_id)
            assert sess is not None
            sess.capacity = 2
        assert await courses.housekeep_waitlists(db, NOW) == 1
        assert await courses.housekeep_waitlists(db, NOW + timedelta(hours=6)) == 1  # c: started, closed
        async with db.session() as s:
            statuses = dict((await s.execute(select(Booking.resident_id, Booking.status))).all())
        assert statuses == {a: "booked", b: "booked", c: "cancelled"}
        # booking after the start is refused; cancelling after the start too
        with pytest.raises(courses.BookingError) as closed:
            await courses.book(db, resident_id=c, session_id=session_id, now=NOW + timedelta(hours=6))
        assert closed.value.code == "closed"
    finally:
        await db.dispose()


async def test_daily_cap_limits_earning(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1)
        cap = points.rules().daily_caps["activity"]
        earned = []
        for i in range(6):
            async with db.transaction() as s:
                earned.append(
                    await points.earn(
                        s,
                        resident_id=rid,
                        rule="activity",
                        ref_type="x",
                        ref_id=str(i),
                        idempotency_key=f"cap{i}",
                        now=NOW,
                    )
                )
        assert sum(earned) == cap and earned[-1] == 0
        async with db.transaction() as s:  # the next local day starts afresh
            assert (
                await points.earn(
                    s,
                    resident_id=rid,
                    rule="activity",
                    ref_type="x",
                    ref_id="n",
                    idempotency_key="cap-next",
                    now=NOW + timedelta(days=1),
                )
                > 0
            )
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


def test_rules_file_errors_name_the_file_and_setting(tmp_path: Path):
    bad = tmp_path / "points.yml"
    bad.write_text("earn:\n  activity: -5\n", encoding="utf-8")
    with pytest.raises(points.RulesError, match=r"points\.yml.*earn\.activity"):
        points.load_rules(bad)
    bad.write_text("earn: [1, 2\n", encoding="utf-8")
    with pytest.raises(points.RulesError, match="not valid YAML"):
        points.load_rules(bad)
    bad.write_text("timezone: Mars/Olympus\n", encoding="utf-8")
    with pytest.raises(points.RulesError, match="timezone"):
        points.load_rules(bad)
    with pytest.raises(points.RulesError, match="cannot read"):
        points.load_rules(tmp_path / "missing.yml")
    assert points.load_rules().earn["activity"] > 0


def run_cli(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOT_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


async def test_service_record_export_cli(sqlite_url: str, tmp_path: Path):
    db = await migrated(sqlite_url)
    try:
        a, b = await make_residents(db, 2)
        session_id = await make_course(db, capacity=5, cost=0)
        async with db.session() as s:
            sess = await s.get(ActivitySession, session_id)
            assert sess is not None
            activity_id = sess.activity_id
        await courses.register_work_unit(db, resident_id=a, work_unit="区税务局", now=NOW, name="张三")
        await courses.check_in(db, resident_id=a, activity_id=activity_id, now=NOW)
        await courses.check_in(db, resident_id=b, activity_id=activity_id, now=NOW)
    finally:
        await db.dispose()
    out = tmp_path / "record.csv"
    done = run_cli(["points", "export-service", "--unit", "区税务局", "--out", str(out)], sqlite_url)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0][0] == "日期" and len(rows) == 3 and rows[1][2] == "张三" and rows[1][3] == "花艺入门"
    xlsx = tmp_path / "record.xlsx"
    assert (
        run_cli(["points", "export-service", "--unit", "区税务局", "--out", str(xlsx)], sqlite_url).returncode
        == 0
    )
    assert xlsx.stat().st_size > 0
    bad = run_cli(["points", "export-service", "--unit", "x", "--since", "2026-13-01"], sqlite_url)
    assert bad.returncode == 2 and "not a date" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli(["points", "export-service", "--unit", "x", "--out", str(tmp_path / "a.pdf")], sqlite_url)
    assert bad.returncode == 2 and "a.pdf" in bad.stderr
    empty_db = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    bad = run_cli(["points", "export-service", "--unit", "x"], empty_db)
    assert bad.returncode == 1 and "db upgrade" in bad.stderr and "Traceback" not in bad.stderr
    check = run_cli(["points", "check"], sqlite_url)
    assert check.returncode == 0 and "agree" in check.stdout
