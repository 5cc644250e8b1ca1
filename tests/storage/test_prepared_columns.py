"""Prepared statements read every column type the models use, on SQLite and PostgreSQL alike (a
float column, whose result processor on asyncpg needs the driver's type code, included)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, insert, select

from bot.storage.db import Database
from bot.storage.models import Message, Resident
from bot.storage.prepared import Prepared

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


async def test_a_float_column_read_on_both_backends(db: Database) -> None:
    logged = Prepared(
        select(Message.confidence, Message.intent, Message.created_at).where(Message.dedup_key == bindparam("key"))
    )

    def write(conn: Connection) -> list[tuple[object, ...]]:
        conn.execute(insert(Resident), {"openid": "o_f", "subscribed": True, "created_at": T0, "updated_at": T0})
        resident_id = conn.execute(select(Resident.id).where(Resident.openid == "o_f")).scalar_one()
        conn.execute(
            insert(Message),
            {"resident_id": resident_id, "direction": "in", "msg_type": "text", "content": "你好", "payload": {},
             "intent": "greeting", "confidence": 0.875, "dedup_key": "m1", "created_at": T0},
        )  # fmt: skip
        return logged.rows(conn, {"key": "m1"})

    assert await db.run_sync_transaction(write) == [(0.875, "greeting", T0)]
