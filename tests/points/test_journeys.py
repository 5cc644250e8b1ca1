"""Residents' journeys through the WeChat endpoint, merchants through HTTP, reminders through the
scheduler's job table with a manual clock."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.api.tokens import create_token
from bot.appkeys import RUNTIME
from bot.clock import ManualClock
from bot.services import jobs, points
from bot.storage.db import Database
from bot.storage.models import ActivitySession, Booking, IssuedCoupon, Resident
from tests.conftest import Service
from tests.points.helpers import NOW, make_coupon, make_course

CODE = re.compile(r"券码[：:]\s*([A-Z2-9]{10})")


class Chat:
    def __init__(self, svc: Service, openid: str) -> None:
        self.svc, self.openid = svc, openid
        self.sender = svc.sender("safe")

    async def say(self, text: str) -> str:
        reply = await self.svc.send(self.sender.text(self.openid, text), "safe")
        assert reply.status == 200
        return str(reply.content or "")

    async def scan(self, key: str, event: str = "SCAN") -> str:
        reply = await self.svc.send(self.sender.event(self.openid, event, key), "safe")
        assert reply.status == 200
        return str(reply.content or "")


async def start(
    service_factory: Any, database_url: str, fake_api: str
) -> tuple[Service, ManualClock, Database]:
    clock = ManualClock(NOW)
    svc: Service = await service_factory(database_url, fake_api, app_kwargs={"clock": clock})
    return svc, clock, svc.runner.app[RUNTIME].db


async def pushed(svc: Service, openid: str, needle: str) -> list[str]:
    """Customer-service texts the fake WeChat API received for ``openid`` once one contains ``needle``."""
    for _ in range(200):
        texts = [
            m["payload"]["text"]["content"] for m in await svc.fake_sent(openid) if "text" in m["payload"]
        ]
        if any(needle in t for t in texts):
            return texts
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message containing {needle!r} was sent to {openid}: {texts}")


async def resident_id(db: Database, openid: str) -> int:
    async with db.session() as session:
        rid = await session.scalar(select(Resident.id).where(Resident.openid == openid))
    assert rid is not None
    return int(rid)


async def api_call(svc: Service, method: str, path: str, token: str, **kwargs: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with svc.http.request(method, svc.base + "/api/v1" + path, headers=headers, **kwargs) as resp:
        return resp.status, await resp.json()


async def test_check_in_browse_redeem_and_merchant_verifies(service_factory, database_url, fake_api):
    svc, clock, db = await start(service_factory, database_url, fake_api)
    coupon_id = await make_coupon(db, stock=5, price=15, title="理发立减10元")
    session_id = await make_course(db, capacity=20, cost=0, starts_in=timedelta(hours=1))
    async with db.session() as s:
        sess = await s.get(ActivitySession, session_id)
        assert sess is not None
        activity_id = sess.activity_id
    a = Chat(svc, "oJourneyAlpha000000000001")

    # Earn: scanning the activity's QR code checks in and credits once (a new follower, too).
    first = await a.scan(f"qrscene_activity:{activity_id}", "subscribe")
    assert "签到成功" in first and "花艺入门" in first
    again = await a.scan(f"activity:{activity_id}")
    assert "已经" in again and "签过到" in again
    rid = await resident_id(db, a.openid)
    expected = points.rules().earn["activity"] + points.rules().earn["registration"]
    async with db.session() as s:
        assert await points.balance_of(s, rid) == expected
    # 在职党员: register the work unit as a follow-up
    assert "区税务局" in await a.say("单位 区税务局")

    balance = await a.say("我的积分")
    assert f"{expected} 积分" in balance and "活动签到" in balance

    # Browse, pick by number, confirm.
    listing = await a.say("积分商城")
    assert "1. 理发立减10元" in listing and "15积分" in listing
    offer = await a.say("1")
    assert "确认" in offer and "理发立减10元" in offer
    done = await a.say("确认")
    match = CODE.search(done)
    assert match, done
    code = match[1]
    async with db.session() as s:
        assert await points.balance_of(s, rid) == expected - 15
        issued = await s.scalar(select(IssuedCoupon).where(IssuedCoupon.code == code))
        assert issued is not None and issued.status == "issued" and issued.coupon_id == coupon_id

    # By fuzzy name: "理发券" finds it and asks for confirmation; "算了" spends nothing.
    offer = await a.say("理发券")
    assert "理发立减10元" in offer and "确认" in offer
    assert "不换了" in await a.say("算了")
    assert "理发立减10元" in await a.say("我的券")

    # The merchant verifies through HTTP: once; a second attempt says when; another merchant cannot.
    admin, _ = await create_token(db, "admin", "admin", NOW)
    async with db.session() as s:
        from bot.storage.models import Coupon

        coupon = await s.get(Coupon, coupon_id)
        assert coupon is not None
        merchant_id = coupon.merchant_id
    status, account = await api_call(
        svc, "POST", f"/merchants/{merchant_id}/accounts", admin, json={"name": "理发店前台"}
    )
    assert status == 201, account
    other_id = (
        await api_call(svc, "POST", "/merchants", admin, json={"name": "别家超市", "category": "超市"})
    )[1]["id"]
    other = (
        await api_call(svc, "POST", f"/merchants/{other_id}/accounts", admin, json={"name": "超市收银"})
    )[1]

    status, page = 0, ""
    async with svc.http.get(svc.base + "/merchant") as resp:
        status, page = resp.status, await resp.text()
    assert status == 200 and "核销" in page and "viewport" in page

    status, body = await api_call(svc, "POST", "/mall/verify", other["token"], json={"code": code})
    assert status == 200 and body["status"] == "not_found"  # another merchant's code: as if unknown
    clock.advance(timedelta(hours=2))
    status, body = await api_call(svc, "POST", "/mall/verify", account["token"], json={"code": code.lower()})
    assert status == 200 and body["status"] == "used", body
    assert body["message"].endswith(f"（券码 {code.upper()}）"), body  # the field is cleared: the result names it
    status, body = await api_call(svc, "POST", "/mall/verify", account["token"], json={"code": code})
    assert body["status"] == "already_used" and body["used_at"] and "核销过" in body["message"]
    status, body = await api_call(svc, "POST", "/mall/verify", account["token"], json={"code": "ZZZZZZZZZZ"})
    assert body["status"] == "not_found"
    status, body = await api_call(svc, "POST", "/mall/verify", admin, json={"code": code})
    assert status == 403  # admin is no merchant account
    async with db.session() as s:
        issued = await s.scalar(select(IssuedCoupon).where(IssuedCoupon.code == code))
        assert issued is not None and issued.status == "used" and issued.merchant_id == merchant_id
        assert issued.used_by == "理发店前台"
    assert "使用" in await a.say("我的券")

    # The unit's 双报到 record.
    status, record = await api_call(svc, "GET", "/points/service-records", admin, params={"unit": "区税务局"})
    assert status == 200 and [i["resident_id"] for i in record["items"]] == [rid]


async def test_book_reminder_cancel_refund(service_factory, database_url, fake_api):
    svc, clock, db = await start(service_factory, database_url, fake_api)
    session_id = await make_course(db, capacity=5, cost=20, starts_in=timedelta(days=3))
    b = Chat(svc, "oJourneyBravo000000000002")
    await b.say("你好")
    rid = await resident_id(db, b.openid)
    async with db.transaction() as s:
        await points.credit(
            s,
            resident_id=rid,
            amount=30,  # + the 20 welcome points given before the first paid booking: 50
            reason="adjust",
            ref_type="test",
            ref_id="1",
            idempotency_key="seed-b",
            now=NOW,
        )

    listing = await b.say("有什么课")
    assert "1." in listing and "花艺入门" in listing and "20积分" in listing
    detail = await b.say("1")
    assert "王老师" in detail and "社区活动室" in detail and "预约" in detail
    booked = await b.say("预约")
    assert "预约成功" in booked and "还剩30积分" in booked
    await b.say("有什么课")
    await b.say("1")
    assert "不用重复" in await b.say("预约")  # a second booking of the same session
    mine = await b.say("我的预约")
    assert "花艺入门" in mine and "已预约" in mine

    # The day before: the scheduler's job reminds once.
    async with db.session() as s:
        sess = await s.get(ActivitySession, session_id)
        assert sess is not None
        starts = sess.starts_at
    clock.set(starts - timedelta(hours=24))
    rt = svc.runner.app[RUNTIME]
    job = {name: fn for name, _, fn in jobs.JOBS}["courses.remind"]
    # (the app's own scheduler may get there first: either way the reminder goes out once)
    assert await job(rt, clock.now()) <= 1
    assert await job(rt, clock.now()) == 0
    texts = await pushed(svc, b.openid, "温馨提醒")
    assert sum("温馨提醒" in t for t in texts) == 1

    # Cancel before the cut-off: points come back.
    confirm = await b.say("取消预约")
    assert "退回" in confirm
    done = await b.say("确认取消")
    assert "已取消" in done and "退回20积分" in done and "50积分" in done
    async with db.session() as s:
        assert await points.balance_of(s, rid) == 50
        sess = await s.get(ActivitySession, session_id)
        assert sess is not None and sess.booked == 0
    assert "没有预约" in await b.say("我的预约")

    # Booking again and cancelling after the cut-off keeps the points.
    await b.say("有什么课")
    await b.say("1")
    assert "预约成功" in await b.say("预约")
    clock.set(starts - timedelta(hours=2))
    assert "不退" in await b.say("取消预约")
    assert "已取消" in await b.say("确认取消")
    async with db.session() as s:
        assert await points.balance_of(s, rid) == 30
        assert await points.ledger_mismatches(s) == []


async def test_full_course_waitlist_and_promotion(service_factory, database_url, fake_api):
    svc, _clock, db = await start(service_factory, database_url, fake_api)
    session_id = await make_course(db, capacity=1, cost=0, starts_in=timedelta(days=2))
    c, d = Chat(svc, "oJourneyCharlie0000000003"), Chat(svc, "oJourneyDelta00000000004")

    await c.say("有什么课")
    await c.say("1")
    assert "预约成功" in await c.say("预约")

    listing = await d.say("有什么课")
    assert "已满可候补" in listing
    await d.say("1")
    ask = await d.say("预约")
    assert "满" in ask and "候补" in ask
    queued = await d.say("候补")
    assert "第1位" in queued
    assert "候补第1位" in await d.say("我的预约")

    assert "确定取消" in await c.say("取消预约")
    assert "已取消" in await c.say("确认取消")
    texts = await pushed(svc, d.openid, "有空位")
    assert any("花艺入门" in t for t in texts)
    assert "已预约" in await d.say("我的预约")
    async with db.session() as s:
        rows = (
            await s.scalars(select(Booking).where(Booking.session_id == session_id).order_by(Booking.id))
        ).all()
        assert [r.status for r in rows] == ["cancelled", "booked"]
        sess = await s.get(ActivitySession, session_id)
        assert sess is not None and sess.booked == 1


async def test_double_tap_confirm_through_wechat_gives_one_coupon(service_factory, database_url, fake_api):
    svc, _clock, db = await start(service_factory, database_url, fake_api)
    coupon_id = await make_coupon(db, stock=5, price=10, limit=3, title="超市满50减5元")
    e = Chat(svc, "oJourneyEcho0000000000005")
    await e.say("你好")
    rid = await resident_id(db, e.openid)
    async with db.transaction() as s:
        await points.credit(
            s, resident_id=rid, amount=100, reason="adjust", ref_type="test", ref_id="1", idempotency_key="seed-e", now=NOW
        )
    offer = await e.say("超市券")
    assert "超市满50减5元" in offer and "确认" in offer
    replies = await asyncio.gather(e.say("确认"), e.say("确认"), e.say("确认"))
    assert sum("兑换成功" in r for r in replies) == 1, replies
    async with db.session() as s:
        issued = (await s.scalars(select(IssuedCoupon).where(IssuedCoupon.coupon_id == coupon_id))).all()
        assert len(issued) == 1
        assert await points.balance_of(s, rid) == 90 + 20  # + the welcome points the mall gives, as 查积分 does
