"""Where staff must go, on the handoff queue, the inbox and the conversation page: a resident who bound no
building but whose emergency ticket has a place (3号楼1单元502) is shown at that place with the
ticket's number, not as 未绑定楼栋; a resident with neither still reads 未绑定楼栋."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.web.console_util import LI, ZHANG, login, say, start_console


async def test_the_queue_shows_the_emergency_tickets_place(service_factory: Any, database_url: str,
                                                           fake_api: str) -> None:
    svc = await start_console(service_factory, database_url, fake_api, ZHANG, LI, redis=True)
    gas = "o_queue_place_gas_0001"
    reply = await say(svc, gas, "楼道里有很大的煤气味")
    number = re.search(r"GD\d{8}-\d{4}", reply or "")
    assert number, reply
    assert "位置" in (await say(svc, gas, "3号楼1单元502") or "")
    await say(svc, gas, "转人工")
    assert await say(svc, "o_queue_place_other_0001", "转人工")
    li = await login(svc.http, svc.base, "li")
    status, page, _ = await li.get("/console/handoffs/rows")
    assert status == 200
    rows = {m.group(1): html.unescape(m.group(2))
            for m in re.finditer(r'<tr class="handoff (\w+)".*?>(.*?)</tr>', page, re.S)}
    assert set(rows) == {"urgent", "asked"}, rows
    assert "3号楼1单元502室" in rows["urgent"] and number.group(0) in rows["urgent"], rows["urgent"]
    assert "未绑定楼栋" not in rows["urgent"]
    assert "未绑定楼栋" in rows["asked"]  # no building, no ticket: nothing better to say
    status, inbox, _ = await li.get("/console/inbox/rows")
    assert status == 200 and "3号楼1单元502室" in html.unescape(inbox), inbox
    rid = re.search(r'<tr class="handoff urgent" data-resident="(\d+)"', page)
    assert rid
    status, page, _ = await li.get(f"/console/conversations/{rid.group(1)}")
    assert status == 200
    title = html.unescape(page.split("<h1>", 1)[1].split("</h1>", 1)[0])
    assert "3号楼1单元502室" in title, title
    # the ticket's line: a link when the staff member may open it, its number alone otherwise (4d5e44b)
    line = re.search(rf"<li>(?:<a [^>]*>)?{number.group(0)}(?:</a>)?(.*?)</li>", page, re.S)
    assert line, page
    tickets = html.unescape(line.group(1))
    assert "3号楼1单元502室" in tickets, tickets
