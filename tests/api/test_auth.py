"""Authentication and roles: no, malformed, unknown and revoked tokens; wrong roles; last use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.api.tokens import ROLES, create_token, revoke_token
from bot.clock import Clock, ManualClock
from bot.storage.db import Database
from bot.storage.models import ApiToken
from tests.api.conftest import ANON, Api, assert_error, make_tokens


async def test_healthz_needs_no_token(api: Api):
    async with api.svc.http.get(api.svc.base + "/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"


async def test_me_tells_each_role_who_it_is(api: Api):
    for role in ROLES:
        me = await api.ok("/me", role)
        assert me["role"] == role and me["kind"] == "token" and me["name"] == f"test {role}"


async def test_anonymous_call_is_401_with_json_and_challenge(api: Api):
    status, body, headers = await api.call("GET", "/me", ANON)
    message = assert_error(status, body, 401, "unauthorized")
    assert "Bearer" in message
    assert headers.get("WWW-Authenticate", "").startswith("Bearer")


async def test_malformed_and_unknown_tokens_are_401(api: Api):
    bad_headers = [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Token " + api.tokens["admin"],
        "bearer-" + api.tokens["admin"],
    ]
    for header in bad_headers:
        status, body, _ = await api.call("GET", "/me", ANON, headers={"Authorization": header})
        assert_error(status, body, 401)
    for token in ["not-a-token", "csb_" + "x" * 43, api.tokens["admin"][:-1], "csb_" + "é" * 10, "csb_" * 100]:
        status, body, _ = await api.call("GET", "/me", token)
        assert_error(status, body, 401, "invalid_token")


async def test_lowercase_bearer_scheme_is_accepted(api: Api):
    status, body, _ = await api.call("GET", "/me", ANON, headers={"Authorization": "bearer " + api.tokens["staff"]})
    assert status == 200 and body["role"] == "staff"


async def test_revoked_token_is_refused_at_once(api: Api):
    db = Database(api.svc.settings.database_url)
    try:
        secret, info = await create_token(db, "short-lived", "staff", Clock().now())
        assert (await api.get("/residents", secret))[0] == 200
        _, revoked = await revoke_token(db, str(info.id), Clock().now())
        assert revoked
    finally:
        await db.dispose()
    status, body = await api.get("/residents", secret)
    assert_error(status, body, 401, "invalid_token")
    # other tokens are unaffected
    assert (await api.get("/residents", "staff"))[0] == 200


async def test_wrong_role_is_403_naming_the_allowed_roles(api: Api):
    status, body = await api.get("/residents", "merchant")
    message = assert_error(status, body, 403, "forbidden")
    assert "merchant" in message and "staff" in message
    for role in ("admin", "supervisor", "staff", "operator"):
        assert (await api.get("/residents", role))[0] == 200, role


async def test_authentication_comes_before_input_checks(api: Api):
    """Anonymous and wrong-role callers learn nothing about ids or parameters."""
    for token, expected in ((ANON, 401), ("merchant", 403)):
        for path, params in (("/residents/abc", {}), ("/residents/999999", {}), ("/residents", {"limit": "x"})):
            status, body = await api.get(path, token, **params)
            assert_error(status, body, expected)


async def test_last_used_is_recorded_at_most_once_a_minute(service_factory, sqlite_url):
    clock = ManualClock(datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    svc = await service_factory(sqlite_url, app_kwargs={"clock": clock})
    api = Api(svc, await make_tokens(sqlite_url))

    async def last_used() -> datetime | None:
        db = Database(sqlite_url)
        try:
            async with db.session() as s:
                return await s.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "test staff"))
        finally:
            await db.dispose()

    assert await last_used() is None
    await api.ok("/me", "staff")
    assert await last_used() == clock.now()
    first = clock.now()
    clock.advance(timedelta(seconds=30))
    await api.ok("/me", "staff")
    assert await last_used() == first  # within the minute: not written again
    clock.advance(timedelta(seconds=31))
    await api.ok("/me", "staff")
    assert await last_used() == clock.now()
