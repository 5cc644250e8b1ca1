"""Concurrent requests' Redis commands go in one pipeline, each caller getting its own results."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.storage.redisbatch import RedisBatch, command


async def test_concurrent_commands_share_a_pipeline_and_keep_their_own_results(redis_url: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    batch = RedisBatch(client)
    try:
        await client.set("b:text", "不是数字")

        async def count(i: int) -> list[object]:
            return await batch.execute(command("incr", f"b:n{i % 3}"), command("expire", f"b:n{i % 3}", 60, nx=True))

        results = await asyncio.gather(*(count(i) for i in range(30)), batch.call("get", "b:text"))
        assert results[-1] == "不是数字"
        counts = [r[0] for r in results[:-1]]
        assert sorted(counts) == sorted(n for _ in range(3) for n in range(1, 11))  # each key counted to 10
        assert batch.pipelines == 1 and batch.commands == 61
        # A command Redis refuses fails its own caller only.
        refused, fine = await asyncio.gather(
            batch.call("incr", "b:text"), batch.call("get", "b:n0"), return_exceptions=True
        )
        assert isinstance(refused, ResponseError) and fine == "10"
        # A lone command waits for nobody.
        assert await batch.call("get", "b:n1") == "10"
        assert await batch.execute() == []
    finally:
        await client.delete("b:text", "b:n0", "b:n1", "b:n2")
        await client.aclose()


async def test_an_unreachable_redis_raises_in_every_caller() -> None:
    from tests.conftest import free_port

    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    batch = RedisBatch(client)
    try:
        results = await asyncio.gather(*(batch.call("get", f"k{i}") for i in range(5)), return_exceptions=True)
        assert all(isinstance(r, OSError | ConnectionError) or type(r).__module__.startswith("redis") for r in results)
        assert all(isinstance(r, Exception) for r in results)
        with pytest.raises(Exception):  # noqa: B017  (whatever redis-py raises for a refused connection)
            await batch.call("get", "k")
    finally:
        await client.aclose()


async def test_a_rate_limit_count_and_a_state_read_at_one_moment_share_a_pipeline(redis_url: str) -> None:
    """A process's users of one Redis client share its batch: a message's rate-limit count goes out
    with another message's conversation state read in one round trip, not two."""
    from bot.handler.state import RedisStateStorage, StateRecord
    from bot.wechat.fairness import ResidentLimits

    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        states, limits = RedisStateStorage(client, prefix="b:state:"), ResidentLimits(5, redis=client)
        await states.set("oShared", StateRecord("booking", {"step": 2}))
        assert limits.limiter is not None and limits.limiter._batch is not None
        batches = {id(b): b for b in (states.batch, limits.limiter._batch)}.values()
        before = sum(b.pipelines for b in batches)
        verdict, record = await asyncio.gather(limits.check("oFlooder"), states.get("oShared"))
        assert verdict == "ok" and record == StateRecord("booking", {"step": 2})
        assert sum(b.pipelines for b in batches) - before == 1
    finally:
        await client.delete("b:state:oShared")
        await client.aclose()
