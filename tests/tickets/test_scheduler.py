"""Deadlines with a controllable clock: reminders, escalation once with two schedulers, auto-close."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, select

from bot.runtime import Runtime
from bot.services.jobs import JOBS
from bot.services.scheduler import Scheduler
from bot.storage.models import SchedulerLease
from tests.tickets.conftest import Desk


def runtime(desk: Desk) -> Runtime:
    from bot.appkeys import RUNTIME

    rt: Runtime = desk.svc.runner.app[RUNTIME]
    return rt


async def report(desk: Desk, openid: str, text: str) -> int:
    reply = await desk.say(openid, text)
    assert "GD" in reply, reply
    tickets = await desk.tickets()
    return tickets[-1].id


async def test_reminder_then_escalation_once_with_two_schedulers(desk: Desk) -> None:
    rt = runtime(desk)
    ticket_id = await report(desk, "o_sched", "家里停水了，8号楼2单元，电话13900001111")
    (ticket,) = await desk.tickets()
    assert ticket.status == "dispatched" and ticket.category == "水电气暖"
    assert (ticket.deadline - ticket.created_at) == timedelta(hours=24)
    a, b = Scheduler(rt, JOBS), Scheduler(rt, JOBS)

    # Early on: nothing to do.
    desk.clock.advance(timedelta(hours=1))
    assert sum((await a.tick()).values()) == 0

    # 75% of the time gone: one reminder, however many schedulers tick.
    desk.clock.advance(timedelta(hours=18, minutes=30))
    results = await asyncio.gather(a.tick(), b.tick())
    # (the service's own background scheduler is a third instance and may be the one that acts)
    assert sum(r.get("tickets.remind", 0) for r in results) <= 1
    desk.clock.advance(timedelta(minutes=2))
    await asyncio.gather(a.tick(), b.tick())
    reminders = [e for e in await desk.events(ticket_id) if e.action == "reminder"]
    assert len(reminders) == 1 and not reminders[0].public

    # Past the deadline: escalated exactly once, supervisors notified, the resident told.
    desk.clock.advance(timedelta(hours=5))
    results = await asyncio.gather(a.tick(), b.tick())
    assert sum(r.get("tickets.escalate", 0) for r in results) <= 1
    for _ in range(3):
        desk.clock.advance(timedelta(minutes=5))
        await asyncio.gather(a.tick(), b.tick())
    (ticket,) = await desk.tickets()
    assert ticket.status == "escalated"
    escalations = [e for e in await desk.events(ticket_id) if e.action == "escalate"]
    assert len(escalations) == 1 and escalations[0].data == {"notify_role": "supervisor"}
    assert escalations[0].actor == "system"
    texts = await desk.pushed("o_sched", "督办")
    assert sum("督办" in t for t in texts) == 1
    status, body = await desk.api.get("/tickets", "supervisor", status="escalated")
    assert status == 200 and [t["id"] for t in body["items"]] == [ticket_id] and body["items"][0]["overdue"]


async def test_escalation_once_even_without_leases(desk: Desk) -> None:
    """Both schedulers run the job (leases bypassed): the per-ticket conditional UPDATE still wins once."""
    from bot.services.jobs import escalate_overdue

    rt = runtime(desk)
    ticket_id = await report(desk, "o_nolease", "3号楼楼下垃圾堆成山了没人清理")
    desk.clock.advance(timedelta(days=8))
    counts = await asyncio.gather(*(escalate_overdue(rt, desk.clock.now()) for _ in range(4)))
    assert sum(counts) == 1
    assert len([e for e in await desk.events(ticket_id) if e.action == "escalate"]) == 1


async def test_auto_close_unrated_answers(desk: Desk) -> None:
    rt = runtime(desk)
    ticket_id = await report(desk, "o_auto", "5号楼门口的路灯坏了不亮")
    (ticket,) = await desk.tickets()
    if ticket.status == "submitted":
        assert (await desk.act(ticket_id, "supervisor", action="dispatch", department="城管市政科"))[0] == 200
    assert (await desk.act(ticket_id, "supervisor", action="answer", resolution="路灯已修好"))[0] == 200
    sched = Scheduler(rt, JOBS)
    desk.clock.advance(timedelta(hours=71))
    await sched.tick()
    assert (await desk.tickets())[0].status == "answered"
    desk.clock.advance(timedelta(hours=2))
    await sched.tick()
    (ticket,) = await desk.tickets()
    assert ticket.status == "closed" and ticket.rating is None
    assert [e.actor for e in await desk.events(ticket_id) if e.action == "close"] == ["system"]
    async with desk.db.session() as s:
        names = set((await s.scalars(select(SchedulerLease.name))).all())
    assert {"tickets.remind", "tickets.escalate", "tickets.auto_close"} <= names


async def test_a_tick_with_nothing_due_writes_nothing(desk: Desk) -> None:
    """Between due times a tick reads the leases and writes nothing: no write transaction per job
    every few seconds (on SQLite each would hold the write lock that messages' commits wait for)."""
    rt = runtime(desk)
    sched = Scheduler(rt, JOBS)
    await sched.tick()  # every job has its lease now (taken here or by the service's own scheduler)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()).upper())

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        desk.clock.advance(timedelta(seconds=1))
        assert await sched.tick() == {}
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert any("FROM SCHEDULER_LEASES" in s for s in statements)  # it did look
    assert not [s for s in statements if s.startswith(("UPDATE SCHEDULER_LEASES", "INSERT INTO SCHEDULER_LEASES"))]
    assert sched.next_run is not None and sched.next_run > desk.clock.now()
