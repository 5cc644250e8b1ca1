"""A ticket's timeline in the console after 答复办结 with a 说明, and after a 回访 on the phone. The
答复办结 line shows the answer (what the resident was pushed) with the 说明 beside it, not the 说明 in
the answer's place, and the 说明 is not pushed to the resident. A 回访 is one line by the staff
member who called, with the rating and their note: no 评价 line as if the resident had rated in the
chat. Over HTTP on SQLite; the resident reports through /wechat."""

from __future__ import annotations

import re

from tests.web.console_util import LI, ZHANG, login, reported_ticket, start_console, timeline, wait_sent


def _line(events: str, label: str) -> str:
    """The timeline entry whose label is ``label`` (the first)."""
    found = re.search(rf"<li[^>]*>\s*<b>{label}</b>.*?</li>", events, re.S)
    assert found, events
    return found.group(0)


async def test_the_answer_line_shows_the_answer_and_the_note(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    zhang = await login(svc.http, svc.base, "zhang")
    ticket, _ = await reported_ticket(svc, zhang, "o_tl_answer_0001", "7号楼1单元楼道灯坏了好几天了", phone="不留")
    _, page, _ = await zhang.get(ticket)
    if "待分派" in page:
        status, _, _ = await zhang.post(f"{ticket}/transition", {"action": "dispatch", "department": "物业服务中心"})
        assert status == 303
    status, page, _ = await zhang.post(
        f"{ticket}/transition", {"action": "answer", "resolution": "已更换楼道灯泡", "note": "电工小刘上门换的"})
    assert status == 303, page
    _, page, _ = await zhang.get(ticket)
    line = _line(timeline(page), "答复办结")
    assert "答复：已更换楼道灯泡" in line and "说明：电工小刘上门换的" in line, line
    pushed = "\n".join(await wait_sent(svc, "o_tl_answer_0001", "已更换楼道灯泡"))
    assert "电工小刘" not in pushed  # the 说明 stays with staff

    # An answer without a 说明 is shown as it always was: the answer alone.
    other, _ = await reported_ticket(svc, zhang, "o_tl_answer_0002", "9号楼2单元楼道灯坏了好几天了", phone="不留")
    _, page, _ = await zhang.get(other)
    if "待分派" in page:
        await zhang.post(f"{other}/transition", {"action": "dispatch", "department": "物业服务中心"})
    status, _, _ = await zhang.post(f"{other}/transition", {"action": "answer", "resolution": "已修好"})
    assert status == 303
    _, page, _ = await zhang.get(other)
    line = _line(timeline(page), "答复办结")
    assert "已修好" in line and "答复：" not in line and "说明：" not in line, line


async def test_a_revisit_is_the_staff_members_line_with_their_note(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG, LI)
    zhang = await login(svc.http, svc.base, "zhang")
    ticket, _ = await reported_ticket(svc, zhang, "o_tl_revisit_0001", "3号楼2单元楼道灯坏了好几天了", phone="不留")
    _, page, _ = await zhang.get(ticket)
    if "待分派" in page:
        await zhang.post(f"{ticket}/transition", {"action": "dispatch", "department": "物业服务中心"})
    status, _, _ = await zhang.post(f"{ticket}/transition", {"action": "answer", "resolution": "已更换灯泡"})
    assert status == 303
    status, page, _ = await zhang.post(f"{ticket}/revisit", {"rating": "satisfied", "note": "电话里说灯亮了"})
    assert status == 303, page
    _, page, _ = await zhang.get(ticket)
    events = timeline(page)
    assert "<b>评价</b>" not in events, events  # the resident did not rate in WeChat
    assert events.count("<b>回访</b>") == 1, events
    line = _line(events, "回访")
    assert "满意" in line and "电话里说灯亮了" in line and "· zhang" in line, line
    assert "<dt>居民评价</dt><dd>满意 电话里说灯亮了</dd>" in page
