"""Group commit on a real database: concurrent items share a transaction, each gets its own result,
and an item that fails does so alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database
from bot.storage.groupcommit import GroupCommit
from bot.storage.models import InboundKey, utcnow


def write_keys(connection: Connection, keys: Sequence[str]) -> list[str]:
    now = utcnow()
    for key in keys:
        connection.execute(
            insert(InboundKey).values(key=key, openid="o_gc", status="processing", created_at=now, updated_at=now)
        )
    return [key.upper() for key in keys]


async def stored(db: Database) -> set[str]:
    async with db.session() as s:
        return set(await s.scalars(select(InboundKey.key)))


async def test_concurrent_items_share_one_transaction(db: Database) -> None:
    writes: GroupCommit[str, str] = GroupCommit(db, write_keys)
    keys = [f"k{i}" for i in range(12)]
    results = await asyncio.gather(*(writes.submit(k) for k in keys))
    assert results == [k.upper() for k in keys]
    assert writes.batches == 1 and writes.items == 12
    assert await stored(db) == set(keys)
    # A lone item later is written at once, in a batch of its own.
    assert await writes.submit("late") == "LATE"
    assert writes.batches == 2


async def test_a_failing_item_fails_alone(db: Database) -> None:
    writes: GroupCommit[str, str] = GroupCommit(db, write_keys)
    await writes.submit("taken")
    keys = ["a", "b", "taken", "c"]  # "taken" violates the primary key: the batch fails, then only it
    results = await asyncio.gather(*(writes.submit(k) for k in keys), return_exceptions=True)
    assert results[:2] == ["A", "B"] and results[3] == "C"
    assert isinstance(results[2], IntegrityError)
    assert await stored(db) == {"taken", "a", "b", "c"}
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(InboundKey)) == 4


async def test_a_batch_runs_beside_async_writers(db: Database) -> None:
    """The hot path's synchronous transactions and the async sessions share the database (on
    SQLite the same write lock): interleaved, neither loses a row nor deadlocks."""
    writes: GroupCommit[str, str] = GroupCommit(db, write_keys)

    async def async_writer(i: int) -> None:
        async with db.transaction() as s:
            now = utcnow()
            s.add(InboundKey(key=f"async{i}", openid="o_gc", status="processing", created_at=now, updated_at=now))

    await asyncio.gather(*(writes.submit(f"batch{i}") for i in range(20)), *(async_writer(i) for i in range(20)))
    assert await stored(db) == {f"batch{i}" for i in range(20)} | {f"async{i}" for i in range(20)}


async def test_batches_are_measured_for_metrics(db: Database) -> None:
    from prometheus_client import REGISTRY

    def value(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"batch": "write_keys"}) or 0.0

    before = {n: value(n) for n in ("bot_group_commit_items_sum", "bot_group_commit_items_count",
                                     "bot_group_commit_wait_seconds_count", "bot_group_commit_seconds_count")}
    writes: GroupCommit[str, str] = GroupCommit(db, write_keys)
    await asyncio.gather(*(writes.submit(f"m{i}") for i in range(12)))
    assert value("bot_group_commit_items_sum") == before["bot_group_commit_items_sum"] + 12
    assert value("bot_group_commit_items_count") == before["bot_group_commit_items_count"] + 1
    assert value("bot_group_commit_wait_seconds_count") == before["bot_group_commit_wait_seconds_count"] + 1
    assert value("bot_group_commit_seconds_count") == before["bot_group_commit_seconds_count"] + 1
