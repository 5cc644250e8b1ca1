"""The journal's claim (bot/handler/journal.py): a batch's keys are inserted at once; a key already
claimed, or twice in one batch, is a retry. On PostgreSQL the keys go in as arrays, so a claim of
any batch size is one SQL text (each text is prepared on the server once per connection)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event, select

from bot.clock import ManualClock
from bot.handler.dispatcher import Preloaded
from bot.handler.journal import Claim, Journal
from bot.handler.state import DatabaseStateStorage, StateRecord
from bot.storage.db import Database
from bot.storage.models import InboundKey, OutboxMessage, Resident

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def new(key: str, openid: str) -> Claim:
    """A claim of message ``key`` from ``openid``."""
    return Claim(f"msg:{key}", openid, T0, {"Content": key, "FromUserName": openid})


async def test_claims_of_any_batch_size_win_once(db: Database) -> None:
    journal = Journal(db, DatabaseStateStorage(db, ManualClock(T0)))
    texts: set[str] = set()

    def sent(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO INBOUND_KEYS"):
            texts.add(statement)

    def claim(batch: list[Claim]) -> Any:
        def run(conn: Connection) -> list[Any]:
            event.listen(conn, "before_cursor_execute", sent)
            try:
                return journal.apply(conn, batch)
            finally:
                event.remove(conn, "before_cursor_execute", sent)

        return db.run_sync_transaction(run)

    seen: list[str] = []
    for size in range(1, 13):
        keys = [f"{size}-{i}" for i in range(size)]
        batch = [new(k, f"o_{i % 5}") for i, k in enumerate(keys)]
        batch.append(new(keys[0], "o_0"))  # the same message twice in one batch: the second is a retry
        if seen:
            batch.append(new(seen[-1], "o_1"))  # claimed by an earlier batch: a retry
        results = await claim(batch)
        assert all(isinstance(r, Preloaded) and r.resident is not None for r in results[:size])
        assert {r.resident.openid for r in results[:size]} == {f"o_{i % 5}" for i in range(size)}
        assert results[size:] == [None] * (len(batch) - size)
        seen.extend(keys)

    async with db.session() as s:
        stored = (await s.execute(select(InboundKey.key, InboundKey.status, InboundKey.inbound))).all()
        assert sorted(k for k, _, _ in stored) == sorted(f"msg:{k}" for k in seen)
        assert {status for _, status, _ in stored} == {"processing"}
        assert all(inbound["Content"] == key[4:] for key, _, inbound in stored)
        assert len((await s.scalars(select(Resident))).all()) == 5  # first contact made each once
    if db.dialect == "postgresql":
        assert len(texts) == 1, len(texts)


async def test_a_claim_on_postgresql_is_one_statement_in_autocommit(db: Database) -> None:
    """``claim_in_one``: the keys, the residents and the undelivered notices of the keys won in one
    statement outside any transaction; a first contact is created; retries get None."""
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's claim")
    clock = ManualClock(T0)
    states = DatabaseStateStorage(db, clock)
    journal = Journal(db, states)
    async with db.transaction() as s:
        s.add(Resident(openid="o_known", subscribed=True, created_at=T0))
        for i, status in enumerate(["expired", "sent", "expired"]):
            s.add(OutboxMessage(openid="o_known", payload={"text": {"content": f"通知{i}"}}, status=status))
    await states.set("o_known", StateRecord("complaint:place", {"text": "电梯坏了"}))
    sent: list[str] = []

    def claim(batch: list[Claim]) -> Any:
        def run(conn: Connection) -> list[Any]:
            def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                sent.append(statement.split()[0].upper())

            event.listen(conn, "before_cursor_execute", seen)
            try:
                return journal.claim_in_one(conn, batch)
            finally:
                event.remove(conn, "before_cursor_execute", seen)

        return db.run_sync_autocommit(run)

    first = await claim([new("a", "o_known"), new("b", "o_new"), new("a", "o_known")])
    assert first[2] is None  # the same key twice in one batch
    known, newcomer = first[0], first[1]
    assert isinstance(known, Preloaded) and isinstance(newcomer, Preloaded)
    assert known.resident is not None and known.resident.openid == "o_known"
    assert [payload["text"]["content"] for _, payload in known.notices] == ["通知0", "通知2"]
    assert known.state == StateRecord("complaint:place", {"text": "电梯坏了"})
    assert newcomer.resident is not None and newcomer.resident.openid == "o_new" and newcomer.resident.id
    assert newcomer.notices == [] and newcomer.state == StateRecord()
    sent.clear()
    again = await claim([new("a", "o_known"), new("c", "o_new")])
    assert again[0] is None  # claimed before: a retry
    assert isinstance(again[1], Preloaded) and again[1].resident is not None
    # The claim with the residents and notices, then the states kept in the database; no BEGIN.
    assert sent == ["WITH", "SELECT"], sent
    async with db.session() as s:
        stored = dict((await s.execute(select(InboundKey.key, InboundKey.status))).all())
    assert stored == {"msg:a": "processing", "msg:b": "processing", "msg:c": "processing"}
