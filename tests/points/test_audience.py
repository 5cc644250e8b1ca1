"""A course for a restricted audience (e.g. 60岁以上): the chat asks once whether the resident fits,
remembers the answer on the resident, and refuses politely on "no"; staff booking is not asked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from bot.services import courses
from bot.storage.db import Database
from bot.storage.models import Activity, ActivitySession, Booking, Resident
from tests.points.helpers import NOW, make_course
from tests.points.test_journeys import Chat, resident_id, start


async def audience_course(db: Database, audience: str = "60岁以上") -> int:
    session_id = await make_course(db, capacity=5, cost=0, starts_in=timedelta(days=3))
    async with db.transaction() as s:
        sess = await s.get(ActivitySession, session_id)
        assert sess is not None
        await s.execute(update(Activity).where(Activity.id == sess.activity_id).values(audience=audience))
    return session_id


async def bookings(db: Database, session_id: int) -> list[tuple[int, str]]:
    async with db.session() as s:
        rows = (await s.scalars(select(Booking).where(Booking.session_id == session_id))).all()
        return [(b.resident_id, b.status) for b in rows]


async def test_audience_asked_once_and_remembered(service_factory: Any, database_url: str, fake_api: str) -> None:
    svc, _clock, db = await start(service_factory, database_url, fake_api)
    session_id = await audience_course(db)
    a = Chat(svc, "oAudienceAlpha00000000001")

    await a.say("有什么课")
    assert "适合：60岁以上" in await a.say("1")
    ask = await a.say("预约")
    assert "本课程面向60岁以上居民，您符合条件吗？回复“是”继续" in ask
    assert await bookings(db, session_id) == []  # nothing booked before the answer

    assert "预约成功" in await a.say("是的。")
    rid = await resident_id(db, a.openid)
    assert await bookings(db, session_id) == [(rid, "booked")]
    async with db.session() as s:
        resident = await s.get(Resident, rid)
        assert resident is not None and resident.profile is not None
        assert "60岁以上" in resident.profile["audiences"]

    # Cancelled and booked again: the confirmation is remembered, no second question.
    assert "确定取消" in await a.say("取消预约")
    assert "已取消" in await a.say("确认取消")
    await a.say("有什么课")
    await a.say("1")
    again = await a.say("预约")
    assert "预约成功" in again and "符合条件" not in again


async def test_audience_no_is_refused_politely(service_factory: Any, database_url: str, fake_api: str) -> None:
    svc, _clock, db = await start(service_factory, database_url, fake_api)
    session_id = await audience_course(db)
    b = Chat(svc, "oAudienceBravo00000000002")

    await b.say("有什么课")
    await b.say("1")
    assert "符合条件" in await b.say("预约")
    refused = await b.say("不是")
    assert "不为您报名" in refused and "60岁以上居民" in refused and "花艺入门" in refused
    assert await bookings(db, session_id) == []
    rid = await resident_id(db, b.openid)
    async with db.session() as s:
        resident = await s.get(Resident, rid)
        assert resident is not None and not (resident.profile or {}).get("audiences")

    # Not remembered as confirmed: asked again next time.
    await b.say("有什么课")
    await b.say("1")
    assert "符合条件" in await b.say("预约")


async def test_course_without_audience_and_staff_booking_are_not_asked(
    service_factory: Any, database_url: str, fake_api: str
) -> None:
    svc, _clock, db = await start(service_factory, database_url, fake_api)
    plain = await make_course(db, capacity=5, cost=0, starts_in=timedelta(days=3))
    c = Chat(svc, "oAudienceCharlie000000003")
    await c.say("有什么课")
    await c.say("1")
    booked = await c.say("预约")
    assert "预约成功" in booked and "符合条件" not in booked
    rid = await resident_id(db, c.openid)
    assert await bookings(db, plain) == [(rid, "booked")]

    # Booking by staff (the service the staff side calls) is not asked: the audience is the chat's question.
    restricted = await audience_course(db)
    await courses.book(db, resident_id=rid, session_id=restricted, now=NOW)
    assert await bookings(db, restricted) == [(rid, "booked")]
