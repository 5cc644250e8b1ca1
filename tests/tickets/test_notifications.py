"""Staff notifications: a reminder to the assignee before the deadline and an escalation to the
supervisors, once each with two schedulers; read through the JSON API."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.api.tokens import create_token
from bot.clock import Clock
from bot.services.jobs import JOBS, escalate_overdue, remind_assignees
from bot.services.scheduler import Scheduler
from bot.storage.models import StaffNotification
from tests.api.conftest import assert_error
from tests.tickets.conftest import Desk
from tests.tickets.test_scheduler import report, runtime


async def notices(desk: Desk) -> list[StaffNotification]:
    async with desk.db.session() as s:
        return list((await s.scalars(select(StaffNotification).order_by(StaffNotification.id))).all())


async def test_reminder_and_escalation_notify_staff_once(desk: Desk) -> None:
    rt = runtime(desk)
    ticket_id = await report(desk, "o_notice", "家里停水了，8号楼2单元，电话13900001111")
    (ticket,) = await desk.tickets()
    assert ticket.department
    a, b = Scheduler(rt, JOBS), Scheduler(rt, JOBS)

    desk.clock.advance(timedelta(hours=19, minutes=30))  # most of the 24 h gone
    for _ in range(3):
        await asyncio.gather(a.tick(), b.tick(), remind_assignees(rt, desk.clock.now()))
        desk.clock.advance(timedelta(minutes=2))
    (reminder,) = await notices(desk)
    assert reminder.kind == "reminder" and reminder.ticket_id == ticket_id
    assert reminder.assignee == (ticket.assignee or ticket.department) and reminder.role is None
    assert ticket.number in reminder.text and reminder.read_at is None

    desk.clock.advance(timedelta(hours=5))  # past the deadline
    for _ in range(3):
        await asyncio.gather(a.tick(), b.tick(), escalate_overdue(rt, desk.clock.now()))
        desk.clock.advance(timedelta(minutes=5))
    escalations = [n for n in await notices(desk) if n.kind == "escalation"]
    assert len(escalations) == 1
    assert escalations[0].role == "supervisor" and escalations[0].assignee is None
    assert ticket.number in escalations[0].text

    # The department's own token sees its reminder, not the supervisors' escalation.
    dept_token, _ = await create_token(desk.db, reminder.assignee or "", "staff", Clock().now())
    status, body, _ = await desk.api.call("GET", "/notifications", dept_token)
    assert status == 200, body
    assert [n["kind"] for n in body["items"]] == ["reminder"]
    assert body["items"][0]["ticket_number"] == ticket.number
    # A staff token with another name sees neither.
    status, body, _ = await desk.api.call("GET", "/notifications", "staff")
    assert status == 200 and body["items"] == []
    # The supervisors see the escalation.
    status, body, _ = await desk.api.call("GET", "/notifications", "supervisor", params={"unread": "true"})
    assert status == 200 and [n["id"] for n in body["items"]] == [escalations[0].id]

    # Reading: only one's own, once; the unread filter follows.
    status, body, _ = await desk.api.call("POST", f"/notifications/{reminder.id}/read", "supervisor")
    assert_error(status, body, 404)
    status, body, _ = await desk.api.call("POST", f"/notifications/{escalations[0].id}/read", "supervisor")
    assert status == 200 and body["read_at"] is not None and body["kind"] == "escalation"
    first_read = body["read_at"]
    desk.clock.advance(timedelta(minutes=1))
    status, body, _ = await desk.api.call("POST", f"/notifications/{escalations[0].id}/read", "supervisor")
    assert status == 200 and body["read_at"] == first_read
    status, body, _ = await desk.api.call("GET", "/notifications", "supervisor", params={"unread": "true"})
    assert status == 200 and body["items"] == []
    status, body, _ = await desk.api.call("GET", "/notifications", "supervisor", params={"unread": "false"})
    assert status == 200 and [n["id"] for n in body["items"]] == [escalations[0].id]


async def test_notifications_paging_and_bad_input(desk: Desk) -> None:
    rt = runtime(desk)
    for i, text in enumerate(["3号楼楼下垃圾堆成山了没人清理", "5号楼门口的路灯坏了好几天", "7号楼楼道扶手松了，电话13900002222"]):
        await report(desk, f"o_page{i}", text)
    desk.clock.advance(timedelta(days=30))
    await escalate_overdue(rt, desk.clock.now())  # (or the service's own scheduler did)
    assert [n.kind for n in await notices(desk)] == ["escalation"] * 3
    ids: list[int] = []
    cursor = None
    for _ in range(5):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, body, _ = await desk.api.call("GET", "/notifications", "supervisor", params=params)
        assert status == 200, body
        ids += [n["id"] for n in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)
    status, body, _ = await desk.api.call("GET", "/notifications", "admin", params={"kind": "escalation"})
    assert status == 200 and len(body["items"]) == 3
    status, body, _ = await desk.api.call("GET", "/notifications", "supervisor", params={"kind": "nonsense"})
    assert_error(status, body, 400)
    status, body, _ = await desk.api.call("POST", "/notifications/999999/read", "supervisor")
    assert_error(status, body, 404)
    status, body, _ = await desk.api.call("GET", "/notifications", "merchant")
    assert_error(status, body, 403)
