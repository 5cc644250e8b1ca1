"""查进度's list (``reports.listed``) is one read: a page of the resident's unfinished tickets, each
with its newest public note (a staff-only note is never shown), and how many there are in all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.services import reports, tickets
from bot.services.dispatch import load_rules
from bot.storage.db import Database
from bot.storage.models import Resident, Ticket, TicketEvent
from tests.tickets.sql import statements

NOW = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


async def test_a_page_with_its_notes_and_total_is_one_read(db: Database) -> None:
    async with db.transaction() as s:
        person = Resident(openid="o_listed_1", subscribed=True, created_at=NOW)
        s.add(person)
        await s.flush()
        rid = person.id
    rules = load_rules()
    made = []
    for i, text in enumerate(["电梯又停了", "楼道灯坏了", "垃圾没人清", "路灯不亮"]):
        new = tickets.NewTicket(text=text, source_key=f"l{i}", category="物业服务", confidence=0.9)
        new.resident = None
        ticket = await db.run_sync_transaction(lambda c, n=new: tickets.make_ticket_in(c, n, rules, NOW)[0])
        made.append(ticket.id)
    async with db.transaction() as s:
        await s.execute(update(Ticket).values(resident_id=rid))
        await s.execute(update(Ticket).where(Ticket.id == made[3]).values(status="closed"))  # not listed
        later = NOW + timedelta(hours=1)
        s.add_all([
            TicketEvent(ticket_id=made[1], at=later, actor="staff", action="comment", note="明天上午去修", public=True),
            TicketEvent(ticket_id=made[1], at=later, actor="staff", action="comment", note="内部：缺零件", public=False),
            TicketEvent(ticket_id=made[2], at=later, actor="staff", action="comment", note="已安排", public=True),
        ])  # fmt: skip
    with statements() as sent:
        page, total = await reports.listed(db, rid, NOW, offset=0, limit=2)
    assert len(sent) == 1, sent
    assert total == 3 and [r.id for r in page] == [made[2], made[1]]
    assert [r.latest_note for r in page] == ["已安排", "明天上午去修"]
    rest, total = await reports.listed(db, rid, NOW, offset=2, limit=2)
    assert total == 3 and [(r.id, r.latest_note) for r in rest] == [(made[0], None)]
    beyond, total = await reports.listed(db, rid, NOW, offset=4, limit=2)
    assert (beyond, total) == ([], 3)
    none, total = await reports.listed(db, rid + 1, NOW)
    assert (none, total) == ([], 0)
