"""SQLite's WAL is checkpointed by a thread of its own (bot/storage/checkpoint.py), not by the
commit that fills ``wal_autocheckpoint`` pages on the database's one writing thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from bot.storage.db import WAL_CHECKPOINT_PAGES, Database


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


@pytest.mark.asyncio
async def test_commits_are_checkpointed_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        def create(connection: Connection) -> None:
            connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))

        await db.run_sync_transaction(create)
        assert "sqlite-checkpoint" in _threads()
        await asyncio.sleep(1.5)  # the schema's own pages reach the file
        before = path.stat().st_size

        def write(connection: Connection) -> None:
            connection.execute(text("INSERT INTO t (body) VALUES (:b)"), [{"b": "x" * 3000}] * 50)

        for _ in range(20):  # about 1,000 pages: far below the commits' own checkpoint bound
            await db.run_sync_transaction(write)
        assert 20 * 50 * 3000 / 4096 < WAL_CHECKPOINT_PAGES / 5
        for _ in range(100):  # in a WAL database only a checkpoint writes to the database file
            if path.stat().st_size > before + 2_000_000:
                break
            await asyncio.sleep(0.1)
        assert path.stat().st_size > before + 2_000_000, "the WAL was not checkpointed into the file"

        def count(connection: Connection) -> int:
            return int(connection.execute(text("SELECT count(*) FROM t")).scalar_one())

        assert await db.run_sync_read(count) == 1000
    finally:
        await db.dispose()
    assert "sqlite-checkpoint" not in _threads()
