"""The console's access rules over HTTP: cookie flags, a new session id at login, CSRF on every
state-changing request, every console page and API route refusing anonymous and wrong-role
callers (enumerated from the router), a growing wait after failed logins, logout, and no full
phone number or secret in pages or logs."""

from __future__ import annotations

import logging
import re

import pytest

from bot.api.registry import API
from bot.services.accounts import ROLES, User
from bot.web.console.access import ROUTES, allowed
from tests.web.console_util import LI, PASSWORD, YUN, ZHANG, cookies_of, login, start_console, try_login

USERS = (LI, ZHANG, YUN, ("root", "admin", {}))


@pytest.fixture
async def svc(service_factory, database_url, fake_api):
    """The service on SQLite, and on PostgreSQL with Redis."""
    return await start_console(service_factory, database_url, fake_api, *USERS, redis=True)


async def test_cookie_flags_and_new_session_id_at_login(svc):
    http = svc.http
    first = await try_login(http, svc.base, "li", PASSWORD)
    assert first.status == 303
    cookie = cookies_of(first)["csb_session"]["csb_session"]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
    # Logging in again with the old session cookie in the request gives a different id.
    second = await try_login(http, svc.base, "li", PASSWORD, old_session=cookie.value)
    renewed = cookies_of(second)["csb_session"]["csb_session"].value
    assert renewed and renewed != cookie.value
    # A made-up session id is nobody's.
    async with http.get(svc.base + "/console/tickets", headers={"Cookie": "csb_session=forged"},
                        allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"].startswith("/login")


async def test_login_without_its_csrf_cookie_is_refused(svc):
    async with svc.http.post(svc.base + "/login", data={"csrf": "x", "name": "li", "password": PASSWORD},
                             allow_redirects=False) as r:
        assert r.status == 403
        assert "页面已过期" in await r.text()


async def test_csrf_refused_on_every_state_changing_route(svc):
    client = await login(svc.http, svc.base, "root")
    posts = [r for r in ROUTES if r.method != "GET"]
    assert len(posts) >= 10
    for route in posts:
        path = re.sub(r"\{\w+\}", "1", route.path)
        status, _, _ = await client.post(path, {"text": "x"}, csrf=False)
        assert status == 403, (route.path, status)
        status, _html, _ = await client.post(path, {"text": "x", "csrf": "wrong"}, csrf=False)
        assert status == 403, (route.path, status)
    # The API through the session: a POST without the header is refused, with it accepted.
    async with svc.http.post(svc.base + "/api/v1/merchants", json={"name": "甲店", "category": "餐饮"},
                             headers=client.cookie) as r:
        assert r.status == 403
    async with svc.http.post(svc.base + "/api/v1/merchants", json={"name": "甲店", "category": "餐饮"},
                             headers={**client.cookie, "X-CSRF-Token": client.csrf}) as r:
        assert r.status == 201


async def test_every_console_route_refuses_anonymous_and_wrong_roles(svc):
    clients = {name: await login(svc.http, svc.base, name) for name, _, _ in USERS}
    roles = {name: role for name, role, _ in USERS}
    paths = {(r.method, r.path) for r in ROUTES}
    # the tuning loop (issue 16): operators and admins only, every page and action enumerated below
    tuning = {r.path: r.roles for r in ROUTES if r.path.startswith("/console/tuning")}
    assert {"/console/tuning", "/console/tuning/review", "/console/tuning/publish", "/console/tuning/rollback",
            "/console/tuning/evaluation/figures", "/console/tuning/entries", "/console/tuning/changes"} <= set(tuning)
    assert set(tuning.values()) == {frozenset({"operator"})}
    # Everything under /console, /merchant and /logout in the router is declared with its roles.
    for resource in svc.runner.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith("/console") or path == "/merchant" or path.startswith("/merchant/today") or path == "/logout":
            for route in resource:
                if route.method != "HEAD":
                    assert (route.method, path) in paths, f"{route.method} {path} is not declared with roles"
    for route in ROUTES:
        if route.path == "/console/events":
            continue  # a stream: checked below
        path = re.sub(r"\{\w+\}", "1", route.path)
        async with svc.http.request(route.method, svc.base + path, allow_redirects=False) as r:
            assert r.status in (303, 401), (route.path, r.status)
            if r.status == 303:
                assert r.headers["Location"].startswith("/login")
        for name, client in clients.items():
            user = User(0, name, roles[name], None, None)
            if allowed(user, route.roles):
                continue
            if route.method == "GET":
                status, html, _ = await client.get(path)
            else:
                status, html, _ = await client.post(path, {"text": "x"})
            assert status == 403, (route.path, name, status)
            assert "没有权限" in html
    async with svc.http.get(svc.base + "/console/events", allow_redirects=False) as r:
        assert r.status == 303


async def test_every_api_route_refuses_anonymous_and_wrong_role_sessions(svc):
    clients = {role: await login(svc.http, svc.base, name) for name, role, _ in USERS}
    for route in API.routes:
        if route.public:
            continue
        path = re.sub(r"\{\w+\}", "1", route.full_path)
        async with svc.http.request(route.method, svc.base + path, json={}) as r:
            assert r.status == 401, (route.full_path, r.status)
        for role, client in clients.items():
            if role == "admin" or role in route.roles:
                continue
            headers = {**client.cookie, "X-CSRF-Token": client.csrf}
            async with svc.http.request(route.method, svc.base + path, json={}, headers=headers) as r:
                assert r.status == 403, (route.full_path, role, r.status)
    assert set(ROLES) >= {"staff", "supervisor", "operator", "merchant", "admin"}


async def test_failed_logins_wait_longer_and_logout_ends_the_session(svc):
    for _ in range(3):
        r = await try_login(svc.http, svc.base, "li", "wrong-password")
        assert r.status == 401
    r = await try_login(svc.http, svc.base, "li", PASSWORD)  # even the right password waits now
    assert r.status == 429
    r2 = await try_login(svc.http, svc.base, "nobody", "whatever1")  # an unknown name answers the same
    assert r2.status == 401
    client = await login(svc.http, svc.base, "zhang")
    status, _, _ = await client.post("/logout")
    assert status == 303
    status, _, r = await client.get("/console/tickets")
    assert status == 303 and r.headers["Location"].startswith("/login")


async def test_no_full_phone_or_secret_in_pages_or_logs(svc, caplog):
    caplog.set_level(logging.DEBUG)
    phone = "13812345678"
    s = svc.sender()
    openid = "o_console_phone_0001"
    await s.send(svc.http, s.text(openid, f"转人工，我的电话是{phone}"))
    await s.send(svc.http, s.text("o_console_phone_0002", f"门口那个东西谁放的，我电话{phone}"))  # to review
    client = await login(svc.http, svc.base, "zhang")
    pages = []
    for path in ("/console/handoffs", "/console/inbox", "/console/handoffs/rows", "/console/inbox/rows"):
        status, html, _ = await client.get(path)
        assert status == 200
        pages.append(html)
    resident = re.search(r"/console/conversations/(\d+)", pages[0])
    assert resident, pages[0]
    status, html, _ = await client.get(f"/console/conversations/{resident.group(1)}")
    pages.append(html)
    operator = await login(svc.http, svc.base, "yun")
    status, html, _ = await operator.get("/console/tuning")
    assert status == 200 and "门口那个东西谁放的，我电话138****5678" in html
    pages.append(html)
    joined = "\n".join(pages)
    assert "138****5678" in joined
    assert phone not in joined and openid not in joined
    for secret in (PASSWORD, client.session, svc.settings.wechat_secret, svc.settings.wechat_aes_key):
        assert secret not in caplog.text
    assert phone not in caplog.text and client.session not in joined
