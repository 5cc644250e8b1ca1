"""Staff manage merchants, coupons, courses and points through the JSON API; adjustments are audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.appkeys import RUNTIME
from bot.clock import ManualClock
from bot.services import points
from bot.storage.models import Resident
from tests.api.conftest import Api, assert_error, check_schema, make_tokens, response_schema
from tests.points.helpers import NOW


async def start(service_factory: Any, database_url: str, fake_api: str) -> Api:
    svc = await service_factory(database_url, fake_api, app_kwargs={"clock": ManualClock(NOW)})
    return Api(svc, await make_tokens(database_url))


async def post(api: Api, path: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    status, data, _ = await api.call("POST", path, token, json=body)
    return status, data


async def patch(api: Api, path: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    status, data, _ = await api.call("PATCH", path, token, json=body)
    return status, data


async def test_merchants_coupons_and_accounts(service_factory, database_url, fake_api):
    api = await start(service_factory, database_url, fake_api)
    doc = await api.openapi()
    status, merchant = await post(
        api, "/merchants", {"name": "老王理发", "category": "理发", "address": "3号楼底商"}, "staff"
    )
    assert status == 201, merchant
    check_schema(doc, response_schema(doc, "/merchants", "post"), merchant)
    assert_error(*await post(api, "/merchants", {"name": "老王理发", "category": "理发"}, "staff"), 409)
    assert_error(*await post(api, "/merchants", {"name": "x", "category": "理发"}, "operator"), 403)

    body = {
        "merchant_id": merchant["id"],
        "title": "理发立减10元",
        "category": "理发",
        "price": 30,
        "stock": 10,
        "per_resident_limit": 1,
        "valid_from": "2026-11-01T00:00:00+08:00",
        "valid_until": "2027-01-01T00:00:00+08:00",
        "terms": "周一至周五可用",
    }
    status, coupon = await post(api, "/coupons", body, "staff")
    assert status == 201, coupon
    check_schema(doc, response_schema(doc, "/coupons", "post"), coupon)
    assert_error(
        *await post(api, "/coupons", {**body, "valid_until": "2026-10-01T00:00:00+08:00"}, "staff"), 400
    )
    assert_error(*await post(api, "/coupons", {**body, "valid_from": "tomorrow"}, "staff"), 400)
    assert_error(*await post(api, "/coupons", {**body, "stock": -1}, "staff"), 400)
    assert_error(*await post(api, "/coupons", {**body, "merchant_id": 999}, "staff"), 404)
    status, changed = await patch(
        api, f"/coupons/{coupon['id']}", {"stock": 25, "active": False}, "supervisor"
    )
    assert status == 200 and changed["stock"] == 25 and changed["active"] is False
    listed = await api.ok("/coupons", "operator", merchant_id=merchant["id"])
    assert [c["id"] for c in listed["items"]] == [coupon["id"]]
    assert (await api.ok(f"/coupons/{coupon['id']}/issued", "staff"))["items"] == []

    assert_error(*await post(api, f"/merchants/{merchant['id']}/accounts", {"name": "老王"}, "staff"), 403)
    status, account = await post(api, f"/merchants/{merchant['id']}/accounts", {"name": "老王"}, "supervisor")
    assert status == 201 and account["token"].startswith("csb_")
    me = await api.ok("/me", account["token"])
    assert me["role"] == "merchant"
    # a merchant account may verify, but not manage
    assert_error(*await post(api, "/merchants", {"name": "y", "category": "理发"}, account["token"]), 403)
    status, verified = await post(api, "/mall/verify", {"code": "ABCDEFGHJK"}, account["token"])
    assert status == 200 and verified["status"] == "not_found"
    assert_error(*await post(api, "/mall/verify", {"code": "ABCDEFGHJK"}, "merchant"), 403, "not_a_merchant")


async def test_courses_sessions_and_bookings(service_factory, database_url, fake_api):
    api = await start(service_factory, database_url, fake_api)
    status, activity = await post(
        api,
        "/activities",
        {
            "title": "中医养生",
            "category": "中医",
            "organiser": "李医生",
            "place": "社区卫生站",
            "audience": "60岁以上",
            "points_cost": 10,
            "volunteer_hours": 0,
        },
        "staff",
    )
    assert status == 201, activity
    start_at = (NOW + timedelta(days=2)).isoformat()
    end_at = (NOW + timedelta(days=2, hours=2)).isoformat()
    status, sess = await post(
        api,
        f"/activities/{activity['id']}/sessions",
        {"starts_at": start_at, "ends_at": end_at, "capacity": 2},
        "staff",
    )
    assert status == 201, sess
    assert_error(
        *await post(
            api,
            f"/activities/{activity['id']}/sessions",
            {"starts_at": end_at, "ends_at": start_at, "capacity": 2},
            "staff",
        ),
        400,
    )
    # book two residents directly through the service, then check the API's view and capacity rules
    from bot.services import courses

    db = api.svc.runner.app[RUNTIME].db
    async with db.transaction() as s:
        rows = [Resident(openid=f"oStaffApi{i:017d}", created_at=NOW) for i in range(3)]
        s.add_all(rows)
        await s.flush()
        ids = [r.id for r in rows]
        for rid in ids:
            await points.credit(
                s,
                resident_id=rid,
                amount=20,
                reason="adjust",
                ref_type="t",
                ref_id="t",
                idempotency_key=f"s{rid}",
                now=NOW,
            )
    for rid in ids[:2]:
        await courses.book(db, resident_id=rid, session_id=sess["id"], now=NOW)
    waiting = await courses.book(db, resident_id=ids[2], session_id=sess["id"], now=NOW, waitlist=True)
    assert waiting.booking.status == "waitlisted"
    bookings = await api.ok(f"/sessions/{sess['id']}/bookings", "operator")
    assert [b["status"] for b in bookings["items"]] == ["booked", "booked", "waitlisted"]

    assert_error(*await patch(api, f"/sessions/{sess['id']}", {"capacity": 1}, "staff"), 409, "capacity")
    status, bigger = await patch(api, f"/sessions/{sess['id']}", {"capacity": 3}, "staff")
    assert status == 200 and bigger["booked"] == 3  # the waitlist got the new place at once
    first = bookings["items"][0]["id"]
    status, cancelled = await post(api, f"/bookings/{first}/cancel", {}, "staff")
    assert status == 200 and cancelled["status"] == "cancelled"
    assert_error(*await post(api, f"/bookings/{first}/cancel", {}, "staff"), 409)
    assert_error(*await post(api, "/bookings/999999/cancel", {}, "staff"), 404)
    listed = await api.ok("/activities", "operator", category="中医")
    assert [a["title"] for a in listed["items"]] == ["中医养生"]


async def test_points_adjustment_is_audited(service_factory, database_url, fake_api):
    api = await start(service_factory, database_url, fake_api)
    db = api.svc.runner.app[RUNTIME].db
    async with db.transaction() as s:
        r = Resident(openid="oAdjust000000000000000001", created_at=NOW)
        s.add(r)
        await s.flush()
        rid = r.id
    doc = await api.openapi()
    status, entry = await post(
        api,
        "/points/adjustments",
        {"resident_id": rid, "amount": 40, "note": "志愿活动补录", "request_key": "k1"},
        "staff",
    )
    assert status == 201, entry
    check_schema(doc, response_schema(doc, "/points/adjustments", "post"), entry)
    assert (
        entry["actor"].startswith("test staff")
        and entry["note"] == "志愿活动补录"
        and entry["balance_after"] == 40
    )
    # the same request again changes nothing
    status, again = await post(
        api,
        "/points/adjustments",
        {"resident_id": rid, "amount": 40, "note": "志愿活动补录", "request_key": "k1"},
        "staff",
    )
    assert status == 201 and again["id"] == entry["id"]
    status, minus = await post(
        api,
        "/points/adjustments",
        {"resident_id": rid, "amount": -15, "note": "重复发放，扣回"},
        "supervisor",
    )
    assert status == 201 and minus["amount"] == -15 and minus["actor"].startswith("test supervisor")
    message = assert_error(
        *await post(api, "/points/adjustments", {"resident_id": rid, "amount": -26, "note": "x"}, "staff"),
        409,
    )
    assert "25" in message
    assert_error(
        *await post(api, "/points/adjustments", {"resident_id": rid, "amount": 0, "note": "x"}, "staff"), 400
    )
    assert_error(
        *await post(api, "/points/adjustments", {"resident_id": rid, "amount": 5, "note": "   "}, "staff"),
        400,
    )
    assert_error(*await post(api, "/points/adjustments", {"resident_id": rid, "amount": 5}, "staff"), 400)
    assert_error(
        *await post(api, "/points/adjustments", {"resident_id": rid, "amount": 5, "note": "x"}, "operator"),
        403,
    )
    assert_error(
        *await post(api, "/points/adjustments", {"resident_id": 99999, "amount": 5, "note": "x"}, "staff"),
        404,
    )

    account = await api.ok(f"/points/residents/{rid}", "operator")
    check_schema(doc, response_schema(doc, "/points/residents/{id}"), account)
    assert account["balance"] == 25
    assert [(e["amount"], e["reason"]) for e in account["entries"]] == [(-15, "adjust"), (40, "adjust")]
    async with db.session() as s:
        assert await points.ledger_mismatches(s) == []
