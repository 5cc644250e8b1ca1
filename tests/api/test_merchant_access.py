"""Issue 12, defect 9 through HTTP and the CLI: who may mint merchant tokens, what a merchant learns
about another merchant's codes (nothing), the limit on failed verifications (shared by every
process: database or Redis), and `token create --role merchant` that makes a working token."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.appkeys import RUNTIME
from bot.clock import ManualClock
from bot.services import coupons
from bot.storage.db import Database
from tests.api.conftest import Api, assert_error, make_tokens
from tests.api.test_token_cli import bot_cli
from tests.points.helpers import NOW, make_coupon, make_residents

VERIFY = "/mall/verify"
UNKNOWN = [f"ZZZZ{i:06d}" for i in range(40)]  # never issued: codes have no 0 or 1


async def start(service_factory: Any, database_url: str, fake_api: str, clock: ManualClock | None = None,
                **overrides: Any) -> Api:
    svc = await service_factory(database_url, fake_api, app_kwargs={"clock": clock or ManualClock(NOW)}, **overrides)
    return Api(svc, await make_tokens(database_url))


async def post(api: Api, path: str, body: Any, token: str | None = None) -> tuple[int, Any, dict[str, str]]:
    return await api.call("POST", path, token, json=body)


async def two_merchants_with_a_code(api: Api) -> tuple[int, int, str, str, str]:
    """Merchants A and B (ids), an account token of each, and a code of B's coupon issued to a resident."""
    db: Database = api.svc.runner.app[RUNTIME].db
    coupon_b = await make_coupon(db, stock=5, price=10, title="B店立减")
    coupon_a = await make_coupon(db, stock=5, price=10, title="A店立减")
    (rid,) = await make_residents(db, 1, points_each=100)
    issued = await coupons.redeem(db, resident_id=rid, coupon_id=coupon_b, request_key="r1", now=NOW)
    merchant_b = issued.merchant.id
    async with db.session() as s:
        from bot.storage.models import Coupon

        merchant_a = (await s.get(Coupon, coupon_a)).merchant_id  # type: ignore[union-attr]
    tokens = []
    for merchant in (merchant_a, merchant_b):
        status, account, _ = await post(api, f"/merchants/{merchant}/accounts", {"name": f"店员{merchant}"}, "supervisor")
        assert status == 201, account
        tokens.append(account["token"])
    return merchant_a, merchant_b, tokens[0], tokens[1], issued.issued.code


async def test_only_admin_or_supervisor_may_create_merchant_accounts(service_factory, database_url, fake_api):
    api = await start(service_factory, database_url, fake_api)
    status, merchant, _ = await post(api, "/merchants", {"name": "老王理发", "category": "理发"}, "staff")
    assert status == 201
    path = f"/merchants/{merchant['id']}/accounts"
    for role in ("staff", "operator", "merchant"):
        assert_error(*(await post(api, path, {"name": "老王"}, role))[:2], 403)
    for role in ("supervisor", "admin"):
        status, account, _ = await post(api, path, {"name": f"老王-{role}"}, role)
        assert status == 201 and account["merchant_id"] == merchant["id"]
        status, verified, _ = await post(api, VERIFY, {"code": "ABCDEFGHJK"}, account["token"])
        assert status == 200 and verified["status"] == "not_found"
    doc = await api.openapi()
    assert doc["paths"]["/merchants/{id}/accounts"]["post"]["x-roles"] == ["admin", "supervisor"]


async def test_another_merchants_code_answers_exactly_as_an_unknown_code(service_factory, database_url, fake_api):
    api = await start(service_factory, database_url, fake_api)
    _, _, token_a, token_b, code = await two_merchants_with_a_code(api)
    unknown = await post(api, VERIFY, {"code": "ABCDEFGHJK"}, token_a)
    foreign = await post(api, VERIFY, {"code": code}, token_a)
    assert foreign[0] == unknown[0] == 200
    assert foreign[1] == unknown[1] == {"status": "not_found", "message": "本店没有这个券码：请核对券码，并看券上写的是不是本店。"}
    # ... also once B has used it (no "already used" leaks either), and the code is still B's to use
    status, used, _ = await post(api, VERIFY, {"code": code}, token_b)
    assert status == 200 and used["status"] == "used"
    assert (await post(api, VERIFY, {"code": code}, token_a))[:2] == unknown[:2]
    doc = await api.openapi()
    enum = doc["components"]["schemas"]["Verification"]["properties"]["status"]["enum"]
    assert "other_merchant" not in enum


async def test_failed_verifications_are_limited_per_account(service_factory, database_url, fake_api):
    clock = ManualClock(NOW)
    api = await start(service_factory, database_url, fake_api, clock)
    _, _, token_a, token_b, code = await two_merchants_with_a_code(api)
    for i in range(10):
        status, data, _ = await post(api, VERIFY, {"code": UNKNOWN[i]}, token_a)
        assert status == 200 and data["status"] == "not_found", (i, data)
    clock.advance(timedelta(minutes=3))
    status, data, headers = await post(api, VERIFY, {"code": UNKNOWN[10]}, token_a)
    assert_error(status, data, 429, "too_many_failures")
    assert headers["Retry-After"] == str(7 * 60)
    assert data["error"]["details"]["retry_after"] == 7 * 60
    assert data["error"]["details"]["retry_at"].startswith((NOW + timedelta(minutes=10)).isoformat()[:16])
    assert "之后再试" in data["error"]["message"] and "10:10" in data["error"]["message"]  # Beijing time
    # blocked for every code, a valid one too, until the oldest failure is 10 minutes old ...
    assert (await post(api, VERIFY, {"code": code}, token_a))[0] == 429
    # ... while another merchant's account keeps its own count
    status, data, _ = await post(api, VERIFY, {"code": code}, token_b)
    assert status == 200 and data["status"] == "used"
    clock.advance(timedelta(minutes=6, seconds=59))
    assert (await post(api, VERIFY, {"code": UNKNOWN[11]}, token_a))[0] == 429
    clock.advance(timedelta(seconds=1))
    status, data, _ = await post(api, VERIFY, {"code": UNKNOWN[12]}, token_a)
    assert status == 200 and data["status"] == "not_found"


async def test_successful_verifications_do_not_count(service_factory, database_url, fake_api):
    api = await start(service_factory, database_url, fake_api)
    _, _, token_a, token_b, code = await two_merchants_with_a_code(api)
    for i in range(9):
        assert (await post(api, VERIFY, {"code": UNKNOWN[i]}, token_b))[1]["status"] == "not_found"
    status, data, _ = await post(api, VERIFY, {"code": code}, token_b)
    assert status == 200 and data["status"] == "used"
    status, data, _ = await post(api, VERIFY, {"code": code}, token_b)
    assert status == 200 and data["status"] == "already_used"
    assert (await post(api, VERIFY, {"code": UNKNOWN[9]}, token_b))[1]["status"] == "not_found"  # the 10th
    assert (await post(api, VERIFY, {"code": UNKNOWN[10]}, token_b))[0] == 429
    # another account of another merchant keeps its own count
    assert (await post(api, VERIFY, {"code": UNKNOWN[0]}, token_a))[1]["status"] == "not_found"


async def test_concurrent_guesses_cannot_pass_the_limit(service_factory, database_url, fake_api):
    api = await start(service_factory, database_url, fake_api)
    _, _, token_a, _, _ = await two_merchants_with_a_code(api)
    answers = await asyncio.gather(*(post(api, VERIFY, {"code": c}, token_a) for c in UNKNOWN[:20]))
    assert sorted(a[0] for a in answers) == [200] * 10 + [429] * 10, [a[:2] for a in answers]


async def _across_two_servers(service_factory: Any, database_url: str, fake_api: str, **overrides: Any) -> Api:
    """Two servers on one database (and the same Redis, if given): failures on either count."""
    clock = ManualClock(NOW)
    first = await start(service_factory, database_url, fake_api, clock, **overrides)
    _, _, token_a, _, _ = await two_merchants_with_a_code(first)
    second_svc = await service_factory(database_url, fake_api, app_kwargs={"clock": clock}, **overrides)
    second = Api(second_svc, first.tokens)
    for i in range(10):
        api = (first, second)[i % 2]
        assert (await post(api, VERIFY, {"code": UNKNOWN[i]}, token_a))[1]["status"] == "not_found"
    for api in (first, second):
        assert (await post(api, VERIFY, {"code": UNKNOWN[20]}, token_a))[0] == 429
    return first


async def stored_limits(api: Api) -> int:
    from sqlalchemy import func, select

    from bot.storage.models import RateLimit

    db: Database = api.svc.runner.app[RUNTIME].db
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(RateLimit)) or 0)


async def test_the_limit_holds_across_processes(service_factory, database_url, fake_api):
    api = await _across_two_servers(service_factory, database_url, fake_api)
    assert await stored_limits(api) == 1  # the count is in the database


async def test_the_limit_holds_across_processes_with_redis(service_factory, database_url, fake_api, redis_url):
    api = await _across_two_servers(service_factory, database_url, fake_api, BOT_REDIS_URL=redis_url)
    assert await stored_limits(api) == 0  # the count is in Redis


async def test_cli_merchant_token_needs_its_merchant_and_works(service_factory, database_url, fake_api, tmp_path: Path):
    code, _, err = await bot_cli(database_url, tmp_path, "db", "upgrade")
    assert code == 0, err
    started = time.monotonic()
    code, out, err = await bot_cli(database_url, tmp_path, "token", "create", "--name", "老王", "--role", "merchant")
    assert code == 2 and "--merchant" in err and "python -m bot token create --role merchant --merchant ID" in err
    assert "csb_" not in out and time.monotonic() - started < 30
    code, _, err = await bot_cli(database_url, tmp_path, "token", "create", "--name", "x", "--role", "merchant",
                                 "--merchant", "999")
    assert code == 2 and "no merchant with id 999" in err
    code, _, err = await bot_cli(database_url, tmp_path, "token", "create", "--name", "x", "--role", "staff",
                                 "--merchant", "1")
    assert code == 2 and "--role merchant" in err

    api = await start(service_factory, database_url, fake_api)
    _, merchant_b, _, _, issued_code = await two_merchants_with_a_code(api)
    code, out, err = await bot_cli(database_url, tmp_path, "token", "create", "--name", "老王收银", "--role",
                                   "merchant", "--merchant", str(merchant_b))
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    assert f"merchant {merchant_b}" in out
    status, data, _ = await post(api, VERIFY, {"code": issued_code}, secret)
    assert status == 200 and data["status"] == "used", data
    # the merchant page is the same call from the browser: the token is accepted there too
    async with api.svc.http.get(api.svc.base + "/merchant") as resp:
        assert resp.status == 200
