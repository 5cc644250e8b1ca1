"""A resident's points in the console, over HTTP: staff credit volunteer points with a reason the
ledger keeps (with who did it), a resent form counts once, a form missing something says which
field, more than the balance cannot be taken, operators read the ledger but cannot adjust; the
resident is told in WeChat (the points, the reason staff wrote for them, the balance), never the
internal note."""

from __future__ import annotations

import asyncio
import html
import re

from tests.web.console_util import LI, YUN, login, sent_texts, start_console, wait_sent, waiting_resident

USERS = (LI, YUN)


def balance(page: str) -> int:
    found = re.search(r'id="balance">(\d+)<', page)
    assert found, page
    return int(found.group(1))


def form_key(page: str) -> str:
    found = re.search(r'name="key" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def error(page: str) -> str:
    found = re.search(r'id="error">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


async def test_staff_credit_points_with_a_reason_and_operators_only_read(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, *USERS)
    li = await login(svc.http, svc.base, "li")
    rid = await waiting_resident(svc, li, "o_points_console_0001")
    _, conversation, _ = await li.get(f"/console/conversations/{rid}")
    path = f"/console/residents/{rid}/points"
    assert f'href="{path}"' in conversation
    status, page, _ = await li.get(path)
    assert status == 200
    start = balance(page)

    # Credited with a reason: the balance and the ledger say so, with who did it.
    key = form_key(page)
    sent = {"direction": "add", "amount": "15", "note": "12月6日楼道清扫志愿服务", "key": key}
    status, _, resp = await li.post(path, sent)
    assert status == 303, status
    _, page, _ = await li.get(resp.headers["Location"])
    assert balance(page) == start + 15
    assert "已增加15积分" in page
    row = re.search(r'<tbody>\s*<tr>(.*?)</tr>', page, re.S)
    assert row, page
    cells = [html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
    assert cells[1:] == ["+15", str(start + 15), "工作人员调整", "12月6日楼道清扫志愿服务", "li"], cells
    # The same form sent again (a double click, a reload): one adjustment.
    status, _, _ = await li.post(path, sent)
    assert status == 303
    _, page, _ = await li.get(path)
    assert balance(page) == start + 15

    # What is missing or wrong is named, and what was typed stays.
    key = form_key(page)
    status, page, _ = await li.post(path, {"direction": "add", "amount": "10", "note": "  ", "key": key})
    assert status == 400 and error(page).startswith("调整原因"), error(page)
    assert 'value="10"' in page
    status, page, _ = await li.post(path, {"direction": "add", "amount": "十", "note": "补记", "key": key})
    assert status == 400 and error(page).startswith("积分数"), error(page)
    assert "补记</textarea>" in page
    status, page, _ = await li.post(path, {"direction": "take", "amount": str(start + 16), "note": "误发",
                                           "key": key})
    assert status == 409 and f"现有{start + 15}分" in error(page), error(page)
    _, page, _ = await li.get(path)
    assert balance(page) == start + 15

    # An operator reads the ledger, without the form, and may not adjust.
    yun = await login(svc.http, svc.base, "yun")
    status, page, _ = await yun.get(path)
    assert status == 200 and balance(page) == start + 15 and 'id="adjust-form"' not in page
    status, _, _ = await yun.post(path, {"direction": "add", "amount": "5", "note": "x", "key": form_key(
        (await li.get(path))[1])})
    assert status == 403
    status, _, _ = await li.get("/console/residents/99999/points")
    assert status == 404


async def test_the_resident_is_told_in_wechat_never_the_internal_note(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, *USERS)
    openid = "o_points_console_told_01"
    li = await login(svc.http, svc.base, "li")
    rid = await waiting_resident(svc, li, openid, "你好")
    path = f"/console/residents/{rid}/points"
    _, page, _ = await li.get(path)
    start = balance(page)
    assert "居民会收到一条微信消息" in page

    # The reason for the resident goes out with the points and the balance; the note stays here.
    sent = {"direction": "add", "amount": "12", "told": "参加社区志愿服务", "note": "王主任确认，登记表第3页",
            "key": form_key(page)}
    status, _, resp = await li.post(path, sent)
    assert status == 303
    _, page, _ = await li.get(resp.headers["Location"])
    assert "已增加12积分，已记入积分明细，并已通过微信告诉居民。" in page
    assert "王主任确认，登记表第3页" in page  # the ledger keeps the note for staff, named as internal
    assert "<th>内部备注</th>" in page
    texts = await wait_sent(svc, openid, "增加了12积分")
    told = next(t for t in texts if "增加了12积分" in t)
    assert "原因：参加社区志愿服务" in told and f"调整后您共有{start + 12}积分" in told, told
    assert not any("王主任" in t or "登记表" in t for t in texts), texts
    status, _, _ = await li.post(path, sent)  # sent again: one adjustment, one message
    assert status == 303

    # Only a reason for the resident: the ledger keeps it as the note.
    _, page, _ = await li.get(path)
    status, _, resp = await li.post(path, {"direction": "take", "amount": "2", "told": "收回误发的积分",
                                           "note": " ", "key": form_key(page)})
    assert status == 303
    _, page, _ = await li.get(resp.headers["Location"])
    assert balance(page) == start + 10
    row = re.search(r'<tbody>\s*<tr>(.*?)</tr>', page, re.S)
    assert row and "收回误发的积分" in row.group(1), page
    await wait_sent(svc, openid, "扣减了您的2积分，原因：收回误发的积分")
    # Neither a reason nor a note: refused, naming it.
    status, page, _ = await li.post(path, {"direction": "add", "amount": "1", "told": "", "note": "",
                                           "key": form_key(page)})
    assert status == 400 and error(page).startswith("调整原因"), error(page)
    texts = await sent_texts(svc, openid)
    assert sum("增加了12积分" in t for t in texts) == 1, texts

    # A resident who unfollowed: the form says they cannot be told, and nothing is sent.
    s = svc.sender()
    assert (await s.send(svc.http, s.event(openid, "unsubscribe"))).status == 200
    _, page, _ = await li.get(path)
    assert "居民已取消关注公众号" in page
    status, _, resp = await li.post(path, {"direction": "add", "amount": "3", "told": "补记",
                                           "note": "", "key": form_key(page)})
    assert status == 303
    _, page, _ = await li.get(resp.headers["Location"])
    assert "已增加3积分，已记入积分明细。" in page
    await asyncio.sleep(1.5)
    assert not any("增加了3积分" in t for t in await sent_texts(svc, openid))
