"""The one-off registration reward through the WeChat endpoint: shown with the first view of points
and written with that reply (no transaction of its own), given once whichever way and however often
a resident asks, and given by a booking in the booking's transaction — or in its own when the
booking is refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.services import points
from bot.storage.models import PointsEntry
from tests.points.helpers import assert_ledger_matches, make_coupon, make_course
from tests.points.test_journeys import Chat, resident_id, start

REWARD = points.rules().earn["registration"]


async def _ledger(db, rid: int) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    async with db.session() as s:
        rows = await s.execute(
            select(PointsEntry.reason, PointsEntry.amount).where(PointsEntry.resident_id == rid).order_by(PointsEntry.id)
        )
        return [(reason, amount) for reason, amount in rows]


async def test_first_views_show_the_reward_and_write_it_once(service_factory, database_url, fake_api):
    svc, _clock, db = await start(service_factory, database_url, fake_api)
    await make_coupon(db, stock=5, price=30)
    a = Chat(svc, "oWelcomeAlpha00000000001")
    first = await asyncio.gather(a.say("我还有多少积分"), a.say("积分商城"), a.say("积分明细"))
    assert all(str(REWARD) in reply for reply in first), first
    rid = await resident_id(db, a.openid)
    assert await _ledger(db, rid) == [("registration", REWARD)]
    again = await a.say("查积分")
    assert f"您现在有 {REWARD} 积分" in again and "见面礼" in again  # the history line, not a second gift
    assert "送您" not in again
    assert f"您有{REWARD}积分" in await a.say("积分商城")
    assert await _ledger(db, rid) == [("registration", REWARD)]
    await assert_ledger_matches(db)


async def test_a_paid_course_booked_with_the_welcome_points(service_factory, database_url, fake_api):
    svc, _clock, db = await start(service_factory, database_url, fake_api)
    await make_course(db, capacity=5, cost=10, starts_in=timedelta(days=2))
    b = Chat(svc, "oWelcomeBravo00000000002")
    await b.say("有什么课")
    await b.say("1")
    booked = await b.say("预约")
    assert "预约成功" in booked and f"还剩{REWARD - 10}积分" in booked, booked
    rid = await resident_id(db, b.openid)
    assert await _ledger(db, rid) == [("registration", REWARD), ("course", -10)]
    assert f"您现在有 {REWARD - 10} 积分" in await b.say("查积分")
    await assert_ledger_matches(db)


async def test_a_refused_booking_still_gives_the_reward(service_factory, database_url, fake_api):
    svc, _clock, db = await start(service_factory, database_url, fake_api)
    await make_course(db, capacity=1, cost=0, starts_in=timedelta(days=2))
    c, d = Chat(svc, "oWelcomeCharlie000000003"), Chat(svc, "oWelcomeDelta00000000004")
    await c.say("有什么课")
    await c.say("1")
    assert "预约成功" in await c.say("预约")
    await d.say("有什么课")
    await d.say("1")
    assert "候补" in await d.say("预约")  # full: asked to queue, nothing booked
    for chat in (c, d):
        assert await _ledger(db, await resident_id(db, chat.openid)) == [("registration", REWARD)]
    await assert_ledger_matches(db)
