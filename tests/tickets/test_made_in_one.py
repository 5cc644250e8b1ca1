"""PostgreSQL: a ticket is made in one statement (the day's counter, the ticket, its first timeline
entries and the resident's first-report time), beside the neighbours' read when its building and
category are known. Each race is forced: a second transaction holds the rows the statement needs
(the day's counter, the message's ticket, the resident's row) until it commits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, update

from bot.services import reports, tickets
from bot.services.dispatch import load_rules
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import Resident, Ticket, TicketCounter, TicketEvent
from tests.races import while_held
from tests.tickets.sql import statements

NOW = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)  # 09:00 in Beijing: day 20261122


@pytest.fixture
async def pg_db(database_url: str) -> Any:
    if not database_url.startswith("postgresql"):
        pytest.skip("the one-statement ticket is PostgreSQL's")
    db = Database(database_url)
    await upgrade(db)
    yield db
    await db.dispose()


async def _resident(db: Database, openid: str = "o_one_1") -> Resident:
    """A resident as the chat has it: read from the database (``reported_at`` loaded)."""
    async with db.transaction() as s:
        s.add(Resident(openid=openid, subscribed=True, created_at=NOW))
    async with db.session() as s:
        person = await s.scalar(select(Resident).where(Resident.openid == openid))
        assert person is not None
        return person


def _new(person: Resident | None, key: str, **changes: Any) -> tickets.NewTicket:
    fields: dict[str, Any] = {"text": "电梯又停了", "resident": person, "source_key": key, "category": "物业服务",
                              "confidence": 0.9}
    return tickets.NewTicket(**{**fields, **changes})


def _make(new: tickets.NewTicket, when: datetime = NOW) -> Callable[[Connection], Any]:
    rules = load_rules()
    return lambda connection: tickets.make_ticket_once_in(connection, new, rules, when)


async def _rows(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int | None]:
    async with db.session() as s:
        made = (await s.execute(select(Ticket.id, Ticket.number, Ticket.source_key).order_by(Ticket.id))).all()
        events = (await s.execute(
            select(TicketEvent.ticket_id, TicketEvent.action, TicketEvent.public, TicketEvent.data)
            .order_by(TicketEvent.id))).all()  # fmt: skip
        counter = await s.scalar(select(TicketCounter.value).where(TicketCounter.day == "20261122"))
    return [tuple(r) for r in made], [tuple(r) for r in events], counter


async def test_a_ticket_is_one_statement_with_its_number_timeline_and_first_report(pg_db: Database) -> None:
    db = pg_db
    person = await _resident(db)
    with statements() as sent:  # no building: no neighbours to read
        made = await db.run_sync_transaction(_make(_new(person, "m1")))
    assert made is not None
    ticket, duplicate = made
    assert len(sent) == 1 and sent[0].startswith("WITH counter AS"), sent
    assert duplicate is None and ticket.number == "GD20261122-0001" and ticket.id > 0
    found, events, counter = await _rows(db)
    assert found == [(ticket.id, "GD20261122-0001", "m1")] and counter == 1
    assert [(e[0], e[1]) for e in events] == [(ticket.id, "submitted"), (ticket.id, "dispatch")]
    assert events[0][3] == {"category": "物业服务", "confidence": 0.9, "urgency": "normal"}
    async with db.session() as s:
        assert await s.scalar(select(Resident.reported_at).where(Resident.id == person.id)) == NOW
    # A neighbour's report of the same: its neighbours read, the link and its private entry written.
    other = await _resident(db, "o_one_2")
    later = NOW + timedelta(minutes=5)
    with statements() as sent:
        second = await db.run_sync_transaction(_make(_new(other, "m2", building="3"), later))
    assert second is not None and len(sent) == 2
    assert second[0].number == "GD20261122-0002" and second[0].duplicate_of_id is None
    third = await db.run_sync_transaction(_make(_new(person, "m3", building="3", text="3号楼电梯又停了")))
    assert third is not None and third[0].duplicate_of_id == second[0].id and third[1] is not None
    _, events, _ = await _rows(db)
    assert [e[1] for e in events if e[0] == third[0].id] == ["submitted", "dispatch", "possible_duplicate"]
    async with db.session() as s:  # the first report's time is kept, not moved by a later ticket
        assert await s.scalar(select(Resident.reported_at).where(Resident.id == person.id)) == NOW


async def test_a_number_beyond_9999_keeps_every_digit(pg_db: Database) -> None:
    db = pg_db
    async with db.transaction() as s:
        s.add(TicketCounter(day="20261122", value=9999))
    made = await db.run_sync_transaction(_make(_new(None, "big")))
    assert made is not None and made[0].number == "GD20261122-10000"


async def test_the_same_message_made_meanwhile_makes_no_second_ticket(pg_db: Database) -> None:
    """The message's ticket inserted by a transaction not committed yet: the statement waits on the
    key, then inserts nothing — no second ticket, no timeline entries; the counter's number is
    skipped, as before."""
    db = pg_db
    person = await _resident(db)
    outcome = await while_held(db, _make(_new(person, "same")), _make(_new(person, "same", text="电梯还是不动")))
    assert outcome is None
    found, events, counter = await _rows(db)
    assert [r[1:] for r in found] == [("GD20261122-0001", "same")] and counter == 2
    assert [e[1] for e in events] == ["submitted", "dispatch"]


async def test_two_tickets_at_once_get_the_next_numbers(pg_db: Database) -> None:
    db = pg_db
    a, b = await _resident(db, "o_one_a"), await _resident(db, "o_one_b")
    second = await while_held(db, _make(_new(a, "a")), _make(_new(b, "b", text="垃圾桶满了没人清")))
    assert second is not None and second[0].number == "GD20261122-0002"
    found, _, counter = await _rows(db)
    assert [r[1] for r in found] == ["GD20261122-0001", "GD20261122-0002"] and counter == 2


async def test_a_first_report_made_meanwhile_keeps_its_time(pg_db: Database) -> None:
    """The resident's row said "never reported" when the message came, and another transaction,
    not committed yet, has set their first-report time: the statement waits on the row and then
    leaves that time as it is (its guard is checked again on the row as committed)."""
    db = pg_db
    person = await _resident(db)
    earlier = NOW - timedelta(minutes=1)

    def first_elsewhere(connection: Connection) -> None:
        connection.execute(update(Resident).where(Resident.id == person.id).values(reported_at=earlier))

    made = await while_held(db, first_elsewhere, _make(_new(person, "late")))
    assert made is not None
    async with db.session() as s:
        assert await s.scalar(select(Resident.reported_at).where(Resident.id == person.id)) == earlier
        assert await s.scalar(select(func.count()).select_from(Ticket)) == 1


async def test_the_chat_makes_its_ticket_in_one_statement_and_finds_it_again(pg_db: Database) -> None:
    """Through ``reports.create_in`` (the reply's transaction): a resident who never reported reads
    nothing first; the same message redone gets its ticket."""
    db = pg_db
    person = await _resident(db)
    rules = load_rules()
    new = _new(person, "chat-1")
    with statements() as sent:
        made = await db.run_sync_transaction(
            lambda c: reports.create_in(c, new, rules, NOW, unless_repeated=True)
        )
    assert len(sent) == 1 and made.number == "GD20261122-0001"
    again = await db.run_sync_transaction(lambda c: reports.create_in(c, new, rules, NOW, unless_repeated=False))
    assert (again.id, again.number) == (made.id, made.number)
    found, _, _ = await _rows(db)
    assert len(found) == 1
