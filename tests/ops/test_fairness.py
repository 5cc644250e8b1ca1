"""The global limit on customer-service messages: all processes together send at most
``BOT_OUTBOX_RATE`` per second (WeChat's quota), and none is dropped for it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from bot.appkeys import RUNTIME
from bot.config import ConfigError, Settings
from bot.messages import Out
from bot.services.notify import enqueue
from tests.conftest import ServiceFactory


async def test_outbox_sends_at_most_the_rate_per_second(service_factory: ServiceFactory, database_url: str, fake_api: str) -> None:
    # Two service instances on one database, each with its own outbox worker: together 3 a second.
    extra: dict[str, Any] = {}
    if database_url.startswith("postgresql"):
        from tests.conftest import REDIS_URL, need_service

        need_service("Redis", "127.0.0.1", 6379)
        extra["BOT_REDIS_URL"] = REDIS_URL
        extra["BOT_WORKERS"] = "2"
    else:
        extra["BOT_WORKERS"] = "2"  # without Redis each of the two takes its share (1 a second)
    a = await service_factory(database_url, fake_api, BOT_OUTBOX_RATE="3", **extra)
    b = await service_factory(database_url, fake_api, BOT_OUTBOX_RATE="3", **extra)
    rt = a.runner.app[RUNTIME]
    async with rt.db.transaction() as session:
        for i in range(12):
            await enqueue(session, f"oRate{i:023d}", [Out.text(f"第{i}条通知")], f"rate-{i}", not_before=rt.clock.now())
    for _ in range(400):
        async with a.http.get(f"{fake_api}/fake/sent") as resp:
            sent = (await resp.json())["messages"]
        if len(sent) >= 12:
            break
        await asyncio.sleep(0.05)
    assert len(sent) == 12, "every message is sent, only later"
    limit = 3 if "BOT_REDIS_URL" in extra else 2  # two processes x a share of 1
    # The senders count in one-second windows; the fake API stamps a message when it arrives, so a
    # send at the end of one window and one at the start of the next may arrive in the same second.
    # What holds whatever the network does: 12 messages at `limit` a window fill 12/limit windows,
    # whose first and last sends lie at least 12/limit - 2 whole windows apart, and no arrival
    # second holds more than two windows' worth. (Unlimited, all 12 go out within a tenth of a second.)
    times = sorted(float(m["time"]) for m in sent)
    assert times[-1] - times[0] >= 12 / limit - 2 - 0.5, times
    per_second = Counter(int(t) for t in times)
    assert max(per_second.values()) <= 2 * limit, per_second
    assert b is not None


async def test_a_window_in_redis_is_one_hash_counted_by_one_command_a_hit(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every process counts a resident in the window's one hash (HINCRBY), which expires after the
    window: its expiry is sent with a process's first hit in a window and then at most once a
    second, so a hash Redis lost (a restart) and made anew expires again."""
    import redis.asyncio as aioredis

    from bot.wechat import fairness
    from bot.wechat.fairness import ResidentLimits

    now = [1_000_000 * 60.0 + 5]
    monkeypatch.setattr(fairness.time, "time", lambda: now[0])
    client = aioredis.from_url(redis_url, decode_responses=True)
    other = aioredis.from_url(redis_url, decode_responses=True)
    try:
        a, b = ResidentLimits(3, redis=client), ResidentLimits(3, redis=other)  # two processes
        verdicts = [await limits.check("oFlood") for limits in (a, b, a, b, a)]
        assert verdicts == ["ok", "ok", "ok", "tell", "drop"]
        assert await a.check("oQuiet") == "ok"  # another resident: a count of its own
        window = "fair:resident:1000000"
        assert await client.hgetall(window) == {"oFlood": "5", "oQuiet": "1"}
        assert 0 < await client.ttl(window) <= 62
        batch = a.limiter._batch  # type: ignore[union-attr]
        assert batch is not None
        # a's hits: its first in the window sent the expiry, the next ones one command each.
        assert batch.commands == 4 + 1
        await client.delete(window)  # Redis restarted: the hash is made again, without expiry
        now[0] += 0.5
        await a.check("oFlood")
        assert await client.ttl(window) == -1 and batch.commands == 6  # within the second: no expiry yet
        now[0] += 0.6
        assert await a.check("oFlood") == "ok"
        assert 0 < await client.ttl(window) <= 62 and batch.commands == 8
        now[0] += 60  # the next window starts from nothing
        assert await b.check("oFlood") == "ok"
        assert await client.hgetall("fair:resident:1000001") == {"oFlood": "1"}
    finally:
        await client.delete("fair:resident:1000000", "fair:resident:1000001")
        await client.aclose()
        await other.aclose()


@pytest.mark.parametrize(
    ("name", "value"),
    [("BOT_LOG_FORMAT", "yaml"), ("BOT_WORKERS", "0"), ("BOT_RESIDENT_RATE", "-1"), ("BOT_OUTBOX_RATE", "0")],
)
def test_bad_operations_settings_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_mapping({name: value})
