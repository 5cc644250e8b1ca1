"""The deadline's reminder follows the ticket's handler: sent to the department it was dispatched
to, it reaches whoever accepts the ticket afterwards, and whoever it is assigned to next, once each
(a handler who had it is not reminded again), with a line on the timeline naming whom it went to.
Through the WeChat endpoint and the JSON API; the service's own scheduler sends the first reminder
on the manual clock."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from bot.api.tokens import create_token
from bot.clock import Clock
from tests.tickets.conftest import Desk


async def reminders(desk: Desk, token: str, number: str, expected: int) -> list[dict[str, Any]]:
    """The reminders about ticket ``number`` the token's caller sees, once there are ``expected``
    (then a moment more, so that a surplus one would show)."""
    found: list[dict[str, Any]] = []
    for attempt in range(300):
        status, body, _ = await desk.api.call("GET", "/notifications", token, params={"kind": "reminder"})
        assert status == 200, body
        found = [n for n in body["items"] if n["ticket_number"] == number]
        if len(found) >= expected and attempt >= 5:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{expected} reminders about {number} expected, found {found}")


async def test_the_reminder_follows_the_ticket_to_its_new_handler_once(desk: Desk) -> None:
    reply = await desk.say("o_handover_0001", "家里停水了，8号楼2单元，电话13900001111")
    assert "GD" in reply, reply
    (ticket,) = await desk.tickets()
    status, body, _ = await desk.api.call("GET", f"/tickets/{ticket.id}", "supervisor")
    assert status == 200 and body["status"] == "dispatched" and body["department"] and not body["assignee"]
    department, number = body["department"], body["number"]
    # The department's own token, and a grid worker's (named as the API matches notices).
    dept_token, _ = await create_token(desk.db, department, "staff", Clock().now())
    zhou_token, _ = await create_token(desk.db, "老周", "staff", Clock().now())
    # A staff member of that department (a staff token sees its department's tickets, as in the console).
    staff, _ = await create_token(desk.db, "test staff", "staff", Clock().now(), department=department)

    # Most of the time gone: the reminder goes to the department, the ticket's handler so far.
    deadline, created = datetime.fromisoformat(body["deadline"]), datetime.fromisoformat(body["created_at"])
    desk.clock.advance((deadline - created) * 0.8)
    (first,) = await reminders(desk, dept_token, number, 1)
    assert "现由您处理" not in first["text"]
    # The department's staff member sees the department's reminder (a scoped token sees its notices).
    assert [n["assignee"] for n in await reminders(desk, staff, number, 1)] == [department]

    # A staff member accepts it: the reminder reaches them, saying the ticket is now theirs.
    status, body = await desk.act(ticket.id, staff, action="accept")
    assert status == 200 and body["assignee"] == "test staff"
    seen = await reminders(desk, staff, number, 2)
    (mine,) = [n for n in seen if n["assignee"] == "test staff"]
    assert f"工单 {number} 现由您处理，距办理期限还有" in mine["text"], mine
    assert len(await reminders(desk, dept_token, number, 1)) == 1  # the department's stays the one

    # Assigned on to 老周: reminded; then back to the staff member, who had it: not again.
    status, body, _ = await desk.api.call("POST", f"/tickets/{ticket.id}/assignment", "supervisor",
                                          json={"assignee": "老周"})
    assert status == 200 and body["assignee"] == "老周"
    assert len(await reminders(desk, zhou_token, number, 1)) == 1
    status, body, _ = await desk.api.call("POST", f"/tickets/{ticket.id}/assignment", "supervisor",
                                          json={"assignee": "test staff"})
    assert status == 200 and body["assignee"] == "test staff"
    assert len(await reminders(desk, staff, number, 2)) == 2
    status, body, _ = await desk.api.call("POST", f"/tickets/{ticket.id}/transitions", staff,
                                          json={"action": "start"})
    assert status == 200 and body["status"] == "in_progress"
    assert len(await reminders(desk, staff, number, 2)) == 2

    # The timeline says whom each reminder went to.
    notified = [(e["data"].get("notify"), e["data"].get("handover", False))
                for e in body["timeline"] if e["action"] == "reminder"]
    assert notified == [(department, False), ("test staff", True), ("老周", True)], notified


async def test_no_reminder_to_a_new_handler_before_the_rounds_reminder_or_after_the_deadline(desk: Desk) -> None:
    reply = await desk.say("o_handover_0002", "家里停水了，9号楼1单元，电话13900002222")
    assert "GD" in reply, reply
    (ticket,) = await desk.tickets()
    status, body, _ = await desk.api.call("GET", f"/tickets/{ticket.id}", "supervisor")
    number, department = body["number"], body["department"]
    staff, _ = await create_token(desk.db, "test staff", "staff", Clock().now(), department=department)
    deadline, created = datetime.fromisoformat(body["deadline"]), datetime.fromisoformat(body["created_at"])
    # Accepted early: nothing yet (the scheduler's reminder, when it is due, goes to the handler).
    status, body = await desk.act(ticket.id, staff, action="accept")
    assert status == 200
    assert await reminders(desk, staff, number, 0) == []
    desk.clock.advance((deadline - created) * 0.8)
    (due,) = await reminders(desk, staff, number, 1)
    assert "现由您处理" not in due["text"]
    # Past the deadline (escalated to the supervisors), a new handler gets no reminder of a passed one.
    zhou_token, _ = await create_token(desk.db, "老周", "staff", Clock().now())
    desk.clock.advance((deadline - created) * 0.3)
    status, body, _ = await desk.api.call("POST", f"/tickets/{ticket.id}/assignment", "supervisor",
                                          json={"assignee": "老周"})
    assert status == 200
    assert await reminders(desk, zhou_token, number, 0) == []
