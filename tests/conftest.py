"""Shared fixtures: real databases (SQLite always; PostgreSQL and Redis when reachable, and
always in CI), the service on a loopback port, and WeChat's side of the wire."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.config import Settings
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.wechat.simulate import WeChatSender

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# Tencent's published test account values (also used for the official vectors).
TOKEN = "spamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx2c2769f8efd9abc2"
SECRET = "test-secret"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip without the service on a bare machine; in CI its absence is a failure."""
    if _reachable(host, port):
        return
    if IN_CI:
        pytest.fail(f"{name} at {host}:{port} is required in CI but not reachable")
    pytest.skip(f"{name} not reachable at {host}:{port}")


async def create_pg_database() -> str:
    import asyncpg

    name = "t_" + secrets.token_hex(6)
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


_PG_MADE: list[str] = []


@pytest.fixture(scope="session")
def _pg_databases() -> Iterator[list[str]]:
    """PostgreSQL databases made by tests. They are dropped when the whole run has finished
    (``pytest_sessionfinish``), after every service using them has stopped — a test's own fixtures
    may tear down in any order — and outside any test's timeout: a run on PostgreSQL makes
    hundreds of them."""
    yield _PG_MADE


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _PG_MADE:
        return

    async def drop_all() -> None:
        names = list(dict.fromkeys(_PG_MADE))
        _PG_MADE.clear()
        limit = asyncio.Semaphore(4)

        async def drop(name: str) -> None:
            async with limit:
                await drop_pg_database(name)

        await asyncio.gather(*(drop(name) for name in names))

    asyncio.run(drop_all())


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path, _pg_databases: list[str]) -> AsyncIterator[str]:
    """A fresh, empty database: SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
        return
    need_service("PostgreSQL", "127.0.0.1", 5432)
    name = await create_pg_database()
    _pg_databases.append(name)
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test's database (SQLite or PostgreSQL), migrated, for code called directly."""
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    need_service("Redis", "127.0.0.1", 6379)
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    yield REDIS_URL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Service:
    """The running service on loopback, with WeChat's side of the wire."""

    base: str
    settings: Settings
    runner: web.AppRunner
    http: aiohttp.ClientSession
    fake_api: str | None = None

    @property
    def wechat_url(self) -> str:
        return f"{self.base}/wechat"

    def sender(self, mode: str | None = None) -> WeChatSender:
        """WeChat's side of the wire; by default in the mode the service takes: plaintext without
        an EncodingAESKey, safe mode with one (plaintext is then refused)."""
        mode = mode or ("plain" if self.settings.accepts_plaintext else "safe")
        return WeChatSender(
            self.wechat_url,
            self.settings.wechat_token,
            self.settings.wechat_appid,
            self.settings.wechat_aes_key,
            mode=mode,
        )

    async def send(self, fields: dict[str, Any], mode: str | None = None) -> Any:
        return await self.sender(mode).send(self.http, fields)

    async def fake_sent(self, openid: str | None = None) -> list[dict[str, Any]]:
        assert self.fake_api, "no fake WeChat API in this service"
        params = {"openid": openid} if openid else {}
        async with self.http.get(f"{self.fake_api}/fake/sent", params=params) as resp:
            data = await resp.json()
        return list(data["messages"] if isinstance(data, dict) else data)


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values = {
        "BOT_DATABASE_URL": database_url,
        "BOT_WECHAT_TOKEN": TOKEN,
        "BOT_WECHAT_APPID": APPID,
        "BOT_WECHAT_SECRET": SECRET,
        "BOT_WECHAT_AES_KEY": AES_KEY,
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "BOT_OUTBOX_INTERVAL": "0.05",
    }
    values.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_mapping(values)


async def start_service(settings: Settings, **app_kwargs: Any) -> web.AppRunner:
    from bot.app import create_app

    runner = web.AppRunner(create_app(settings, **app_kwargs), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.port)
    await site.start()
    return runner


@pytest.fixture
async def fake_api() -> AsyncIterator[str]:
    from bot.wechat.fake_api import run_fake_api

    async with run_fake_api(credentials={APPID: SECRET}) as base:
        yield base


ServiceFactory = Callable[..., Any]


@pytest.fixture
async def service_factory(tmp_path: Path) -> AsyncIterator[ServiceFactory]:
    """``await make(database_url, **setting_overrides)`` starts the service; all stop at teardown."""
    started: list[Service] = []
    http = aiohttp.ClientSession()

    async def make(
        database_url: str,
        fake_api: str | None = None,
        app_kwargs: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Service:
        port = free_port()
        if fake_api:
            overrides.setdefault("BOT_WECHAT_API_BASE", fake_api)
        settings = make_settings(database_url, tmp_path, BOT_PORT=port, **overrides)
        runner = await start_service(settings, **(app_kwargs or {}))
        svc = Service(f"http://127.0.0.1:{port}", settings, runner, http, fake_api)
        started.append(svc)
        return svc

    yield make
    for svc in reversed(started):
        await svc.runner.cleanup()
    await http.close()
    await asyncio.sleep(0)


@pytest.fixture
async def service(service_factory: ServiceFactory, database_url: str, fake_api: str) -> Service:
    svc: Service = await service_factory(database_url, fake_api)
    return svc


async def stop(svc: Service) -> None:
    await svc.runner.cleanup()
