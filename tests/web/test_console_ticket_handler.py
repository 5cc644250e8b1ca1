"""接单 makes the one who accepts a ticket its handler: the console's ticket page, board and
timeline name them, the JSON API's ticket says so, the deadline's reminder reaches them (not whom it
was dispatched to before) and the supervisors' overdue notice names them. Through the console over
HTTP and the JSON API; the scheduler runs in the service on a manual clock."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import datetime

from bot.clock import ManualClock
from tests.api.conftest import Api, make_tokens
from tests.web.console_util import (
    LI,
    WANG,
    ZHANG,
    login,
    start_console,
    ticket_from_conversation,
    timeline,
    wait_page,
    waiting_resident,
)

USERS = (ZHANG, LI)


async def test_the_staff_member_who_accepts_becomes_the_handler(service_factory, sqlite_url, fake_api):
    clock = ManualClock()
    svc = await start_console(service_factory, sqlite_url, fake_api, *USERS, clock=clock)
    api = Api(svc, await make_tokens(sqlite_url))
    zhang = await login(svc.http, svc.base, "zhang")
    rid = await waiting_resident(svc, zhang, "o_console_handler_0001")
    ticket, tid = await ticket_from_conversation(zhang, rid, "3号楼楼道堆满杂物", "物业服务")
    # Dispatched to the department with a name typed in (a grid worker without an account).
    status, _, _ = await zhang.post(f"{ticket}/transition",
                                    {"action": "dispatch", "department": "物业服务中心", "assignee": "老周"})
    assert status == 303

    li = await login(svc.http, svc.base, "li")
    status, _, _ = await li.post(f"{ticket}/transition", {"action": "accept", "assignee": ""})
    assert status == 303
    _, page, _ = await li.get(ticket)
    facts = page.split('class="facts"', 1)[1].split("</dl>", 1)[0]
    assert "<dt>处理人</dt><dd>li</dd>" in facts, facts
    accepted = [item for item in timeline(page).split("<li")[1:] if "<b>接单</b>" in item]
    assert len(accepted) == 1 and "处理人 li" in accepted[0], accepted
    _, board, _ = await li.get("/console/tickets")
    row = board.split(f'data-ticket="{tid}"', 1)[1].split("</tr>", 1)[0]
    assert "物业服务中心 / li" in row, row
    _, mine, _ = await li.get("/console/tickets?assignee=li")
    assert f'data-ticket="{tid}"' in mine

    # The JSON API shows the same handler, and the accept event names them.
    status, body, _ = await api.call("GET", f"/tickets/{tid}", "supervisor")
    assert status == 200 and body["assignee"] == "li"
    (accept,) = [e for e in body["timeline"] if e["action"] == "accept"]
    assert accept["data"] == {"assignee": "li"}

    # Most of the time to the deadline gone: the reminder reaches the handler, li.
    deadline = datetime.fromisoformat(body["deadline"])
    created = datetime.fromisoformat(body["created_at"])
    clock.advance((deadline - created) * 0.9)
    li = await login(svc.http, svc.base, "li")  # days later: a new session
    page = await wait_page(li, "/console/notifications", body["number"])
    assert "距办理期限" in page
    # Past the deadline: the supervisors' overdue notice names the handler.
    clock.advance((deadline - created) * 0.2)
    zhang = await login(svc.http, svc.base, "zhang")
    page = await wait_page(zhang, "/console/notifications", "超过办理期限")
    assert f"工单 {body['number']} 超过办理期限未办结（li）" in page


async def test_accepting_through_the_api_makes_the_caller_the_handler(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, *USERS)
    api = Api(svc, await make_tokens(sqlite_url))
    zhang = await login(svc.http, svc.base, "zhang")
    rid = await waiting_resident(svc, zhang, "o_api_handler_0001")
    _, tid = await ticket_from_conversation(zhang, rid, "5号楼电梯异响", "物业服务")
    status, body, _ = await api.call("POST", f"/tickets/{tid}/transitions", "supervisor",
                                     json={"action": "dispatch", "department": "物业服务中心", "assignee": "老周"})
    assert status == 200 and body["assignee"] == "老周"
    status, body, _ = await api.call("POST", f"/tickets/{tid}/transitions", "staff", json={"action": "accept"})
    assert status == 200 and body["status"] == "accepted" and body["assignee"] == "test staff"
    status, body, _ = await api.call("GET", f"/tickets/{tid}", "staff")
    assert status == 200 and body["assignee"] == "test staff"


async def test_the_reminder_follows_the_ticket_in_the_console_once_per_person(service_factory, sqlite_url,
                                                                             fake_api):
    """Reminded as 物业服务中心, the ticket accepted by li of that department: li's notices keep the
    one reminder (no second, theirs already); assigned on to wang, wang is reminded, in the console."""
    clock = ManualClock()
    svc = await start_console(service_factory, sqlite_url, fake_api, *USERS, WANG, clock=clock)
    api = Api(svc, await make_tokens(sqlite_url))
    zhang = await login(svc.http, svc.base, "zhang")
    rid = await waiting_resident(svc, zhang, "o_console_handover_01")
    ticket, _ = await ticket_from_conversation(zhang, rid, "3号楼楼道堆满杂物", "物业服务")
    status, _, _ = await zhang.post(f"{ticket}/transition", {"action": "dispatch", "department": "物业服务中心"})
    assert status == 303
    status, body, _ = await api.call("GET", f"/tickets/{ticket.rsplit('/', 1)[1]}", "supervisor")
    assert status == 200 and body["department"] == "物业服务中心" and body["assignee"] is None
    number = body["number"]
    deadline = datetime.fromisoformat(body["deadline"])
    created = datetime.fromisoformat(body["created_at"])
    clock.advance((deadline - created) * 0.8)

    def notices_about(page: str) -> list[str]:
        items = page.split('id="notices"', 1)[1].split("</ul>", 1)[0]
        return [item for item in items.split("<li")[1:] if f"工单 {number}" in item]

    li = await login(svc.http, svc.base, "li")
    (reminded,) = notices_about(await wait_page(li, "/console/notifications", number))
    assert "距办理期限" in reminded
    status, _, _ = await li.post(f"{ticket}/transition", {"action": "accept"})
    assert status == 303
    await asyncio.sleep(1.5)  # a second notice, were there one, is written with the accept
    _, page, _ = await li.get("/console/notifications")
    assert len(notices_about(html.unescape(page))) == 1

    zhang = await login(svc.http, svc.base, "zhang")  # hours later: a new session
    status, _, _ = await zhang.post(f"{ticket}/assignment", {"department": "", "assignee": "wang"})
    assert status == 303
    wang = await login(svc.http, svc.base, "wang")
    _, page, _ = await wang.get("/console/notifications")
    (theirs,) = notices_about(html.unescape(page))
    assert f"工单 {number} 现由您处理，距办理期限还有" in theirs, theirs
    _, page, _ = await zhang.get(ticket)
    assert [re.sub(r"\s+", " ", m) for m in re.findall(r"已提醒 ([^<]+)<", timeline(page))] == ["物业服务中心", "wang"]
    # The 派单 and 指派 lines say to which department and whom (派单 to a department alone said neither).
    dispatched = [item for item in timeline(page).split("<li")[1:] if "<b>派单</b>" in item]
    assert dispatched and all("· 部门 物业服务中心" in d and "处理人" not in d for d in dispatched), dispatched
    (assigned,) = [item for item in timeline(page).split("<li")[1:] if "<b>指派</b>" in item]
    assert "· 部门 物业服务中心" in assigned and "· 处理人 wang" in assigned, assigned
