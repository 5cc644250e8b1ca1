"""On a SQLite file, ``run_sync_read`` reads on the caller's thread, on a read-only connection of its
own, each statement in autocommit: no hop to the database's thread, no BEGIN or ROLLBACK, and a
read that tries to write fails with nothing written."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, event, exc, func, insert, select

from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import InboundKey, utcnow


def add_key(key: str) -> Callable[[Connection], None]:
    def write(connection: Connection) -> None:
        now = utcnow()
        connection.execute(
            insert(InboundKey).values(
                key=key, openid="o_read", status="processing", created_at=now, updated_at=now
            )
        )

    return write


def count(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(InboundKey)).scalar_one())


async def test_a_read_runs_here_in_autocommit_and_sees_what_was_committed(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    await upgrade(db)
    try:
        await db.run_sync_transaction(add_key("first"))
        sent: list[str] = []
        seen: dict[str, Any] = {}

        def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            sent.append(statement)

        def read(connection: Connection) -> int:
            seen["thread"] = threading.get_ident()
            event.listen(connection, "before_cursor_execute", listen)
            try:
                found = count(connection)
                seen["in_transaction"] = connection.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
                return found
            finally:
                event.remove(connection, "before_cursor_execute", listen)

        assert await db.run_sync_read(read) == 1
        assert seen["thread"] == threading.get_ident()  # the event loop's: no hop
        assert seen["in_transaction"] is False  # autocommit: SQLite holds no transaction open
        assert not [s for s in sent if s.split()[0].upper() in ("BEGIN", "ROLLBACK", "COMMIT")]
        await db.run_sync_transaction(add_key("second"))
        assert await db.run_sync_read(count) == 2  # a commit on the database's thread shows at once
    finally:
        await db.dispose()


async def test_a_read_that_writes_fails_and_writes_nothing(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    await upgrade(db)
    try:
        with pytest.raises(exc.OperationalError):
            await db.run_sync_read(add_key("sneaked"))
        assert await db.run_sync_read(count) == 0
        await db.run_sync_transaction(add_key("written"))  # writes go on as before
        assert await db.run_sync_read(count) == 1
    finally:
        await db.dispose()
