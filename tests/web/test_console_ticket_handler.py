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
from tests.web.console_util import Client, add_users, login, say

USERS = (
    ("zhang", "supervisor", {}),
    ("li", "staff", {"department": "物业服务中心"}),
)


async def wait_page(client: Client, path: str, fragment: str) -> str:
    """The page once ``fragment`` is on it (the scheduler runs in the service, on its own)."""
    page = ""
    for _ in range(300):
        _, page, _ = await client.get(path)
        if fragment in html.unescape(page):
            return html.unescape(page)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{fragment!r} not on {path}")


async def test_the_staff_member_who_accepts_becomes_the_handler(service_factory, sqlite_url, fake_api):
    clock = ManualClock()
    svc = await service_factory(sqlite_url, fake_api, app_kwargs={"clock": clock})
    await add_users(sqlite_url, *USERS)
    api = Api(svc, await make_tokens(sqlite_url))
    assert await say(svc, "o_console_handler_0001", "转人工")
    zhang = await login(svc.http, svc.base, "zhang")
    _, inbox, _ = await zhang.get("/console/inbox")
    rid = re.search(r'data-resident="(\d+)"', inbox)
    assert rid
    _, _, resp = await zhang.post(f"/console/conversations/{rid.group(1)}/ticket",
                                  {"text": "3号楼楼道堆满杂物", "category": "物业服务"})
    ticket = resp.headers["Location"]
    tid = ticket.rsplit("/", 1)[1]
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
    timeline = page.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    accepted = [item for item in timeline.split("<li")[1:] if "<b>接单</b>" in item]
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
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, *USERS)
    api = Api(svc, await make_tokens(sqlite_url))
    assert await say(svc, "o_api_handler_0001", "转人工")
    zhang = await login(svc.http, svc.base, "zhang")
    _, inbox, _ = await zhang.get("/console/inbox")
    rid = re.search(r'data-resident="(\d+)"', inbox)
    assert rid
    _, _, resp = await zhang.post(f"/console/conversations/{rid.group(1)}/ticket",
                                  {"text": "5号楼电梯异响", "category": "物业服务"})
    tid = resp.headers["Location"].rsplit("/", 1)[1]
    status, body, _ = await api.call("POST", f"/tickets/{tid}/transitions", "supervisor",
                                     json={"action": "dispatch", "department": "物业服务中心", "assignee": "老周"})
    assert status == 200 and body["assignee"] == "老周"
    status, body, _ = await api.call("POST", f"/tickets/{tid}/transitions", "staff", json={"action": "accept"})
    assert status == 200 and body["status"] == "accepted" and body["assignee"] == "test staff"
    status, body, _ = await api.call("GET", f"/tickets/{tid}", "staff")
    assert status == 200 and body["assignee"] == "test staff"
