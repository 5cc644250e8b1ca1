"""The shared access token: one refresh across processes, in the database and in Redis."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import Settings
from bot.storage.db import Database
from bot.wechat.api import WeChatAPI, WeChatUnavailable
from bot.wechat.tokens import DatabaseTokenStore, RedisTokenStore, TokenStore, make_token_store
from tests.wechat.conftest import WX_APPID, Databases, FakeControl, wx_make_settings

STABLE = "/cgi-bin/stable_token"


def text(openid: str, content: str) -> dict[str, Any]:
    return {"touser": openid, "msgtype": "text", "text": {"content": content}}


class Processes:
    """Several API clients, each with its own store (and database handle): separate processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.apis: list[WeChatAPI] = []

    def add(self, store: TokenStore) -> WeChatAPI:
        api = WeChatAPI(self.settings, token_store=store, timeout=5)
        self.apis.append(api)
        return api

    async def close(self) -> None:
        for api in self.apis:
            await api.close()
            await api.tokens.close()


@pytest.fixture
async def procs(wx_settings: Settings) -> Any:
    p = Processes(wx_settings)
    yield p
    await p.close()


def db_store(dbs: Databases, clock: ManualClock, **kwargs: Any) -> DatabaseTokenStore:
    return DatabaseTokenStore(dbs.open(), WX_APPID, clock=clock, poll_interval=0.02, **kwargs)


async def test_processes_share_one_token_from_the_database(
    procs: Processes, wx_dbs: Databases, wx_clock: ManualClock, wx_fake: FakeControl
) -> None:
    apis = [procs.add(db_store(wx_dbs, wx_clock)) for _ in range(3)]
    tokens = await asyncio.gather(*(api.access_token() for api in apis for _ in range(4)))
    assert len(set(tokens)) == 1
    assert await wx_fake.calls(STABLE) == 1
    later = procs.add(db_store(wx_dbs, wx_clock))  # a process started afterwards reads it too
    assert await later.access_token() == tokens[0]
    assert await wx_fake.calls(STABLE) == 1


async def test_token_error_in_many_processes_refreshes_once(
    procs: Processes, wx_dbs: Databases, wx_clock: ManualClock, wx_fake: FakeControl
) -> None:
    apis = [procs.add(db_store(wx_dbs, wx_clock)) for _ in range(3)]
    old = {await api.access_token() for api in apis}
    await wx_fake.expire_tokens()  # every process now holds a token WeChat answers 42001 to
    await asyncio.gather(*(api.send_custom(text(f"o{i}", f"m{i}")) for i, api in enumerate(apis)))
    assert await wx_fake.calls(STABLE) == 2
    new = {await api.access_token() for api in apis}
    assert len(new) == 1 and new != old
    assert sorted(m["payload"]["text"]["content"] for m in await wx_fake.sent()) == ["m0", "m1", "m2"]


async def test_token_is_refreshed_before_it_expires(
    procs: Processes, wx_dbs: Databases, wx_clock: ManualClock, wx_fake: FakeControl
) -> None:
    first, second = procs.add(db_store(wx_dbs, wx_clock)), procs.add(db_store(wx_dbs, wx_clock))
    await first.access_token()
    wx_clock.advance(timedelta(seconds=7200 - 240))  # inside the 5-minute margin
    await first.access_token()
    assert await wx_fake.calls(STABLE) == 2
    await second.access_token()  # sees the refreshed expiry: no call of its own
    assert await wx_fake.calls(STABLE) == 2
    wx_clock.advance(timedelta(seconds=60))
    await second.access_token()
    assert await wx_fake.calls(STABLE) == 2


async def test_a_lease_left_by_a_dead_process_expires(
    procs: Processes, wx_dbs: Databases, wx_clock: ManualClock, wx_fake: FakeControl
) -> None:
    dead = db_store(wx_dbs, wx_clock)
    never: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    fetching = asyncio.Event()

    async def hang(force: bool) -> tuple[str, int]:
        fetching.set()
        return await never

    # The "dead" process takes the lease and never finishes (its task is abandoned, not cancelled).
    abandoned = asyncio.ensure_future(dead.get(hang))
    await asyncio.wait_for(fetching.wait(), 30)
    assert await _lease_taken(wx_dbs.opened[0])
    alive = procs.add(db_store(wx_dbs, wx_clock))
    waiting = asyncio.ensure_future(alive.access_token())
    await asyncio.sleep(0.2)
    assert not waiting.done(), "must wait while another process holds a live lease"
    wx_clock.advance(timedelta(seconds=31))
    token = await asyncio.wait_for(waiting, 30)
    assert token
    assert await wx_fake.calls(STABLE) == 1
    never.set_result(("LATE", 7200))
    await abandoned


async def _lease_taken(db: Database) -> bool:
    from sqlalchemy import select

    from bot.storage.models import AccessToken

    async with db.session() as session:
        until = await session.scalar(select(AccessToken.refreshing_until).where(AccessToken.appid == WX_APPID))
    return until is not None


async def test_failed_refresh_releases_the_lease(
    procs: Processes, wx_dbs: Databases, wx_clock: ManualClock, wx_fake: FakeControl
) -> None:
    api = procs.add(db_store(wx_dbs, wx_clock, wait_timeout=5))
    await wx_fake.inject("stable_token", count=1, status=503)
    with pytest.raises(WeChatUnavailable):
        await api.access_token()
    other = procs.add(db_store(wx_dbs, wx_clock, wait_timeout=5))
    assert await other.access_token()  # no wait for a lease: the clock never moves here
    assert await wx_fake.calls(STABLE) == 2


async def test_redis_store_shares_one_token(
    procs: Processes, wx_redis: tuple[Any, str], wx_clock: ManualClock, wx_fake: FakeControl
) -> None:
    client, prefix = wx_redis

    def store() -> RedisTokenStore:
        return RedisTokenStore(client, WX_APPID, prefix=prefix, clock=wx_clock, poll_interval=0.02)

    apis = [procs.add(store()) for _ in range(3)]
    tokens = await asyncio.gather(*(api.access_token() for api in apis for _ in range(3)))
    assert len(set(tokens)) == 1
    assert await wx_fake.calls(STABLE) == 1
    assert await client.exists(f"{prefix}wechat:access_token:{WX_APPID}")
    ttl = await client.pttl(f"{prefix}wechat:access_token:{WX_APPID}")
    assert 0 < ttl <= 7200 * 1000

    await wx_fake.expire_tokens()
    await asyncio.gather(*(api.send_custom(text(f"o{i}", "x")) for i, api in enumerate(apis)))
    assert await wx_fake.calls(STABLE) == 2
    assert len({await api.access_token() for api in apis}) == 1
    assert not await client.exists(f"{prefix}wechat:access_token:{WX_APPID}:lock")


async def test_make_token_store_picks_the_backend(wx_fake_base: str, tmp_path: Path, wx_db: Database) -> None:
    plain = wx_make_settings(wx_fake_base, tmp_path)
    assert isinstance(make_token_store(plain, wx_db), DatabaseTokenStore)
    with_redis = wx_make_settings(wx_fake_base, tmp_path, BOT_REDIS_URL="redis://127.0.0.1:6379/0")
    store = make_token_store(with_redis, wx_db)
    assert isinstance(store, RedisTokenStore)
    await store.close()
