"""回访 in the console: after a ticket is answered, staff who called the resident record the
resident's rating on the ticket's page (满意 / 基本满意 close it, 不满意 reopens it), for residents
who do not rate in the chat; a refused ticket form comes back as it was sent. Over HTTP on SQLite;
the resident reports through /wechat."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.web.console_util import LI, ZHANG, Client, login, reported_ticket, start_console, timeline


async def answered_ticket(svc: Any, zhang: Client, openid: str, text: str) -> str:
    # (a report staff visit for asks for a phone first: not left)
    ticket, _ = await reported_ticket(svc, zhang, openid, text, phone="不留")
    _, page, _ = await zhang.get(ticket)
    if "待分派" in page:
        status, _, _ = await zhang.post(f"{ticket}/transition", {"action": "dispatch", "department": "物业服务中心"})
        assert status == 303
    status, page, _ = await zhang.post(f"{ticket}/transition", {"action": "answer", "resolution": "已更换灯泡"})
    assert status == 303, page
    return ticket


async def test_staff_record_the_residents_rating_after_a_call(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG, LI)
    zhang = await login(svc.http, svc.base, "zhang")
    ticket = await answered_ticket(svc, zhang, "o_revisit_0001", "3号楼2单元楼道灯坏了好几天了")
    li = await login(svc.http, svc.base, "li")
    _, page, _ = await li.get(ticket)
    assert 'id="revisit"' in page and "记录回访结果" in page  # staff of the department see it too
    assert "没有您可以做的操作" not in page  # the 回访 is what they can do

    status, page, _ = await li.post(f"{ticket}/revisit", {"note": "没选评价"})
    assert status == 400 and "请选择居民的评价" in page
    status, page, _ = await li.post(f"{ticket}/revisit", {"rating": "basic", "note": "修好了，就是晚了两天"})
    assert status == 303, page
    _, page, _ = await li.get(ticket)
    text = html.unescape(page)
    assert 'id="ticket-status">已完结' in text
    assert "<dt>居民评价</dt><dd>基本满意 修好了，就是晚了两天</dd>" in text
    events = timeline(page)
    assert re.search(r"<b>回访</b>\s*基本满意", events) and "li" in events, events
    # The rating is the 回访's, taken by the staff member who called (with their note), not a 评价 as
    # if the resident had rated in the chat; closing the ticket on it is theirs too.
    assert "<b>评价</b>" not in events and "修好了，就是晚了两天" in events.split("<b>回访</b>", 1)[1], events
    assert re.search(r"<b>完结</b>[^<]*(?:<[^b][^>]*>[^<]*)*?· li</small>", events), events
    assert 'id="revisit"' not in page
    status, page, _ = await li.post(f"{ticket}/revisit", {"rating": "satisfied"})
    assert status == 409 and "状态已经变化" in page  # rated already

    # 不满意 reopens the ticket for another round.
    other = await answered_ticket(svc, zhang, "o_revisit_0002", "5号楼楼道灯也坏了好几天了")
    status, page, _ = await zhang.post(f"{other}/revisit", {"rating": "unsatisfied", "note": "灯还是不亮"})
    assert status == 303, page
    _, page, _ = await zhang.get(other)
    text = html.unescape(page)
    assert "<dt>居民评价</dt><dd>不满意 灯还是不亮</dd>" in text and 'id="ticket-status">重新办理' in text, text


async def test_a_refused_form_comes_back_as_it_was_sent(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    zhang = await login(svc.http, svc.base, "zhang")
    ticket, _ = await reported_ticket(svc, zhang, "o_revisit_form_0001", "3号楼2单元楼道灯坏了好几天了",
                                 phone="不留")
    # 不予受理 without its reason: refused, with 不予受理 still chosen and the note still there.
    status, page, _ = await zhang.post(f"{ticket}/transition", {"action": "reject", "note": "先电话问过居民了"})
    assert status == 400 and "不予受理需要填写原因" in page
    assert re.search(r'<option value="reject"[^>]*\sselected>', page), page
    assert "先电话问过居民了</textarea>" in page
    assert 'aria-label="回复或备注内容"></textarea>' in page  # the other forms stay empty
    # A department not in the dispatch table is refused; control characters never reach the database
    # (PostgreSQL refuses a NUL).
    status, page, _ = await zhang.post(f"{ticket}/assignment", {"department": "不存在的部门", "assignee": ""})
    assert status == 400 and "请选择列表中的部门" in page
    status, page, _ = await zhang.post(f"{ticket}/transition", {"action": "dispatch", "department": "不存在\x00的部门"})
    assert status == 400 and "请选择列表中的部门" in page
    status, page, _ = await zhang.post(f"{ticket}/assignment", {"department": "物业服务中心", "assignee": "小\x00王\x01"})
    assert status == 303, page
    _, page, _ = await zhang.get(ticket)
    assert "<dt>处理人</dt><dd>小王</dd>" in page and "\x00" not in page
