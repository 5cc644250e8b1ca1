"""``savepoint``: what a block writes is undone when it raises and the transaction goes on, nested
blocks too, on SQLite (one SQL text sent on the driver's cursor) and PostgreSQL (``begin_nested``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, select
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database, savepoint
from bot.storage.models import Resident

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class Refused(Exception):
    pass


def _add(conn: Connection, openid: str) -> None:
    conn.execute(insert(Resident), {"openid": openid, "subscribed": True, "created_at": T0, "updated_at": T0})


async def _openids(db: Database) -> list[str]:
    return await db.run_sync_read(lambda c: list(c.execute(select(Resident.openid).order_by(Resident.openid)).scalars()))


async def test_a_block_that_raises_leaves_nothing_and_the_transaction_goes_on(db: Database) -> None:
    def write(conn: Connection) -> None:
        _add(conn, "o_a")
        with pytest.raises(Refused), savepoint(conn):
            _add(conn, "o_b")
            raise Refused
        with savepoint(conn):
            _add(conn, "o_c")
        _add(conn, "o_d")

    await db.run_sync_transaction(write)
    assert await _openids(db) == ["o_a", "o_c", "o_d"]


async def test_nested_blocks(db: Database) -> None:
    def write(conn: Connection) -> None:
        with savepoint(conn):
            _add(conn, "o_1")
            with pytest.raises(Refused), savepoint(conn):
                _add(conn, "o_2")
                raise Refused
            with savepoint(conn):
                _add(conn, "o_3")
            _add(conn, "o_4")
        with pytest.raises(Refused), savepoint(conn):  # an outer block undone with the inner it released
            _add(conn, "o_5")
            with savepoint(conn):
                _add(conn, "o_6")
            raise Refused
        _add(conn, "o_7")

    await db.run_sync_transaction(write)
    assert await _openids(db) == ["o_1", "o_3", "o_4", "o_7"]


async def test_a_broken_constraint_inside_is_sqlalchemys_error_and_undone(db: Database) -> None:
    def write(conn: Connection) -> None:
        _add(conn, "o_x")
        with pytest.raises(IntegrityError), savepoint(conn):
            _add(conn, "o_y")
            _add(conn, "o_x")  # the unique openid
        _add(conn, "o_z")

    await db.run_sync_transaction(write)
    assert await _openids(db) == ["o_x", "o_z"]


async def test_a_released_block_is_undone_with_its_transaction(db: Database) -> None:
    """RELEASE ends the savepoint, not the transaction: when the transaction fails after a block
    completed, the block's writes are undone with it (had SAVEPOINT opened the transaction itself,
    RELEASE would have committed them)."""

    def write(conn: Connection) -> None:
        with savepoint(conn):
            _add(conn, "o_kept_then_undone")
        _add(conn, "o_after")
        raise Refused

    with pytest.raises(Refused):
        await db.run_sync_transaction(write)
    assert await _openids(db) == []


async def test_on_the_async_drivers_connection(db: Database) -> None:
    """Through the async engine's connection (aiosqlite, asyncpg) as well as the writing thread's."""

    def write(conn: Connection) -> None:
        with pytest.raises(Refused), savepoint(conn):
            _add(conn, "o_async_1")
            raise Refused
        _add(conn, "o_async_2")

    async with db.engine.connect() as conn:
        await conn.run_sync(write)
        await conn.commit()
    assert await _openids(db) == ["o_async_2"]


async def test_sqlite_savepoints_compile_nothing(sqlite_url: str) -> None:
    """On SQLite a savepoint is sent on the driver's cursor, never compiled by SQLAlchemy: its
    ``begin_nested`` compiles every savepoint's clause anew, each under a new name."""
    from bot.storage.migrate import upgrade

    db = Database(sqlite_url)
    await upgrade(db)
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    assert db._sync_engine is not None
    event.listen(db._sync_engine, "before_cursor_execute", count)

    def write(conn: Connection) -> None:
        for i in range(20):
            with savepoint(conn):
                _add(conn, f"o_{i:02d}")
            try:
                with savepoint(conn):
                    raise Refused
            except Refused:
                pass

    try:
        await db.run_sync_transaction(write)
        assert not [s for s in sent if "SAVEPOINT" in s.upper()]
        assert len(await _openids(db)) == 20
    finally:
        await db.dispose()
