"""An emergency reported before its place was given, on the handoff queue: the row names the
emergency ticket's number (a link for staff), with 位置待补充, so staff find the ticket and make no
second one from the conversation; a resident with no ticket still reads 未绑定楼栋 alone."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.web.console_util import ZHANG, login, say, start_console


async def test_the_queue_names_an_emergency_not_yet_placed(service_factory: Any, sqlite_url: str,
                                                           fake_api: str) -> None:
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    reply = await say(svc, "o_queue_number_0001", "救命 楼道里着火了 全是烟")
    number = re.search(r"GD\d{8}-\d{4}", reply or "")
    assert number, reply
    assert "位置" in (reply or "")  # asked where: the ticket has no place yet
    assert await say(svc, "o_queue_number_0002", "转人工")
    zhang = await login(svc.http, svc.base, "zhang")
    status, page, _ = await zhang.get("/console/handoffs/rows")
    assert status == 200
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr class="handoff (\w+)".*?>(.*?)</tr>', page, re.S)}
    assert set(rows) == {"urgent", "asked"}, rows
    link = re.search(r'<a href="/console/tickets/(\d+)">' + number.group(0) + "</a>", rows["urgent"])
    assert link, rows["urgent"]
    assert "位置待补充" in html.unescape(rows["urgent"]), rows["urgent"]
    status, ticket, _ = await zhang.get(f"/console/tickets/{link.group(1)}")
    assert status == 200 and number.group(0) in ticket
    assert "GD" not in rows["asked"] and "未绑定楼栋" in html.unescape(rows["asked"]), rows["asked"]


async def test_the_conversation_marks_the_emergency_ticket(service_factory: Any, sqlite_url: str,
                                                           fake_api: str) -> None:
    """The conversation's 工单 list marks an emergency 紧急, as the tickets board and its page do."""
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    reply = await say(svc, "o_queue_number_0003", "救命 楼道里着火了 全是烟")
    number = re.search(r"GD\d{8}-\d{4}", reply or "")
    assert number, reply
    zhang = await login(svc.http, svc.base, "zhang")
    _, rows, _ = await zhang.get("/console/handoffs/rows")
    rid = re.search(r'data-resident="(\d+)"', rows)
    assert rid, rows
    status, page, _ = await zhang.get(f"/console/conversations/{rid.group(1)}")
    assert status == 200
    line = re.search(rf"<li>(?:<a [^>]*>)?{number.group(0)}(?:</a>)?(.*?)</li>", page, re.S)
    assert line, page
    assert '<span class="tag urgent">紧急</span>' in line.group(1), line.group(1)
