"""A (un)subscribe event writes only the subscription's columns and the last-inbound time to the
resident's row (``residents.arrived``, from the ``resident`` middleware): a column another
transaction set after the message read the row — a first ticket's ``reported_at``, a scene's
building — keeps its value. (The row as read was written back before, undoing them.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import select, update

from bot.handler import middlewares
from bot.handler.context import Context
from bot.handler.state import FSM, StateRecord
from bot.messages import Inbound, Out
from bot.services import residents
from bot.storage.db import Database
from bot.storage.models import Resident

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
OPENID = "o_columns_1"


async def _read(db: Database) -> Resident | None:
    """The row as the message's claim read it (detached)."""
    async with db.session() as s:
        return await s.scalar(select(Resident).where(Resident.openid == OPENID))


async def _event(db: Database, row: Resident | None, event: str) -> Resident:
    """The ``resident`` middleware for an event of ``OPENID`` whose claim read ``row``."""
    inbound = Inbound(openid=OPENID, account="gh_x", msg_type="event", create_time=0, event=event)
    rt = SimpleNamespace(db=db, clock=SimpleNamespace(now=lambda: NOW))
    ctx = Context(inbound=inbound, rt=cast(Any, rt), fsm=FSM(StateRecord()), resident=row)

    async def nxt(_ctx: Context) -> list[Out]:
        return []

    await middlewares.resident(ctx, nxt)
    assert ctx.resident is not None
    return ctx.resident


async def _meanwhile(db: Database) -> None:
    """What other transactions committed after the claim read the row."""
    async with db.transaction() as s:
        await s.execute(update(Resident).where(Resident.openid == OPENID).values(reported_at=T0, building="3号楼"))


@pytest.mark.parametrize("event", ["subscribe", "unsubscribe"])
async def test_an_event_keeps_columns_set_after_its_row_was_read(db: Database, event: str) -> None:
    async with db.transaction() as s:
        s.add(Resident(openid=OPENID, subscribed=event == "unsubscribe", created_at=T0))
    row = await _read(db)
    assert row is not None and row.reported_at is None
    await _meanwhile(db)
    seen = await _event(db, row, event)
    stored = await _read(db)
    assert stored is not None
    assert (stored.reported_at, stored.building) == (T0, "3号楼")
    assert stored.subscribed == (event == "subscribe") and stored.last_inbound_at == NOW
    if event == "subscribe":
        assert stored.subscribed_at == NOW and stored.unsubscribed_at is None
    else:
        assert stored.unsubscribed_at == NOW
    # The chat goes on with the row as it is now.
    assert (seen.id, seen.reported_at, seen.building, seen.subscribed) == (
        stored.id, T0, "3号楼", stored.subscribed,
    )  # fmt: skip


async def test_a_first_contact_is_created_and_one_created_meanwhile_is_updated(db: Database) -> None:
    made = await _event(db, None, "subscribe")
    stored = await _read(db)
    assert stored is not None and stored.id == made.id
    assert stored.subscribed and stored.subscribed_at == NOW and stored.last_inbound_at == NOW
    # The message read no row, but another request created it meanwhile: that row is updated.
    again = await db.run_sync_autocommit(
        lambda c: residents.arrived_in(c, OPENID, {"subscribed": False, "unsubscribed_at": NOW}, NOW)
    )
    assert again.id == made.id and again.subscribed is False and again.unsubscribed_at == NOW


async def test_a_subscribe_waiting_on_a_first_ticket_keeps_its_time(db: Database) -> None:
    """PostgreSQL: the first ticket's transaction holds the resident's row (its reported_at set,
    not committed yet) while the subscribe event comes: the event waits, then writes its columns
    and leaves reported_at as that transaction committed it."""
    if not db.url.startswith("postgresql"):
        pytest.skip("row locks held across transactions: PostgreSQL")
    async with db.transaction() as s:
        s.add(Resident(openid=OPENID, subscribed=False, created_at=T0))
    row = await _read(db)
    async with db.engine.connect() as conn:
        await conn.begin()
        await conn.execute(update(Resident).where(Resident.openid == OPENID).values(reported_at=T0))
        task = asyncio.create_task(_event(db, row, "subscribe"))
        await asyncio.sleep(0.5)
        assert not task.done()  # waiting on the row the first ticket's transaction holds
        await conn.commit()
    seen = await task
    stored = await _read(db)
    assert stored is not None and stored.reported_at == T0 and stored.subscribed and seen.reported_at == T0
