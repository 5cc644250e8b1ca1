"""On SQLite, ``run_sync_transaction`` waits for another process's write lock on the database's
thread: the event loop keeps serving meanwhile."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

from sqlalchemy import Connection, func, insert, select

from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import InboundKey, utcnow


def add_key(key: str):  # type: ignore[no-untyped-def]
    def write(connection: Connection) -> int:
        now = utcnow()
        connection.execute(
            insert(InboundKey).values(key=key, openid="o_lock", status="processing", created_at=now, updated_at=now)
        )
        return int(connection.execute(select(func.count()).select_from(InboundKey)).scalar_one())

    return write


async def test_a_write_waits_for_another_connections_lock_without_blocking_the_loop(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    await upgrade(db)
    try:
        assert await db.run_sync_transaction(add_key("first")) == 1
        path = sqlite_url.split(":///", 1)[1]
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process's writer, as far as SQLite can tell
        release = threading.Timer(0.5, other.execute, ("COMMIT",))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        counting = asyncio.create_task(ticker())
        started = time.monotonic()
        release.start()
        try:
            assert await db.run_sync_transaction(add_key("second")) == 2
        finally:
            release.join()
            counting.cancel()
            other.close()
        assert time.monotonic() - started >= 0.4  # it did wait for the lock...
        assert ticks >= 10  # ...while the event loop went on
        assert await db.run_sync_read(
            lambda c: sorted(c.execute(select(InboundKey.key)).scalars())
        ) == ["first", "second"]
    finally:
        await db.dispose()
