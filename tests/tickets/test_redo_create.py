"""A message redone after its process died gets the ticket it made, whether the chat makes it with
the own-repeat check (a report with its place) or without (the phone that completes a report), and
whether that ticket is still open or was finished meanwhile: one ticket, never a second."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from bot.services import reports, tickets
from bot.services.dispatch import load_rules
from bot.storage.db import Database
from bot.storage.models import Resident, Ticket

NOW = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


async def _resident(db: Database) -> Resident:
    async with db.transaction() as s:
        person = Resident(openid="o_redo_1", subscribed=True, created_at=NOW)
        s.add(person)
        await s.flush()
        return person


async def _count(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Ticket)) or 0)


@pytest.mark.parametrize("unless_repeated", [True, False])
@pytest.mark.parametrize("finished", [False, True])
async def test_a_redone_message_gets_the_ticket_it_made(db: Database, unless_repeated: bool, finished: bool) -> None:
    rules = load_rules()
    person = await _resident(db)
    new = tickets.NewTicket(text="3号楼电梯又停了", resident=person, building="3", category="电梯",
                            confidence=0.9, source_key="msg:redo:1")
    made = await reports.create(db, new, rules, NOW, unless_repeated=unless_repeated)
    assert not made.repeated
    if finished:  # closed by staff before the redo: not among the open reports any more
        async with db.transaction() as s:
            await s.execute(update(Ticket).where(Ticket.id == made.id).values(status="closed"))
    again = await reports.create(db, dataclasses.replace(new, text="电梯又坏了"), rules, NOW,
                                 unless_repeated=unless_repeated)
    assert (again.id, again.number, again.repeated) == (made.id, made.number, False)
    assert again.status == ("closed" if finished else made.status)
    assert await _count(db) == 1
    # Another message with the same words is the resident's own repeat (or, finished, a new ticket).
    other = await reports.create(db, dataclasses.replace(new, source_key="msg:redo:2"), rules, NOW,
                                 unless_repeated=True)
    assert other.repeated == (not finished)
    assert await _count(db) == (2 if finished else 1)


@pytest.mark.parametrize("unless_repeated", [True, False])
@pytest.mark.parametrize("finished", [False, True])
async def test_in_the_replys_transaction_a_message_that_made_its_ticket_makes_no_second(
    db: Database, unless_repeated: bool, finished: bool
) -> None:
    """The chat makes a ticket in the transaction that stores its reply (``reports.create_in``); a
    message whose ticket was made already (in a transaction of its own, as before) and is redone
    gets that ticket, open or finished, with or without the own-repeat check."""
    rules = load_rules()
    person = await _resident(db)
    new = tickets.NewTicket(text="3号楼电梯又停了", resident=person, building="3", category="电梯",
                            confidence=0.9, source_key="msg:redo:1")
    made = await reports.create(db, new, rules, NOW)
    if finished:
        async with db.transaction() as s:
            await s.execute(update(Ticket).where(Ticket.id == made.id).values(status="closed"))
    again = await db.run_sync_transaction(
        lambda connection: reports.create_in(
            connection, dataclasses.replace(new, text="电梯又坏了"), rules, NOW, unless_repeated=unless_repeated
        )
    )
    assert (again.id, again.number, again.repeated) == (made.id, made.number, False)
    assert await _count(db) == 1
    first = await db.run_sync_transaction(
        lambda connection: reports.create_in(
            connection, dataclasses.replace(new, text="路灯不亮", source_key="msg:redo:3"), rules, NOW
        )
    )
    assert first.id != made.id and first.number != made.number and not first.repeated
    assert await _count(db) == 2
