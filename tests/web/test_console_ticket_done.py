"""A ticket's action in the console (派单, 接单, 开始处理, 答复办结, a note, 回访 …) is confirmed
at the top of the page it reloads, in Chinese; before, only the status badge and the timeline
changed, easy to miss on a phone."""

from __future__ import annotations

import html
import re

from tests.web.console_util import ZHANG, login, reported_ticket, start_console


def notice(page: str) -> str:
    found = re.search(r'id="notice">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


async def test_ticket_actions_say_what_they_did(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    zhang = await login(svc.http, svc.base, "zhang")
    ticket, _ = await reported_ticket(svc, zhang, "o_ticket_done_0001", "3号楼2单元楼道灯坏了好几天了", phone="不留")
    _, page, _ = await zhang.get(ticket)
    assert notice(page) == ""  # nothing done yet, nothing said
    steps = [
        ("transition", {"action": "dispatch", "department": "物业服务中心"}, "已派单。"),
        ("comments", {"text": "已联系电工", "public": "0"}, "已添加内部备注。"),
        ("transition", {"action": "accept"}, "已接单，这张工单由您办理。"),
        ("transition", {"action": "start"}, "已开始处理。"),
        ("comments", {"text": "电工下午到", "public": "1"}, "已公开回复，会推送给居民。"),
        ("transition", {"action": "answer", "resolution": "已更换灯泡"}, "已答复办结，等待居民评价。"),
        ("revisit", {"rating": "satisfied"}, "已记录回访结果。"),
    ]
    for path, form, said in steps:
        status, page, resp = await zhang.post(f"{ticket}/{path}", form)
        assert status == 303, (form, status, page[:300])
        _, page, _ = await zhang.get(str(resp.headers["Location"]))
        assert notice(page) == said, (form, notice(page))
    # A refused action says its error, not a confirmation; the plain page (the link staff share) none.
    status, page, _ = await zhang.post(f"{ticket}/transition", {"action": "start"})
    assert status == 409 and notice(page) == "" and 'id="error"' in page
    _, page, _ = await zhang.get(ticket)
    assert notice(page) == ""
    _, page, _ = await zhang.get(f"{ticket}?done=<b>x</b>")
    assert notice(page) == ""  # only the known notices, never the query's words
