"""Fixtures for the WeChat API client, token stores, outbox and fake server tests (``wx_*``).

The databases come from the top-level ``database_url`` fixture (SQLite, and PostgreSQL when
reachable / always in CI).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.clock import ManualClock
from bot.config import Settings
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.wechat.api import WeChatAPI
from bot.wechat.fake_api import run_fake_api
from bot.wechat.tokens import DatabaseTokenStore
from tests.conftest import need_service

WX_APPID = "wxapiclienttest01"
WX_SECRET = "api-client-test-secret"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


class FakeControl:
    """The fake WeChat API's ``/fake/*`` control endpoints."""

    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, self.base + path, **kwargs) as resp:
            return await resp.json(content_type=None)

    async def sent(self, openid: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        params: dict[str, str] = {"since": str(since)}
        if openid:
            params["openid"] = openid
        data = await self._json("GET", "/fake/sent", params=params)
        return list(data["messages"])

    async def calls(self, endpoint: str) -> int:
        data = await self._json("GET", "/fake/calls")
        return int(data.get(endpoint, 0))

    async def inject(self, endpoint: str, **rule: Any) -> None:
        data = await self._json("POST", "/fake/errors", json={"endpoint": endpoint, **rule})
        assert data.get("ok"), data

    async def expire_tokens(self) -> None:
        await self._json("POST", "/fake/expire_tokens")

    async def menu(self) -> Any:
        return (await self._json("GET", "/fake/menu"))["menu"]

    async def register_media(self, content: bytes, content_type: str, filename: str = "photo.jpg") -> str:
        data = await self._json(
            "POST", "/fake/media", data=content, params={"filename": filename},
            headers={"Content-Type": content_type},
        )
        return str(data["media_id"])


@pytest.fixture
async def wx_fake_base() -> AsyncIterator[str]:
    async with run_fake_api(credentials={WX_APPID: WX_SECRET}) as base:
        yield base


@pytest.fixture
async def wx_fake(wx_fake_base: str) -> AsyncIterator[FakeControl]:
    async with aiohttp.ClientSession() as http:
        yield FakeControl(wx_fake_base, http)


def wx_make_settings(base: str, tmp_path: Path, database_url: str = "", **extra: str) -> Settings:
    values = {
        "BOT_WECHAT_API_BASE": base,
        "BOT_WECHAT_APPID": WX_APPID,
        "BOT_WECHAT_SECRET": WX_SECRET,
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "BOT_OUTBOX_INTERVAL": "0.05",
        **extra,
    }
    if database_url:
        values["BOT_DATABASE_URL"] = database_url
    return Settings.from_mapping(values)


@pytest.fixture
def wx_settings(wx_fake_base: str, tmp_path: Path) -> Settings:
    return wx_make_settings(wx_fake_base, tmp_path)


@pytest.fixture
def wx_clock() -> ManualClock:
    return ManualClock()


class Databases:
    """Several Database handles on one database, like several processes would have."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[Database] = []

    def open(self) -> Database:
        db = Database(self.url)
        self.opened.append(db)
        return db


@pytest.fixture
async def wx_dbs(database_url: str) -> AsyncIterator[Databases]:
    dbs = Databases(database_url)
    first = dbs.open()
    await upgrade(first)
    yield dbs
    for db in dbs.opened:
        await db.dispose()


@pytest.fixture
async def wx_db(wx_dbs: Databases) -> Database:
    return wx_dbs.opened[0]


@pytest.fixture
async def wx_api(wx_settings: Settings, wx_db: Database, wx_clock: ManualClock) -> AsyncIterator[WeChatAPI]:
    api = WeChatAPI(wx_settings, token_store=DatabaseTokenStore(wx_db, WX_APPID, clock=wx_clock), timeout=5)
    yield api
    await api.close()


@pytest.fixture
async def wx_redis() -> AsyncIterator[tuple[Any, str]]:
    """A real Redis client and a random key prefix (keys removed afterwards)."""
    need_service("Redis", REDIS_HOST, REDIS_PORT)
    from redis.asyncio import Redis

    client = Redis(host=REDIS_HOST, port=REDIS_PORT)
    prefix = f"test:{secrets.token_hex(6)}:"
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
