"""bot/services/courses.py: booking windows, waitlist order, refunds before the cut-off, reminders,
check-ins and the 双报到 record, at their boundaries. At the service, where the chat's texts would
hide which rule answered; the service record's window through the JSON API. Written against the
mutants that survived the earlier tests (docs/testing.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.appkeys import RUNTIME
from bot.clock import ManualClock
from bot.services import courses, points
from bot.storage.db import Database
from bot.storage.models import Activity, ActivitySession, Booking, CheckIn, OutboxMessage, Resident
from tests.api.conftest import Api, make_tokens
from tests.points.helpers import NOW, make_course, make_residents, migrated

CUTOFF = points.rules().cancel_refund_cutoff


@pytest.fixture
async def db(sqlite_url: str):
    database = await migrated(sqlite_url)
    yield database
    await database.dispose()


async def set_session(db: Database, session_id: int, **values: Any) -> None:
    async with db.transaction() as s:
        await s.execute(update(ActivitySession).where(ActivitySession.id == session_id).values(**values))


async def activity_of(db: Database, session_id: int) -> int:
    async with db.session() as s:
        sess = await s.get(ActivitySession, session_id)
        assert sess is not None
        return sess.activity_id


async def set_activity(db: Database, session_id: int, **values: Any) -> None:
    aid = await activity_of(db, session_id)
    async with db.transaction() as s:
        await s.execute(update(Activity).where(Activity.id == aid).values(**values))


async def notices(db: Database) -> list[tuple[str, str, str]]:
    async with db.session() as s:
        rows = (await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars().all()
        return [(r.openid, r.dedup_key or "", r.payload["text"]["content"]) for r in rows]


async def openid_of(db: Database, rid: int) -> str:
    async with db.session() as s:
        r = await s.get(Resident, rid)
        assert r is not None
        return r.openid


def test_local_when_and_week_end_are_beijing_time():
    assert courses.local_when(NOW) == "11月23日 10:00"
    end = courses.week_end(NOW)  # NOW is a Monday
    assert end.isoformat() == "2026-11-30T00:00:00+08:00"
    assert courses.week_end(NOW + timedelta(days=6)) == end  # Sunday 10:00, same week
    assert courses.week_end(NOW + timedelta(hours=3, minutes=25, seconds=7, microseconds=5)) == end


async def test_upcoming_and_my_bookings(db: Database):
    (rid,) = await make_residents(db, 1)
    soon = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=2))
    later = await make_course(db, capacity=5, cost=0, starts_in=timedelta(days=3))
    now_starting = await make_course(db, capacity=5, cost=0, starts_in=timedelta(0))
    await set_activity(db, later, category="书法")
    async with db.session() as s:
        assert [x.id for x, _ in await courses.upcoming(s, NOW)] == [soon, later]
        until = NOW + timedelta(days=3)  # a session starting exactly then is not before it
        assert [x.id for x, _ in await courses.upcoming(s, NOW, until=until)] == [soon]
        assert [x.id for x, _ in await courses.upcoming(s, NOW, category="书法")] == [later]
        aid = await activity_of(db, soon)
        assert [x.id for x, _ in await courses.upcoming(s, NOW, activity_id=aid)] == [soon]
    assert now_starting
    await courses.book(db, resident_id=rid, session_id=soon, now=NOW)
    booked_later = await courses.book(db, resident_id=rid, session_id=later, now=NOW)
    await courses.cancel(db, resident_id=rid, booking_id=booked_later.booking.id, now=NOW)
    async with db.session() as s:
        assert [b.session_id for b, _, _ in await courses.my_bookings(s, rid, NOW)] == [soon]
        ends = NOW + timedelta(hours=4)  # soon ends two hours after it starts
        assert await courses.my_bookings(s, rid, ends) == []
        assert [
            b.session_id for b, _, _ in await courses.my_bookings(s, rid, ends - timedelta(seconds=1))
        ] == [soon]
    await set_activity(db, later, active=False)
    async with db.session() as s:
        assert [x.id for x, _ in await courses.upcoming(s, NOW)] == [soon]


async def test_booking_opens_and_closes_at_its_times(db: Database):
    (rid,) = await make_residents(db, 1)
    sid = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=5))
    opens, closes = NOW + timedelta(hours=1), NOW + timedelta(hours=3)
    await set_session(db, sid, booking_opens_at=opens, booking_closes_at=closes)
    with pytest.raises(courses.BookingError) as early:
        await courses.book(db, resident_id=rid, session_id=sid, now=opens - timedelta(seconds=1))
    assert early.value.code == "not_open" and early.value.info == {"opens_at": opens}
    with pytest.raises(courses.BookingError) as late:
        await courses.book(db, resident_id=rid, session_id=sid, now=closes)
    assert late.value.code == "closed"
    done = await courses.book(db, resident_id=rid, session_id=sid, now=opens)
    assert done.booking.status == "booked" and done.booking.booked_at == opens and done.session.booked == 1
    with pytest.raises(courses.BookingError) as missing:
        await courses.book(db, resident_id=rid, session_id=999, now=opens)
    assert missing.value.code == "not_found"


async def test_without_a_closing_time_booking_closes_at_the_start(db: Database):
    (rid,) = await make_residents(db, 1)
    sid = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=5))
    starts = NOW + timedelta(hours=5)
    with pytest.raises(courses.BookingError) as late:
        await courses.book(db, resident_id=rid, session_id=sid, now=starts)
    assert late.value.code == "closed"
    await set_session(
        db, sid, booking_closes_at=starts + timedelta(hours=1)
    )  # a closing time after the start
    with pytest.raises(courses.BookingError) as started:
        await courses.book(db, resident_id=rid, session_id=sid, now=starts)
    assert started.value.code == "closed"
    assert (
        await courses.book(db, resident_id=rid, session_id=sid, now=starts - timedelta(seconds=1))
    ).booking.id


async def test_duplicates_the_same_request_and_booking_again_after_cancelling(db: Database):
    (rid,) = await make_residents(db, 1, points_each=50)
    sid = await make_course(db, capacity=5, cost=10)
    first = await courses.book(db, resident_id=rid, session_id=sid, now=NOW, request_key="msg-1")
    assert first.balance == 40 and first.booking.points_paid == 10
    again = await courses.book(db, resident_id=rid, session_id=sid, now=NOW, request_key="msg-1")
    assert (again.booking.id, again.balance) == (first.booking.id, 40)
    with pytest.raises(courses.BookingError) as dup:
        await courses.book(db, resident_id=rid, session_id=sid, now=NOW, request_key="msg-2")
    assert dup.value.code == "duplicate" and dup.value.info == {"status": "booked"}
    cancelled = await courses.cancel(db, resident_id=rid, booking_id=first.booking.id, now=NOW)
    assert (cancelled.refunded, cancelled.previous, cancelled.booking.status) == (10, "booked", "cancelled")
    assert cancelled.booking.cancelled_at == NOW and cancelled.session.booked == 0
    rebooked = await courses.book(db, resident_id=rid, session_id=sid, now=NOW + timedelta(minutes=5))
    b = rebooked.booking
    assert (b.id, b.status, b.attempt, b.points_paid, b.cancelled_at) == (
        first.booking.id,
        "booked",
        2,
        10,
        None,
    )
    assert b.queued_at == NOW + timedelta(minutes=5) and rebooked.balance == 40


async def test_full_sessions_and_the_waitlist_in_order(db: Database):
    a, b, c, d = await make_residents(db, 4)
    sid = await make_course(db, capacity=1, cost=0)
    await courses.book(db, resident_id=a, session_id=sid, now=NOW)
    with pytest.raises(courses.BookingError) as full:
        await courses.book(db, resident_id=b, session_id=sid, now=NOW)
    assert full.value.code == "full"
    wb = await courses.book(db, resident_id=b, session_id=sid, now=NOW, waitlist=True)
    wc = await courses.book(db, resident_id=c, session_id=sid, now=NOW, waitlist=True)
    wd = await courses.book(db, resident_id=d, session_id=sid, now=NOW - timedelta(seconds=1), waitlist=True)
    assert wb.booking.status == "waitlisted" and wb.session.booked == 1
    async with db.session() as s:
        positions = [await courses.waitlist_position(s, w.booking) for w in (wb, wc, wd)]
    assert positions == [2, 3, 1]  # queued earlier first; at the same time, the older booking first
    with pytest.raises(courses.BookingError) as dup:
        await courses.book(db, resident_id=b, session_id=sid, now=NOW, waitlist=True)
    assert dup.value.info == {"status": "waitlisted"}
    left = await courses.cancel(db, resident_id=b, booking_id=wb.booking.id, now=NOW)
    assert (left.previous, left.refunded, left.promoted) == ("waitlisted", 0, [])


async def test_points_are_needed_and_said(db: Database):
    (rid,) = await make_residents(db, 1, points_each=9)
    sid = await make_course(db, capacity=5, cost=10)
    with pytest.raises(courses.BookingError) as short:
        await courses.book(db, resident_id=rid, session_id=sid, now=NOW)
    assert short.value.code == "points" and short.value.info == {"balance": 9, "cost": 10}
    async with db.session() as s:
        assert (await s.execute(select(Booking))).first() is None
        sess = await s.get(ActivitySession, sid)
        assert sess is not None and sess.booked == 0


async def test_refund_only_up_to_the_cut_off(db: Database):
    a, b = await make_residents(db, 2, points_each=30)
    sid = await make_course(db, capacity=5, cost=10, starts_in=timedelta(days=3))
    starts = NOW + timedelta(days=3)
    first = await courses.book(db, resident_id=a, session_id=sid, now=NOW)
    second = await courses.book(db, resident_id=b, session_id=sid, now=NOW)
    at_cutoff = await courses.cancel(db, resident_id=a, booking_id=first.booking.id, now=starts - CUTOFF)
    assert at_cutoff.refunded == 10
    after = await courses.cancel(
        db, resident_id=b, booking_id=second.booking.id, now=starts - CUTOFF + timedelta(seconds=1)
    )
    assert after.refunded == 0
    async with db.session() as s:
        assert await points.balance_of(s, a) == 30 and await points.balance_of(s, b) == 20
        (refund, *_) = await points.history(s, a)
        assert (refund.reason, refund.ref_type, refund.ref_id) == ("refund", "booking", str(first.booking.id))
        assert refund.idempotency_key == f"booking:{first.booking.id}:1:refund"


async def test_cancelling_someone_elses_or_a_started_booking(db: Database):
    a, b = await make_residents(db, 2)
    sid = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=1))
    mine = await courses.book(db, resident_id=a, session_id=sid, now=NOW)
    with pytest.raises(courses.BookingError) as other:
        await courses.cancel(db, resident_id=b, booking_id=mine.booking.id, now=NOW)
    assert other.value.code == "not_found"
    with pytest.raises(courses.BookingError) as started:
        await courses.cancel(db, resident_id=a, booking_id=mine.booking.id, now=NOW + timedelta(hours=1))
    assert started.value.code == "not_cancellable" and started.value.info == {"status": "booked"}
    staff = await courses.cancel(db, resident_id=None, booking_id=mine.booking.id, now=NOW)
    assert staff.booking.status == "cancelled"
    with pytest.raises(courses.BookingError) as twice:
        await courses.cancel(db, resident_id=a, booking_id=mine.booking.id, now=NOW)
    assert twice.value.info == {"status": "cancelled"}


async def test_promotion_pays_notifies_and_skips_the_short(db: Database):
    a, poor, rich = await make_residents(db, 3)
    async with db.transaction() as s:
        for rid, amount in ((a, 20), (poor, 3), (rich, 20)):
            await points.credit(
                s, resident_id=rid, amount=amount, reason="adjust", ref_type="t", ref_id="t",
                idempotency_key=f"seed{rid}", now=NOW,
            )  # fmt: skip
    sid = await make_course(db, capacity=1, cost=5, starts_in=timedelta(days=3))
    first = await courses.book(db, resident_id=a, session_id=sid, now=NOW)
    w_poor = await courses.book(db, resident_id=poor, session_id=sid, now=NOW, waitlist=True)
    w_rich = await courses.book(
        db, resident_id=rich, session_id=sid, now=NOW + timedelta(seconds=1), waitlist=True
    )
    out = await courses.cancel(db, resident_id=a, booking_id=first.booking.id, now=NOW)
    assert out.promoted == [w_rich.booking.id]
    assert out.session.booked == 1
    when = courses.local_when(NOW + timedelta(days=3))
    assert await notices(db) == [
        (
            await openid_of(db, poor),
            f"booking:{w_poor.booking.id}:1:no-points#0",
            f"「花艺入门」（{when}）有空位了，但您的积分不够（需要5分），这次没能为您约上，抱歉。",
        ),
        (
            await openid_of(db, rich),
            f"booking:{w_rich.booking.id}:1:promoted#0",
            f"好消息！您候补的「花艺入门」（{when}）有空位了，已为您约上，扣5积分。不能来的话回复“取消预约”。",
        ),
    ]
    async with db.session() as s:
        promoted = await s.get(Booking, w_rich.booking.id)
        assert promoted is not None and (promoted.status, promoted.booked_at, promoted.points_paid) == (
            "booked",
            NOW,
            5,
        )
        skipped = await s.get(Booking, w_poor.booking.id)
        assert skipped is not None and (skipped.status, skipped.cancelled_at) == ("cancelled", NOW)
        assert await points.balance_of(s, rich) == 15 and await points.balance_of(s, poor) == 3


async def test_free_promotion_says_nothing_about_points_and_no_promotion_after_the_start(db: Database):
    a, b = await make_residents(db, 2)
    sid = await make_course(db, capacity=1, cost=0, starts_in=timedelta(days=3))
    first = await courses.book(db, resident_id=a, session_id=sid, now=NOW)
    await courses.book(db, resident_id=b, session_id=sid, now=NOW, waitlist=True)
    async with db.transaction() as s:
        assert await courses.promote(s, sid, NOW + timedelta(days=3)) == []
        assert await courses.promote(s, 999, NOW) == []
    await courses.cancel(db, resident_id=a, booking_id=first.booking.id, now=NOW)
    ((_, _, text),) = await notices(db)
    assert "已为您约上。" in text and "积分" not in text


async def test_reminders_within_the_horizon_once(db: Database):
    a, b = await make_residents(db, 2)
    horizon = points.rules().remind_before
    at_horizon = await make_course(db, capacity=5, cost=0, starts_in=horizon)
    beyond = await make_course(db, capacity=5, cost=0, starts_in=horizon + timedelta(seconds=1))
    await set_activity(db, beyond, place=None)
    for sid in (at_horizon, beyond):
        await courses.book(db, resident_id=a, session_id=sid, now=NOW)
    await courses.book(db, resident_id=b, session_id=at_horizon, now=NOW)
    assert await courses.send_reminders(db, NOW) == 2
    assert await courses.send_reminders(db, NOW) == 0
    sent = await notices(db)
    when = courses.local_when(NOW + horizon)
    assert {o for o, _, _ in sent} == {await openid_of(db, a), await openid_of(db, b)}
    assert (
        sent[0][2]
        == f"温馨提醒：您预约的「花艺入门」将于{when}在社区活动室开始，记得准时参加哦。不能来请回复“取消预约”。"
    )
    assert sent[0][1].endswith(":1:remind#0")
    # the other session, one second further, is reminded a second later; without a place, the default
    assert await courses.send_reminders(db, NOW + timedelta(seconds=1)) == 1
    assert "在社区活动室开始" in (await notices(db))[-1][2]
    assert await courses.send_reminders(db, NOW + horizon * 10) == 0  # started: nothing due


async def test_housekeeping_closes_the_waitlist_of_a_started_session_with_a_notice(db: Database):
    a, b = await make_residents(db, 2)
    sid = await make_course(db, capacity=1, cost=0, starts_in=timedelta(hours=2))
    await courses.book(db, resident_id=a, session_id=sid, now=NOW)
    waiting = await courses.book(db, resident_id=b, session_id=sid, now=NOW, waitlist=True)
    starts = NOW + timedelta(hours=2)
    assert await courses.housekeep_waitlists(db, starts - timedelta(seconds=1)) == 0
    assert await courses.housekeep_waitlists(db, starts) == 1
    assert await courses.housekeep_waitlists(db, starts) == 0
    ((openid, key, text),) = await notices(db)
    assert openid == await openid_of(db, b) and key == f"booking:{waiting.booking.id}:1:closed#0"
    assert text == f"「花艺入门」（{courses.local_when(starts)}）已经开始，候补没能排上，下次早点来约哦。"


async def test_check_in_once_a_day_with_the_days_session_and_points(db: Database):
    a, b = await make_residents(db, 2)
    today = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=2))
    aid = await activity_of(db, today)
    await set_activity(db, today, volunteer_hours=1.5, reward_points=4)
    await courses.book(db, resident_id=a, session_id=today, now=NOW)
    await courses.register_work_unit(db, resident_id=a, work_unit="  区 税务局 ", now=NOW, name="张三")
    first = await courses.check_in(db, resident_id=a, activity_id=aid, now=NOW)
    again = await courses.check_in(db, resident_id=a, activity_id=aid, now=NOW + timedelta(hours=1))
    assert (first.created, first.points, first.work_unit) == (True, 4, "区 税务局")
    assert first.checkin.session_id == today and first.checkin.day == "2026-11-23"
    assert first.checkin.volunteer_hours == 1.5 and first.checkin.checked_in_at == NOW
    assert (again.created, again.points, again.checkin.id) == (False, 0, first.checkin.id)
    async with db.session() as s:
        booking = await s.scalar(select(Booking).where(Booking.resident_id == a))
        assert booking is not None and booking.status == "attended"
        assert await points.balance_of(s, a) == 4
    with pytest.raises(courses.BookingError) as missing:
        await courses.check_in(db, resident_id=a, activity_id=999, now=NOW)
    assert missing.value.code == "not_found"
    # the next local day is another check-in; a session on another day is not "today's"
    tomorrow = await courses.check_in(db, resident_id=b, activity_id=aid, now=NOW + timedelta(days=1))
    assert tomorrow.checkin.session_id is None and tomorrow.work_unit is None and tomorrow.created


async def test_check_in_links_a_session_starting_at_midnight_not_one_starting_the_next_midnight(db: Database):
    (rid,) = await make_residents(db, 1)
    start, end = points.rules().day_bounds(NOW)
    sid = await make_course(db, capacity=5, cost=0)
    aid = await activity_of(db, sid)
    await set_session(db, sid, starts_at=end, ends_at=end + timedelta(hours=1))
    assert (await courses.check_in(db, resident_id=rid, activity_id=aid, now=NOW)).checkin.session_id is None
    await set_session(db, sid, starts_at=start, ends_at=start + timedelta(hours=1))
    (other,) = await make_residents(db, 1, prefix="oMid")
    assert (await courses.check_in(db, resident_id=other, activity_id=aid, now=NOW)).checkin.session_id == sid


async def test_work_unit_registration(db: Database):
    (rid,) = await make_residents(db, 1)
    with pytest.raises(ValueError) as empty:
        await courses.register_work_unit(db, resident_id=rid, work_unit="   ", now=NOW)
    assert str(empty.value) == "the work unit must not be empty"
    sid = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=1))
    aid = await activity_of(db, sid)
    await courses.check_in(db, resident_id=rid, activity_id=aid, now=NOW)
    assert (
        await courses.register_work_unit(db, resident_id=rid, work_unit="单" * 120, now=NOW, name="李四") == 1
    )
    assert await courses.register_work_unit(db, resident_id=rid, work_unit="街道办", now=NOW) == 1
    assert (
        await courses.register_work_unit(db, resident_id=rid, work_unit="街道办", now=NOW + timedelta(days=1))
        == 0
    )
    async with db.session() as s:
        row = await s.scalar(select(CheckIn))
        assert row is not None and row.work_unit == "街道办"
        records = await courses.service_record(s, "街道办")
        assert [(r.name, r.activity, r.resident_id) for r in records] == [("李四", "花艺入门", rid)]


async def test_audience_is_remembered_once_per_resident(db: Database):
    (rid,) = await make_residents(db, 1)
    assert courses.audience_confirmed(None, "60岁以上") is False
    await courses.confirm_audience(db, resident_id=rid, audience=" 60岁以上 ", now=NOW)
    await courses.confirm_audience(db, resident_id=rid, audience="60岁以上", now=NOW + timedelta(days=1))
    await courses.confirm_audience(db, resident_id=999, audience="60岁以上", now=NOW)
    async with db.session() as s:
        resident = await s.get(Resident, rid)
    assert resident is not None
    assert resident.profile["audiences"] == {"60岁以上": NOW.isoformat()}
    assert courses.audience_confirmed(resident, "60岁以上 ") is True
    assert courses.audience_confirmed(resident, "儿童") is False


async def test_service_record_window_through_the_api(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api, app_kwargs={"clock": ManualClock(NOW)})
    api = Api(svc, await make_tokens(sqlite_url))
    db = svc.runner.app[RUNTIME].db
    a, b = await make_residents(db, 2)
    sid = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=1))
    aid = await activity_of(db, sid)
    await set_activity(db, sid, volunteer_hours=2.0)
    for rid, name in ((a, "张三"), (b, "李四")):
        await courses.register_work_unit(db, resident_id=rid, work_unit="区税务局", now=NOW, name=name)
    await courses.check_in(db, resident_id=b, activity_id=aid, now=NOW + timedelta(hours=1))
    await courses.check_in(db, resident_id=a, activity_id=aid, now=NOW)
    whole = await api.ok("/points/service-records", "operator", unit="区税务局")
    assert [i["name"] for i in whole["items"]] == ["张三", "李四"]  # oldest first
    assert whole["total_hours"] == 4.0
    first = whole["items"][0]
    assert (first["day"], first["resident_id"], first["activity"], first["hours"], first["points"]) == (
        "2026-11-23",
        a,
        "花艺入门",
        2.0,
        points.rules().earn["activity"],
    )
    at = (NOW + timedelta(hours=1)).isoformat()
    assert [
        i["name"]
        for i in (await api.ok("/points/service-records", "operator", unit="区税务局", since=at))["items"]
    ] == ["李四"]
    assert [
        i["name"]
        for i in (await api.ok("/points/service-records", "operator", unit="区税务局", until=at))["items"]
    ] == ["张三"]
    assert (await api.ok("/points/service-records", "operator", unit="别的单位"))["items"] == []


# -- what the chat lists: this week's sessions, a search by name, one session, my bookings ---------


def a_listing(n: int, title: str, category: str) -> courses.Listing:
    starts = NOW + timedelta(days=n)
    return courses.Listing(
        session_id=n, activity_id=n, title=title, category=category, description=None, organiser=None,
        place="社区活动室", audience=None, points_cost=0, starts_at=starts, ends_at=starts + timedelta(hours=1),
        capacity=10, booked=0,
    )  # fmt: skip


def test_a_search_finds_courses_by_name_category_or_a_near_miss_but_not_by_one_character():
    calligraphy = a_listing(1, "老年书法入门班", "书法")
    flowers = a_listing(2, "插花入门", "花艺")
    morning = a_listing(3, "晨练", "太极拳")
    choir = a_listing(4, "社区合唱团", "音乐")
    rows = [calligraphy, flowers, morning, choir]

    def found(query: str) -> list[courses.Listing]:
        return courses.match_listings(query, rows)

    assert found("书法") == [calligraphy]  # a word of the title
    assert found("太极拳") == [morning]  # the category, not in the title
    assert found("书法入们") == [calligraphy]  # a typo: partial match of the title scores 75, just enough
    assert found("花艺课") == [flowers]  # close to the category (80), far from the title (40)
    assert found("入门") == [calligraphy, flowers]  # in the listing's order
    assert courses.match_listings("入门", rows[::-1]) == [flowers, calligraphy]
    assert found("国画") == []
    assert found("书") == []  # one character matches too much to mean anything
    assert courses.match_listings("书", rows, threshold=60) == [calligraphy]  # it counts as 60 at most
    assert courses.match_listings("书法入们", rows, threshold=76) == []


async def test_whats_on_is_this_weeks_sessions_or_else_the_next_30_days(db: Database):
    assert await courses.whats_on(db, NOW) == ([], False)
    week_end = courses.week_end(NOW)  # NOW is Monday 10:00: the week ends in 6 days 14 hours
    await make_course(db, capacity=5, cost=0, starts_in=-timedelta(hours=1))  # started: never listed
    next_monday = await make_course(db, capacity=5, cost=0, starts_in=week_end - NOW)
    last_day = await make_course(db, capacity=5, cost=0, starts_in=timedelta(days=30) - timedelta(seconds=1))
    await make_course(db, capacity=5, cost=0, starts_in=timedelta(days=30))  # beyond the 30 days
    rows, this_week = await courses.whats_on(db, NOW)
    assert ([r.session_id for r in rows], this_week) == ([next_monday, last_day], False)
    sunday_night = await make_course(db, capacity=3, cost=2, starts_in=week_end - NOW - timedelta(seconds=1))
    await set_activity(db, sunday_night, audience="60岁以上")
    (resident,) = await make_residents(db, 1, points_each=5)
    await courses.book(db, resident_id=resident, session_id=sunday_night, now=NOW)
    rows, this_week = await courses.whats_on(db, NOW)
    assert ([r.session_id for r in rows], this_week) == ([sunday_night], True)
    (row,) = rows
    assert (row.title, row.category, row.description, row.organiser, row.place, row.audience) == (
        "花艺入门", "花艺", "插花基础", "王老师", "社区活动室", "60岁以上",
    )  # fmt: skip
    assert (row.points_cost, row.capacity, row.booked) == (2, 3, 1)
    assert row.starts_at == week_end - timedelta(seconds=1)
    assert row.activity_id == await activity_of(db, sunday_night)


async def test_listings_until_a_time_and_one_listing_whatever_its_state(db: Database):
    later = await make_course(db, capacity=5, cost=0, starts_in=timedelta(days=60))
    soon = await make_course(
        db, capacity=5, cost=0, starts_in=timedelta(hours=1)
    )  # added later, listed first
    until = NOW + timedelta(days=60)  # a session starting exactly then is not before it
    assert [r.session_id for r in await courses.listings(db, NOW, until=until)] == [soon]
    assert [r.session_id for r in await courses.listings(db, NOW, until=until + timedelta(seconds=1))] == [
        soon,
        later,
    ]
    assert await courses.listings(db, NOW + timedelta(hours=1), until=until) == []  # soon has started
    started = await courses.listing(db, soon)  # a started session is still shown when asked for
    assert started is not None and (started.session_id, started.title, started.capacity) == (
        soon,
        "花艺入门",
        5,
    )
    assert started.activity_id == await activity_of(db, soon)
    assert await courses.listing(db, 999) is None


async def test_my_bookings_with_the_place_in_the_waitlist(db: Database):
    me, first, ahead = await make_residents(db, 3, points_each=20)
    mine = await make_course(db, capacity=5, cost=3, starts_in=timedelta(days=1))
    full = await make_course(db, capacity=1, cost=0, starts_in=timedelta(days=2))
    await set_activity(db, full, title="太极拳", place=None)
    later = await make_course(db, capacity=5, cost=0, starts_in=timedelta(days=4))
    await courses.book(db, resident_id=me, session_id=later, now=NOW)  # listed by start, not by booking
    await courses.book(db, resident_id=me, session_id=mine, now=NOW)
    another_full = await make_course(db, capacity=0, cost=0, starts_in=timedelta(days=3))
    await courses.book(
        db, resident_id=ahead, session_id=another_full, now=NOW - timedelta(hours=1), waitlist=True
    )
    await courses.book(db, resident_id=first, session_id=full, now=NOW)
    await courses.book(db, resident_id=ahead, session_id=full, now=NOW, waitlist=True)
    waiting = await courses.book(db, resident_id=me, session_id=full, now=NOW, waitlist=True)
    booked = await courses.bookings_of(db, me, NOW, positions=True)
    assert [(b.status, b.points_paid, b.title, b.place, b.starts_at, b.position) for b in booked] == [
        ("booked", 3, "花艺入门", "社区活动室", NOW + timedelta(days=1), None),
        ("waitlisted", 0, "太极拳", None, NOW + timedelta(days=2), 2),
        ("booked", 0, "花艺入门", "社区活动室", NOW + timedelta(days=4), None),
    ]
    assert booked[1].booking_id == waiting.booking.id  # second in its own queue, whatever other queues hold
    assert [b.position for b in await courses.bookings_of(db, me, NOW)] == [None, None, None]
    assert await courses.waitlist_place(db, waiting.booking) == 2
    assert await courses.bookings_of(db, first, NOW + timedelta(days=3)) == []  # over: no longer listed


async def test_a_check_in_that_loses_the_race_with_its_duplicate_reports_the_winner(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    """Two taps of one check-in at once (PostgreSQL, READ COMMITTED): both miss each other's row, the
    second insert fails on the once-a-day key, and that resident is told they are checked in — the
    first tap's check-in, no second points. SQLite's writers take turns, so the race is staged: the
    second attempt inserts its row without looking first, as the loser of the race does."""
    neighbour, me = await make_residents(db, 2)  # the neighbour first: found first by the unique index
    sid = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=1))
    aid = await activity_of(db, sid)
    other_activity = await activity_of(db, await make_course(db, capacity=5, cost=0))
    await set_activity(db, sid, reward_points=4, title="太极拳")
    await courses.register_work_unit(db, resident_id=me, work_unit="区税务局", now=NOW)
    # check-ins that are not the one racing: the day before, another activity, another resident
    yesterday = await courses.check_in(db, resident_id=me, activity_id=aid, now=NOW - timedelta(days=1))
    await courses.check_in(db, resident_id=me, activity_id=other_activity, now=NOW)
    await courses.check_in(db, resident_id=neighbour, activity_id=aid, now=NOW)
    winner = await courses.check_in(db, resident_id=me, activity_id=aid, now=NOW)
    assert winner.created and winner.points == 4 and yesterday.created
    async with db.session() as s:
        balance = await points.balance_of(s, me)

    async def insert_without_looking(session, resident_id, activity_id, now, day):  # type: ignore[no-untyped-def]
        session.add(CheckIn(activity_id=activity_id, resident_id=resident_id, day=day, checked_in_at=now))
        await session.flush()
        raise AssertionError("the once-a-day key let a second check-in in")

    monkeypatch.setattr(courses, "_check_in", insert_without_looking)
    loser = await courses.check_in(db, resident_id=me, activity_id=aid, now=NOW + timedelta(minutes=1))
    assert (loser.created, loser.points, loser.checkin.id) == (False, 0, winner.checkin.id)
    assert (loser.work_unit, loser.activity.title) == ("区税务局", "太极拳")
    async with db.session() as s:
        assert await points.balance_of(s, me) == balance
        assert len((await s.scalars(select(CheckIn).where(CheckIn.resident_id == me))).all()) == 3


async def test_a_database_error_that_is_not_a_duplicate_check_in_is_not_hidden(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    (rid,) = await make_residents(db, 1)
    aid = await activity_of(db, await make_course(db, capacity=5, cost=0))

    async def broken(session, resident_id, activity_id, now, day):  # type: ignore[no-untyped-def]
        session.add(CheckIn(activity_id=activity_id, resident_id=resident_id, day=day, checked_in_at=now))
        session.add(CheckIn(activity_id=activity_id, resident_id=resident_id, day=day, checked_in_at=now))
        await session.flush()

    monkeypatch.setattr(courses, "_check_in", broken)
    with pytest.raises(IntegrityError):  # not "already checked in": there was no check-in
        await courses.check_in(db, resident_id=rid, activity_id=aid, now=NOW)


async def add_session(db: Database, activity_id: int, starts_in: timedelta, capacity: int = 5) -> int:
    """Another session of the same activity."""
    async with db.transaction() as s:
        sess = ActivitySession(
            activity_id=activity_id, starts_at=NOW + starts_in, ends_at=NOW + starts_in + timedelta(hours=1),
            capacity=capacity, booked=0, created_at=NOW,
        )  # fmt: skip
        s.add(sess)
        await s.flush()
        return sess.id


async def test_check_in_is_once_per_activity_resident_and_day_and_recorded_in_the_ledger(db: Database):
    a, b = await make_residents(db, 2)
    tai_chi = await activity_of(db, await make_course(db, capacity=5, cost=0))
    choir = await activity_of(db, await make_course(db, capacity=5, cost=0))
    first = await courses.check_in(db, resident_id=a, activity_id=tai_chi, now=NOW)
    other_activity = await courses.check_in(db, resident_id=a, activity_id=choir, now=NOW)
    neighbour = await courses.check_in(db, resident_id=b, activity_id=tai_chi, now=NOW)
    next_day = await courses.check_in(db, resident_id=a, activity_id=tai_chi, now=NOW + timedelta(days=1))
    earned = points.rules().earn["activity"]
    for result in (first, other_activity, neighbour, next_day):
        assert result.created and result.points == earned and result.checkin.points == earned
    assert len({r.checkin.id for r in (first, other_activity, neighbour, next_day)}) == 4
    async with db.session() as s:
        assert await points.balance_of(s, a) == 3 * earned
        entries = sorted(await points.history(s, a), key=lambda e: e.id)
        stored = (await s.scalars(select(CheckIn).where(CheckIn.resident_id == a).order_by(CheckIn.id))).all()
    assert [c.points for c in stored] == [earned] * 3  # what the service record shows
    assert [(e.reason, e.ref_type, e.ref_id, e.amount) for e in entries] == [
        ("activity", "check_in", str(c.id), earned)
        for c in (first.checkin, other_activity.checkin, next_day.checkin)
    ]
    assert entries[0].idempotency_key == f"checkin:{tai_chi}:{a}:2026-11-23"


async def test_check_in_takes_the_first_of_todays_sessions_of_that_activity_and_marks_only_that_booking(
    db: Database,
):
    me, booked, waiting = await make_residents(db, 3)
    evening = await make_course(db, capacity=2, cost=0, starts_in=timedelta(hours=9))  # 19:00 today
    aid = await activity_of(db, evening)
    afternoon = await add_session(db, aid, timedelta(hours=4), capacity=2)  # 14:00 today, added later
    await add_session(db, aid, -timedelta(days=1))  # yesterday
    next_week = await add_session(db, aid, timedelta(days=7))
    for sid in (afternoon, next_week):
        await courses.book(db, resident_id=me, session_id=sid, now=NOW)
    await courses.book(db, resident_id=booked, session_id=afternoon, now=NOW)
    await courses.book(db, resident_id=waiting, session_id=afternoon, now=NOW, waitlist=True)

    mine = await courses.check_in(db, resident_id=me, activity_id=aid, now=NOW + timedelta(hours=4))
    assert mine.checkin.session_id == afternoon
    theirs = await courses.check_in(db, resident_id=waiting, activity_id=aid, now=NOW + timedelta(hours=4))
    assert theirs.checkin.session_id == afternoon
    async with db.session() as s:
        rows = (await s.scalars(select(Booking).order_by(Booking.id))).all()
    assert [(r.resident_id, r.session_id, r.status) for r in rows] == [
        (me, afternoon, "attended"),
        (me, next_week, "booked"),  # next week's place is still theirs
        (booked, afternoon, "booked"),  # not checked in (yet)
        (waiting, afternoon, "waitlisted"),  # came without a place: no place is counted as used
    ]

    # An activity whose only sessions are another day's, while another activity has one today.
    (other,) = await make_residents(db, 1, prefix="oOther")
    yesterday_only = await activity_of(
        db, await make_course(db, capacity=5, cost=0, starts_in=-timedelta(days=1))
    )
    assert (
        await courses.check_in(db, resident_id=other, activity_id=yesterday_only, now=NOW)
    ).checkin.session_id is None


async def test_booking_a_withdrawn_activity_and_what_a_booking_answers(db: Database):
    a, b, c = await make_residents(db, 3, points_each=30)
    sid = await make_course(db, capacity=1, cost=10)
    other = await make_course(db, capacity=5, cost=0)
    await set_activity(db, sid, title="书法入门")
    first = await courses.book(db, resident_id=a, session_id=sid, now=NOW, request_key="msg-a")
    assert (first.session.id, first.session.booked, first.activity.title, first.balance) == (
        sid,
        1,
        "书法入门",
        20,
    )
    again = await courses.book(db, resident_id=a, session_id=sid, now=NOW, request_key="msg-a")
    assert (again.session.id, again.activity.title, again.balance) == (sid, "书法入门", 20)
    queued = await courses.book(db, resident_id=b, session_id=sid, now=NOW, waitlist=True)
    assert (queued.session.id, queued.activity.title, queued.balance) == (sid, "书法入门", 30)
    assert queued.booking.points_paid == 0
    async with db.session() as s:
        untouched = await s.get(ActivitySession, other)
        assert untouched is not None and untouched.booked == 0  # another session's places are its own
    await set_activity(db, other, active=False)
    with pytest.raises(courses.BookingError) as withdrawn:
        await courses.book(db, resident_id=c, session_id=other, now=NOW)
    assert withdrawn.value.code == "not_found"


async def test_booking_again_after_cancelling_is_a_new_attempt_in_every_way(db: Database):
    a, b = await make_residents(db, 2, points_each=30)
    horizon = points.rules().remind_before
    sid = await make_course(db, capacity=1, cost=10, starts_in=horizon)
    first = await courses.book(db, resident_id=a, session_id=sid, now=NOW - timedelta(days=2))
    assert await courses.send_reminders(db, NOW) == 1
    await courses.cancel(db, resident_id=a, booking_id=first.booking.id, now=NOW)
    again = await courses.book(db, resident_id=a, session_id=sid, now=NOW, request_key="msg-2")
    assert again.booking.reminded_at is None
    assert await courses.send_reminders(db, NOW) == 1  # reminded of the new booking too
    # the same message redone (its process died after the booking) finds this booking
    redone = await courses.book(db, resident_id=a, session_id=sid, now=NOW, request_key="msg-2")
    assert (redone.booking.id, redone.balance) == (again.booking.id, 20)
    # a rebooking that lands on the waitlist has paid nothing and holds no place
    await courses.cancel(db, resident_id=a, booking_id=again.booking.id, now=NOW)
    await courses.book(db, resident_id=b, session_id=sid, now=NOW)
    waiting = await courses.book(db, resident_id=a, session_id=sid, now=NOW, waitlist=True)
    assert (waiting.booking.status, waiting.booking.points_paid, waiting.booking.booked_at) == (
        "waitlisted", 0, None,
    )  # fmt: skip
    assert [(m.status, m.points_paid) for m in await courses.bookings_of(db, a, NOW)] == [("waitlisted", 0)]


async def test_no_reminder_for_a_session_starting_right_now(db: Database):
    late, early = await make_residents(db, 2)
    starting = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=1))
    soon = await make_course(db, capacity=5, cost=0, starts_in=timedelta(hours=2))
    await courses.book(db, resident_id=late, session_id=starting, now=NOW)
    await courses.book(db, resident_id=early, session_id=soon, now=NOW)
    # the job did not run before: at the first session's start only the other one is still ahead
    assert await courses.send_reminders(db, NOW + timedelta(hours=1)) == 1
    assert [o for o, _, _ in await notices(db)] == [await openid_of(db, early)]


async def test_a_freed_place_goes_to_the_first_in_this_sessions_queue_only(db: Database):
    holder, late_joiner, early_joiner, elsewhere = await make_residents(db, 4, points_each=5)
    sid = await make_course(db, capacity=1, cost=1)
    other = await make_course(db, capacity=1, cost=0)
    roomy = await make_course(db, capacity=5, cost=0)  # other sessions with free places change nothing
    assert roomy
    taken = await courses.book(db, resident_id=holder, session_id=sid, now=NOW)
    await courses.book(db, resident_id=holder, session_id=other, now=NOW)
    await courses.book(
        db, resident_id=elsewhere, session_id=other, now=NOW - timedelta(hours=1), waitlist=True
    )
    late = await courses.book(db, resident_id=late_joiner, session_id=sid, now=NOW, waitlist=True)
    # joined the queue earlier (a staff booking on their behalf, say), though booked later
    early = await courses.book(
        db, resident_id=early_joiner, session_id=sid, now=NOW - timedelta(minutes=1), waitlist=True
    )
    out = await courses.cancel(db, resident_id=holder, booking_id=taken.booking.id, now=NOW)
    assert out.refunded == 1  # a one-point course is refunded too
    assert out.promoted == [early.booking.id]
    async with db.session() as s:
        statuses = {
            b.resident_id: b.status
            for b in (await s.scalars(select(Booking).where(Booking.session_id == sid)))
        }
        queued_elsewhere = await s.scalar(select(Booking.status).where(Booking.resident_id == elsewhere))
    assert statuses == {holder: "cancelled", early_joiner: "booked", late_joiner: "waitlisted"}
    assert queued_elsewhere == "waitlisted"  # the place was in another session
    assert late.booking.status == "waitlisted"


async def test_no_promotion_into_a_session_that_has_started_even_with_a_free_place(db: Database):
    a, b = await make_residents(db, 2)
    sid = await make_course(db, capacity=1, cost=0, starts_in=timedelta(hours=1))
    await courses.book(db, resident_id=a, session_id=sid, now=NOW)
    await courses.book(db, resident_id=b, session_id=sid, now=NOW, waitlist=True)
    await set_session(db, sid, capacity=2)  # staff add a place
    async with db.transaction() as s:
        assert await courses.promote(s, sid, NOW + timedelta(hours=1)) == []
    async with db.transaction() as s:
        assert await courses.promote(s, sid, NOW + timedelta(hours=1) - timedelta(seconds=1)) != []


async def test_housekeeping_fills_places_staff_added_and_closes_only_started_waitlists(db: Database):
    residents = await make_residents(db, 5)
    first_future = await make_course(db, capacity=0, cost=0, starts_in=timedelta(days=2))  # places to come
    second_future = await make_course(db, capacity=0, cost=0, starts_in=timedelta(days=3))
    still_full = await make_course(db, capacity=0, cost=0, starts_in=timedelta(days=4))
    started = await make_course(db, capacity=0, cost=0, starts_in=timedelta(hours=1))
    for rid, sid in zip(residents, (first_future, second_future, still_full, started, started), strict=True):
        await courses.book(db, resident_id=rid, session_id=sid, now=NOW, waitlist=True)
    await set_session(db, first_future, capacity=1)
    await set_session(db, second_future, capacity=1)
    # two places filled, two waitlists entries closed; the full session's queue stays
    assert await courses.housekeep_waitlists(db, NOW + timedelta(hours=1)) == 4
    async with db.session() as s:
        rows = (await s.scalars(select(Booking).order_by(Booking.id))).all()
    assert [r.status for r in rows] == ["booked", "booked", "waitlisted", "cancelled", "cancelled"]


async def test_payments_and_balances_of_bookings(db: Database):
    a, b, c = await make_residents(db, 3, points_each=30)
    free = await make_course(db, capacity=5, cost=0)
    paid = await make_course(db, capacity=1, cost=7)
    assert (await courses.book(db, resident_id=a, session_id=free, now=NOW)).balance == 30  # costs nothing
    booking_id = (await courses.book(db, resident_id=a, session_id=paid, now=NOW)).booking.id
    async with db.session() as s:
        (payment, *_) = await points.history(s, a)
    assert (payment.amount, payment.reason, payment.ref_type, payment.ref_id) == (
        -7,
        "course",
        "booking",
        str(booking_id),
    )
    # someone else's cancelled booking of the session does not stop a rebooking
    earlier = await courses.book(db, resident_id=b, session_id=free, now=NOW)
    await courses.cancel(db, resident_id=b, booking_id=earlier.booking.id, now=NOW)
    mine = await courses.book(db, resident_id=c, session_id=free, now=NOW)
    await courses.cancel(db, resident_id=c, booking_id=mine.booking.id, now=NOW)
    again = await courses.book(db, resident_id=c, session_id=free, now=NOW + timedelta(minutes=1))
    assert (again.booking.id, again.booking.status, again.booking.attempt) == (mine.booking.id, "booked", 2)


async def test_registering_a_work_unit_again_and_only_ones_own_check_ins_get_it(db: Database):
    me, neighbour = await make_residents(db, 2)
    aid = await activity_of(db, await make_course(db, capacity=5, cost=0))
    await courses.check_in(db, resident_id=me, activity_id=aid, now=NOW)
    await courses.check_in(db, resident_id=neighbour, activity_id=aid, now=NOW)
    assert (
        await courses.register_work_unit(db, resident_id=me, work_unit="税" * 120, now=NOW, name="张三") == 1
    )
    await courses.register_work_unit(db, resident_id=me, work_unit="区税务局", now=NOW, name="张三丰")
    async with db.session() as s:
        units = {c.resident_id: c.work_unit for c in await s.scalars(select(CheckIn))}
        (record,) = await courses.service_record(s, "区税务局")
    assert units == {me: "区税务局", neighbour: None}
    assert record.name == "张三丰"  # the name given last
    await courses.register_work_unit(db, resident_id=me, work_unit="税" * 120, now=NOW)
    async with db.session() as s:
        assert len(await s.scalar(select(CheckIn.work_unit).where(CheckIn.resident_id == me)) or "") == 100
