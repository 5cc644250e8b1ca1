"""On PostgreSQL, ``run_sync_read``, ``run_sync_autocommit`` and ``run_sync_transaction`` check a
connection out, run the function and return the connection in one call through the greenlet
bridge: no task of their own (``AsyncConnection``'s close ran in a task under ``asyncio.shield``),
and the pooled connection comes back as it was lent (autocommit does not leak into the next
transaction; a failed transaction writes nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import Connection, func, insert, select

from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import InboundKey, utcnow
from tests.conftest import create_pg_database, need_service


@pytest.fixture
async def pg(_pg_databases: list[str]) -> AsyncIterator[Database]:
    need_service("PostgreSQL", "127.0.0.1", 5432)
    name = await create_pg_database()
    _pg_databases.append(name)
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    await upgrade(db)
    yield db
    await db.dispose()


def add_key(key: str) -> Callable[[Connection], None]:
    def write(connection: Connection) -> None:
        now = utcnow()
        connection.execute(
            insert(InboundKey).values(
                key=key, openid="o_bridge", status="processing", created_at=now, updated_at=now
            )
        )

    return write


def count(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(InboundKey)).scalar_one())


async def test_a_read_or_a_write_makes_no_task_of_its_own(pg: Database) -> None:
    loop = asyncio.get_running_loop()
    made: list[Any] = []
    default = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        if default is not None:
            return default(loop, coro, **kwargs)  # type: ignore[return-value]
        return asyncio.Task(coro, loop=loop, **kwargs)

    await pg.run_sync_read(count)  # the pool has a connection
    loop.set_task_factory(counting)
    try:
        await pg.run_sync_transaction(add_key("k1"))
        await pg.run_sync_autocommit(add_key("k2"))
        assert await pg.run_sync_read(count) == 2
    finally:
        loop.set_task_factory(default)
    assert made == []


async def test_the_pooled_connection_comes_back_as_it_was_lent(pg: Database) -> None:
    # One connection in the pool is reused by each call (last in, first out).
    await pg.run_sync_autocommit(add_key("auto"))

    def fails(connection: Connection) -> None:
        add_key("rolled back")(connection)
        raise RuntimeError("after the write")

    with pytest.raises(RuntimeError):
        await pg.run_sync_transaction(fails)  # not left in autocommit: the insert is rolled back
    with pytest.raises(RuntimeError):
        await pg.run_sync_autocommit(fails)  # autocommit: its insert stands
    await pg.run_sync_transaction(add_key("committed"))

    def keys(connection: Connection) -> list[str]:
        return sorted(connection.execute(select(InboundKey.key)).scalars())

    assert await pg.run_sync_read(keys) == ["auto", "committed", "rolled back"]
    async with pg.engine.connect() as conn:  # an ordinary checkout: a transaction again
        assert conn.sync_connection is not None
        assert (await conn.get_isolation_level()) == "READ COMMITTED"
