"""Helpers for the console's tests: accounts made through the service, logging in over HTTP with
the cookies read from the headers (the session cookie is Secure, which a client jar would keep
from plain http://127.0.0.1), and the set-up most tests share: the service with its users
(:func:`start_console`), a resident waiting for a person (:func:`waiting_resident`), a ticket made
from their conversation (:func:`ticket_from_conversation`) or reported in the chat
(:func:`reported_ticket`), a page once something is on it (:func:`wait_page`)."""

from __future__ import annotations

import asyncio
import html
import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import aiohttp

from bot.clock import Clock, ManualClock
from bot.services import accounts
from bot.storage.db import Database
from tests.conftest import REDIS_URL, need_service

PASSWORD = "correct-horse-9"
# The console's usual people: (name, role, account fields) as add_users takes them.
ZHANG = ("zhang", "supervisor", {})
LI = ("li", "staff", {"department": "物业服务中心"})
WANG = ("wang", "staff", {"department": "环卫所"})
YUN = ("yun", "operator", {})


async def redis_with(database_url: str) -> str:
    """On PostgreSQL the console's tests also run the service with Redis (emptied first), as in
    production; on SQLite without."""
    if not database_url.startswith("postgresql"):
        return ""
    need_service("Redis", "127.0.0.1", 6379)
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    return REDIS_URL


async def add_users(database_url: str, *users: tuple[str, str, dict[str, Any]]) -> None:
    db = Database(database_url)
    try:
        for name, role, extra in users:
            await accounts.add_user(db, name, role, PASSWORD, Clock().now(), **extra)
    finally:
        await db.dispose()


def cookies_of(resp: aiohttp.ClientResponse) -> dict[str, SimpleCookie]:
    found: dict[str, SimpleCookie] = {}
    for header in resp.headers.getall("Set-Cookie", []):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name in jar:
            found[name] = jar
    return found


@dataclass
class Client:
    """A logged-in console user over HTTP."""

    base: str
    http: aiohttp.ClientSession
    session: str
    csrf: str

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"csb_session={self.session}"}

    async def get(self, path: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.base + path, headers=self.cookie, allow_redirects=False, **kw) as r:
            return r.status, await r.text(), r

    async def post(self, path: str, data: dict[str, str] | None = None, csrf: bool = True,
                   **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        form = dict(data or {})
        if csrf:
            form["csrf"] = self.csrf
        async with self.http.post(self.base + path, data=form, headers=self.cookie, allow_redirects=False,
                                  **kw) as r:
            return r.status, await r.text(), r


async def login_form(http: aiohttp.ClientSession, base: str) -> tuple[str, str]:
    async with http.get(base + "/login") as r:
        html = await r.text()
        cookie = cookies_of(r)["csb_login_csrf"]["csb_login_csrf"].value
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1), cookie


async def try_login(http: aiohttp.ClientSession, base: str, name: str, password: str,
                    old_session: str | None = None) -> aiohttp.ClientResponse:
    csrf, cookie = await login_form(http, base)
    cookies = f"csb_login_csrf={cookie}" + (f"; csb_session={old_session}" if old_session else "")
    async with http.post(base + "/login", data={"csrf": csrf, "name": name, "password": password},
                         headers={"Cookie": cookies}, allow_redirects=False) as r:
        await r.read()
        return r


async def login(http: aiohttp.ClientSession, base: str, name: str, password: str = PASSWORD) -> Client:
    r = await try_login(http, base, name, password)
    assert r.status == 303, r.status
    session = cookies_of(r)["csb_session"]["csb_session"].value
    client = Client(base, http, session, "")
    _status, html, _ = await client.get("/console/canned" if name != "shop" else "/merchant")
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, html[:300]
    client.csrf = match.group(1)
    return client


async def say(svc: Any, openid: str, text: str) -> str | None:
    """Send ``text`` as the resident through /wechat; the passive reply's text (None: ``success``)."""
    s = svc.sender()
    reply = await s.send(svc.http, s.text(openid, text))
    assert reply.status == 200, reply.body
    return reply.content


async def sent_texts(svc: Any, openid: str) -> list[str]:
    """The texts the fake WeChat API has received for the resident, in order."""
    return [str((m.get("payload") or {}).get("text", {}).get("content", "")) for m in await svc.fake_sent(openid)]


async def wait_sent(svc: Any, openid: str, fragment: str) -> list[str]:
    """What the resident has received, once ``fragment`` is among it (the outbox sends in order)."""
    for _ in range(300):
        texts = await sent_texts(svc, openid)
        if any(fragment in t for t in texts):
            return texts
        await asyncio.sleep(0.1)
    raise AssertionError(f"{fragment!r} not sent to the resident: {await sent_texts(svc, openid)}")


async def start_console(service_factory: Any, database_url: str, fake_api: str, *users: tuple[str, str, dict[str, Any]],
                        clock: ManualClock | None = None, redis: bool = False, **overrides: Any) -> Any:
    """The service on ``database_url`` with the console's ``users``; ``clock``: the app's (manual)
    clock; ``redis``: on PostgreSQL also Redis, emptied first (as in production; nothing on SQLite)."""
    if redis and (url := await redis_with(database_url)):
        overrides.setdefault("BOT_REDIS_URL", url)
    svc = await service_factory(database_url, fake_api, app_kwargs={"clock": clock} if clock else None, **overrides)
    await add_users(database_url, *users)
    return svc


async def waiting_resident(svc: Any, client: Client, openid: str, text: str = "转人工") -> str:
    """``openid`` says ``text`` through /wechat (转人工: they wait for a person); their resident id,
    the newest row of the client's inbox."""
    assert await say(svc, openid, text)
    _, inbox, _ = await client.get("/console/inbox")
    found = re.search(r'data-resident="(\d+)"', inbox)
    assert found, inbox[:500]
    return found.group(1)


async def ticket_from_conversation(client: Client, rid: str, text: str, category: str,
                                   **fields: str) -> tuple[str, str]:
    """A ticket the client makes from the resident's conversation (``fields``: the form's others,
    e.g. ``place``): its page's path and its id."""
    form = {"text": text, "category": category, **fields}
    status, page, resp = await client.post(f"/console/conversations/{rid}/ticket", form)
    assert status == 303, (status, page[:500])
    path = str(resp.headers["Location"])
    return path, path.rsplit("/", 1)[1]


async def reported_ticket(svc: Any, client: Client, openid: str, text: str, phone: str | None = None) -> tuple[str, str]:
    """``openid`` reports ``text`` in the chat (answering the question for a phone with ``phone``
    when asked, when given); the ticket's console page (found by its number) and the number."""
    reply = await say(svc, openid, text)
    if phone is not None and reply and "联系电话" in reply:
        reply = await say(svc, openid, phone)
    number = re.search(r"GD\d{8}-\d{4}", reply or "")
    assert number, reply
    _, _, resp = await client.get(f"/console/tickets?number={number.group(0)}")
    return str(resp.headers["Location"]), number.group(0)


async def wait_page(client: Client, path: str, fragment: str) -> str:
    """The page (unescaped) once ``fragment`` is on it (the scheduler runs in the service, on its own)."""
    page = ""
    for _ in range(300):
        _, page, _ = await client.get(path)
        if fragment in html.unescape(page):
            return html.unescape(page)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{fragment!r} not on {path}")


def timeline(page: str) -> str:
    """A ticket page's timeline, unescaped."""
    return html.unescape(page.split('id="timeline"', 1)[1].split("</ol>", 1)[0])
