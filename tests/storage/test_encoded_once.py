"""Values the hot path encodes once and stores in several places read back as if each had been
encoded on its own: a JSON value given as its text made beforehand (``json_text``), and a time
object stored in several columns (UTCDateTime formats a recently stored object once)."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, text

from bot.storage.db import Database, JSONText, json_dumps, json_text
from bot.storage.models import Message, Resident
from bot.storage.prepared import Prepared

T0 = datetime(2026, 12, 5, 8, 30, 15, 123456, tzinfo=UTC)


def test_json_text_is_stored_as_it_is() -> None:
    value = {"kind": "text", "content": "您好，报修已收到 \"3号楼\"", "n": [1, 2.5, None, True]}
    encoded = json_text(value)
    assert isinstance(encoded, JSONText)
    assert encoded == json.dumps(value, ensure_ascii=False)
    assert json_dumps(encoded) == encoded and type(json_dumps(encoded)) is str
    # A plain string is a JSON value of its own: encoded as one, not taken for JSON text.
    assert json_dumps("[1]") == '"[1]"'


async def test_json_text_and_times_read_back_as_sqlalchemy_stores_them(db: Database) -> None:
    log = Prepared(insert(cast(Table, Message.__table__)))
    payload = {"kind": "text", "content": "报修单号 BX-001，师傅会尽快联系您"}
    east = datetime(2026, 12, 5, 16, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))  # = T0

    resident: list[int] = []

    def row(**given: Any) -> dict[str, Any]:
        return {"resident_id": resident[0], "direction": "out", "msg_type": "text", "event": None,
                "content": None, "payload": payload, "intent": None, "confidence": None, "dedup_key": None,
                "via": "passive", "created_at": T0, **given}

    def write(conn: Connection) -> list[Any]:
        resident.append(conn.execute(
            insert(Resident).values(openid="o_t", subscribed=True).returning(Resident.id)
        ).scalar_one())
        first = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
        log.many(conn, [row(created_at=first, dedup_key="a"), row(created_at=first, dedup_key="b")])
        # A time object gone and another made (CPython may give it the id the first one had):
        # stored with its own value.
        del first
        gc.collect()
        later = [datetime(2026, 1, 2, 3, 4, 5, 7 + i, tzinfo=UTC) for i in range(50)]
        log.many(conn, [row(created_at=t, dedup_key=f"c{i}") for i, t in enumerate(later)])
        log.many(conn, [row(created_at=east, dedup_key="d"), row(payload=json_text(payload), dedup_key="e")])
        return [tuple(r) for r in conn.execute(
            select(Message.dedup_key, Message.created_at, Message.payload).order_by(Message.id)
        )]

    rows = await db.run_sync_transaction(write)
    by_key = {key: (at, stored) for key, at, stored in rows}
    assert by_key["a"][0] == by_key["b"][0] == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert [by_key[f"c{i}"][0].microsecond for i in range(50)] == [7 + i for i in range(50)]
    assert by_key["d"][0] == T0 and by_key["d"][0].tzinfo is not None
    assert by_key["e"][1] == by_key["d"][1] == payload  # the text given: the same JSON, not a string of it
    if db.is_sqlite:  # the same text in the file as a value SQLAlchemy encoded itself
        async with db.session() as s:
            texts = (await s.execute(text("SELECT payload, created_at FROM messages WHERE dedup_key IN ('d', 'e')"))).all()
        assert texts[0] == texts[1] == (json.dumps(payload, ensure_ascii=False), "2026-12-05 08:30:15.123456")


def test_a_pending_message_is_the_json_of_its_dict() -> None:
    """The claim stores ``Inbound.to_json()`` (its ``raw`` made once, then reused for the message
    log): the same text as encoding ``to_dict()``, and ``from_dict`` gives the message back."""
    from bot.messages import Inbound

    messages = [
        Inbound("o_1", "gh_1", "text", 1765000000, 7, content='路灯坏了 "3号楼" \\ </xml>',
                raw={"Content": '路灯坏了 "3号楼" \\ </xml>', "MsgId": "7", "MsgType": "text"}),
        Inbound("o_2", "gh_1", "event", 1765000001, event="click", event_key="MENU_POINTS",
                raw={"Event": "CLICK", "EventKey": "MENU_POINTS"}),
        Inbound("o_3", "gh_1", "event", 1765000002, event="subscribe"),  # no raw fields at all
    ]
    for message in messages:
        assert message.to_json() == json.dumps(message.to_dict(), ensure_ascii=False)
        assert message.raw_json == json.dumps(message.raw, ensure_ascii=False)
        assert Inbound.from_dict(json.loads(message.to_json())) == message
