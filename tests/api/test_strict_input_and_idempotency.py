"""Issue 12, defects 6 and 7 through HTTP on both databases: integers are JSON integers (1.0 is a 400
naming the field, never a 500 or a stored 5.0), and a points adjustment's request_key is an
idempotency key: the same request again, also ten at once, answers the one stored entry; the key
with another body is a 409 naming request_key."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.appkeys import RUNTIME
from bot.clock import ManualClock
from bot.services import points
from bot.storage.models import Merchant, Resident
from tests.api.conftest import Api, assert_error, make_tokens
from tests.points.helpers import NOW

ADJUST = "/points/adjustments"


async def start(service_factory: Any, database_url: str, fake_api: str) -> tuple[Api, list[int], int]:
    svc = await service_factory(database_url, fake_api, app_kwargs={"clock": ManualClock(NOW)})
    api = Api(svc, await make_tokens(database_url))
    db = svc.runner.app[RUNTIME].db
    async with db.transaction() as s:
        rows = [Resident(openid=f"oStrict{i:018d}", created_at=NOW) for i in range(2)]
        merchant = Merchant(name="严格输入理发店", category="理发", created_at=NOW)
        s.add_all([*rows, merchant])
        await s.flush()
        ids, merchant_id = [r.id for r in rows], merchant.id
    return api, ids, merchant_id


async def post(api: Api, path: str, body: Any, token: str | None = "staff") -> tuple[int, Any, dict[str, str]]:
    return await api.call("POST", path, token, json=body)


async def balance(api: Api, rid: int) -> int:
    return int((await api.ok(f"/points/residents/{rid}", "operator"))["balance"])


async def test_float_integers_are_a_400_naming_the_field(service_factory, database_url, fake_api):
    api, (rid, _), merchant_id = await start(service_factory, database_url, fake_api)
    for amount in (1.0, 5.0, -3.0, 1.5, 1e20):
        status, body, _ = await post(api, ADJUST, {"resident_id": rid, "amount": amount, "note": "补录"})
        message = assert_error(status, body, 400, "invalid_body")
        assert "amount" in message, body
    status, body, _ = await post(api, ADJUST, {"resident_id": float(rid), "amount": 5, "note": "补录"})
    assert "resident_id" in assert_error(status, body, 400, "invalid_body")
    assert await balance(api, rid) == 0

    # Every route's integers are strict, not only this one's: a coupon priced 5.0 is refused too.
    coupon = {
        "merchant_id": merchant_id, "title": "立减", "category": "理发", "price": 5.0, "stock": 3,
        "valid_from": "2026-11-01T00:00:00+08:00", "valid_until": "2027-01-01T00:00:00+08:00",
    }
    assert "price" in assert_error(*(await post(api, "/coupons", coupon))[:2], 400)
    assert "stock" in assert_error(*(await post(api, "/coupons", {**coupon, "price": 5, "stock": 3.0}))[:2], 400)
    status, created, _ = await post(api, "/coupons", {**coupon, "price": 5})
    assert status == 201 and created["price"] == 5 and isinstance(created["price"], int)
    listed = await api.ok("/coupons", "operator")
    assert [type(c["price"]) for c in listed["items"]] == [int]  # read back as 5, never 5.0

    # A valid integer works, and is echoed as an integer.
    status, entry, _ = await post(api, ADJUST, {"resident_id": rid, "amount": 5, "note": "补录"})
    assert status == 201 and entry["amount"] == 5 and type(entry["amount"]) is int


async def test_repeat_with_the_same_body_returns_the_stored_entry(service_factory, database_url, fake_api):
    api, (rid, _), _ = await start(service_factory, database_url, fake_api)
    body = {"resident_id": rid, "amount": 40, "note": "志愿活动补录", "request_key": "k-same"}
    status, first, headers = await post(api, ADJUST, body)
    assert status == 201 and "Idempotent-Replayed" not in headers
    status, again, headers = await post(api, ADJUST, {**body, "note": " 志愿活动补录 "})
    assert status == 201 and again == first and headers.get("Idempotent-Replayed") == "true"
    assert await balance(api, rid) == 40
    # The key belongs to the token that used it: another caller's same key is its own adjustment.
    status, other, _ = await post(api, ADJUST, body, "supervisor")
    assert status == 201 and other["id"] != first["id"]
    assert await balance(api, rid) == 80


async def test_reuse_with_another_body_is_a_409_naming_request_key(service_factory, database_url, fake_api):
    api, (rid, other_rid), _ = await start(service_factory, database_url, fake_api)
    body = {"resident_id": rid, "amount": 40, "note": "志愿活动补录", "request_key": "k-reuse"}
    status, first, _ = await post(api, ADJUST, body)
    assert status == 201
    for changed in ({"resident_id": other_rid}, {"amount": 41}, {"amount": -40}, {"note": "另一件事"}):
        status, data, _ = await post(api, ADJUST, {**body, **changed})
        message = assert_error(status, data, 409, "request_key_reused")
        assert "request_key" in message and data["error"]["details"]["field"] == "request_key"
        assert data["error"]["details"]["entry_id"] == first["id"]
    assert await balance(api, rid) == 40 and await balance(api, other_rid) == 0
    # a debit's key too: a replayed debit is not taken twice, a changed one is refused
    debit = {"resident_id": rid, "amount": -15, "note": "扣回", "request_key": "k-debit"}
    assert (await post(api, ADJUST, debit))[0] == 201
    status, replay, _ = await post(api, ADJUST, debit)
    assert status == 201 and replay["amount"] == -15
    assert_error(*(await post(api, ADJUST, {**debit, "amount": -16}))[:2], 409, "request_key_reused")
    assert await balance(api, rid) == 25


async def test_concurrent_repeats_all_get_the_stored_entry(service_factory, database_url, fake_api):
    """Ten identical requests at once (credit and debit): one entry, ten 201s with it, no 500."""
    api, (rid, _), _ = await start(service_factory, database_url, fake_api)
    assert (await post(api, ADJUST, {"resident_id": rid, "amount": 100, "note": "初始"}))[0] == 201
    for amount, key in ((-30, "k-burst-debit"), (50, "k-burst-credit")):
        body = {"resident_id": rid, "amount": amount, "note": "并发补录", "request_key": key}
        answers = await asyncio.gather(*(post(api, ADJUST, body) for _ in range(10)))
        assert [a[0] for a in answers] == [201] * 10, [a[:2] for a in answers if a[0] != 201]
        assert len({a[1]["id"] for a in answers}) == 1
        assert sum(1 for a in answers if a[2].get("Idempotent-Replayed") != "true") == 1
    assert await balance(api, rid) == 120
    db = api.svc.runner.app[RUNTIME].db
    async with db.session() as s:
        assert await points.ledger_mismatches(s) == []


async def test_concurrent_reuse_with_other_bodies(service_factory, database_url, fake_api):
    """One key, ten different bodies at once (two residents, other amounts): exactly one is applied,
    the others are 409s naming request_key (never a 500), and the balances show one adjustment."""
    api, (rid, other_rid), _ = await start(service_factory, database_url, fake_api)
    bodies = [
        {"resident_id": (rid, other_rid)[i % 2], "amount": 10 + i, "note": "并发", "request_key": "k-mixed"}
        for i in range(10)
    ]
    answers = await asyncio.gather(*(post(api, ADJUST, b) for b in bodies))
    statuses = sorted(a[0] for a in answers)
    assert statuses == [201] + [409] * 9, [a[:2] for a in answers]
    for status, data, _ in answers:
        if status == 409:
            assert data["error"]["code"] == "request_key_reused"
    winner = next(a[1] for a in answers if a[0] == 201)
    assert await balance(api, winner["resident_id"]) == winner["amount"]
    assert await balance(api, ({rid, other_rid} - {winner["resident_id"]}).pop()) == 0


async def test_a_balance_past_the_column_is_a_409_not_a_500(service_factory, database_url, fake_api):
    from sqlalchemy import update

    from bot.storage.models import PointsBalance

    api, (rid, _), _ = await start(service_factory, database_url, fake_api)
    assert (await post(api, ADJUST, {"resident_id": rid, "amount": 10, "note": "初始"}))[0] == 201
    db = api.svc.runner.app[RUNTIME].db
    async with db.transaction() as s:
        await s.execute(update(PointsBalance).where(PointsBalance.resident_id == rid).values(balance=2**31 - 50))
    status, data, _ = await post(api, ADJUST, {"resident_id": rid, "amount": 100, "note": "溢出"})
    assert_error(status, data, 409, "balance_limit")
    status, entry, _ = await post(api, ADJUST, {"resident_id": rid, "amount": 49, "note": "到顶"})
    assert status == 201 and entry["balance_after"] == 2**31 - 1


def test_a_route_cannot_declare_an_integer_without_bounds():
    """An integer input without minimum and maximum could overflow a column (a 500 on PostgreSQL):
    the registry refuses the declaration, so every route's integers are bounded."""
    import pytest

    from bot.api.registry import Registry, obj

    reg = Registry(title="t")
    for kwargs in (
        {"body": obj({"n": {"type": "integer", "minimum": 0}})},
        {"body": obj({"xs": {"type": "array", "items": {"type": ["integer", "null"], "maximum": 5}}})},
        {"query": obj({"limit": {"type": "integer"}})},
    ):
        with pytest.raises(ValueError, match="minimum and a maximum"):
            reg.route("POST" if "body" in kwargs else "GET", "/x", roles={"staff"}, summary="x", **kwargs)
    reg.route("POST", "/ok", roles={"staff"}, summary="x",
              body=obj({"n": {"type": "integer", "minimum": 0, "maximum": 9}}))
