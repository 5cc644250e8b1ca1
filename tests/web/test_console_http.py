"""The console's conversation and ticket work over HTTP, on SQLite and on PostgreSQL with Redis:
an idle takeover released after BOT_TAKEOVER_IDLE with the resident told and open pages' live
streams told, no reply to a resident who unfollowed, canned replies
(create, edit, delete), private notes (shown, never sent), a ticket made from a conversation,
ticket assignment, and a ticket's photos and location on its detail page. The resident's side
goes through /wechat as WeChat sends it; what the resident receives, through the fake WeChat API."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.services.takeover import TEXTS as TAKEOVER_TEXTS
from tests.web.console_util import LI, WANG, ZHANG, Client, login, say, start_console, wait_sent
from tests.web.test_console_processes import handed, open_stream

USERS = (ZHANG, LI, WANG)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def console(service_factory: Any, database_url: str, fake_api: str) -> Any:
    """``await console(**overrides)``: the service on the test's database (PostgreSQL with Redis)
    with the console's users; ``clock=`` a manual clock."""

    async def make(clock: ManualClock | None = None, **overrides: Any) -> Any:
        return await start_console(service_factory, database_url, fake_api, *USERS, clock=clock, redis=True,
                                   **overrides)

    return make


async def resident_id(client: Client) -> int:
    """The one resident of the test, found through the console's inbox."""
    status, page, _ = await client.get("/console/inbox")
    assert status == 200
    ids = set(re.findall(r'data-resident="(\d+)"', page))
    assert len(ids) == 1, ids
    return int(ids.pop())


async def test_idle_takeover_is_released_and_the_resident_told(console):
    clock = ManualClock()
    svc = await console(clock=clock, BOT_TAKEOVER_IDLE="10")
    openid = "o_console_idle_0001"
    assert await say(svc, openid, "转人工")
    zhang = await login(svc.http, svc.base, "zhang")
    rid = await resident_id(zhang)
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/claim")
    assert status == 303
    assert await say(svc, openid, "在吗") is None  # held: the bot is silent
    li = await open_stream(await login(svc.http, svc.base, "li"))  # a colleague's open page
    try:
        clock.advance(timedelta(minutes=11))  # no reply, no message for longer than BOT_TAKEOVER_IDLE
        texts = await wait_sent(svc, openid, TAKEOVER_TEXTS["idle"][:8])
        assert any("智能助手" in t for t in texts)
        await handed(li, str(rid))  # the page hears that the bot has the conversation again
    finally:
        li.close()
    status, page, _ = await zhang.get(f"/console/conversations/{rid}")
    assert "机器人正在回复" in page and "接管中" not in page
    assert await say(svc, openid, "你好")  # the bot answers again


async def test_no_reply_to_a_resident_who_unfollowed(console):
    svc = await console()
    openid = "o_console_unfollow_0001"
    assert await say(svc, openid, "转人工")
    zhang = await login(svc.http, svc.base, "zhang")
    rid = await resident_id(zhang)
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/claim")
    assert status == 303
    s = svc.sender()
    assert (await s.send(svc.http, s.event(openid, "unsubscribe"))).status == 200
    # The unfollow is the resident's last message: the page does not call the window open.
    _, page, _ = await zhang.get(f"/console/conversations/{rid}")
    assert "居民已取消关注，收不到回复" in page and "48小时窗口：开放" not in page
    status, page, _ = await zhang.post(f"/console/conversations/{rid}/reply", {"text": "您好，还在吗？"})
    assert status == 409 and "居民已取消关注公众号" in page
    assert "您好，还在吗？" in page  # the reply stays in its box
    # Following again, the resident can be answered.
    assert (await s.send(svc.http, s.event(openid, "subscribe"))).status == 200
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/reply", {"text": "您好，欢迎回来。"})
    assert status == 303
    texts = await wait_sent(svc, openid, "欢迎回来")
    assert not any("还在吗" in t for t in texts)


async def test_canned_replies_are_created_edited_and_deleted(console):
    svc = await console()
    li = await login(svc.http, svc.base, "li")
    status, _, _ = await li.post("/console/canned", {"title": "停水通知", "text": "今天下午两点到五点停水，请提前储水。"})
    assert status == 303
    status, page, _ = await li.get("/console/canned")
    assert "停水通知" in page and "请提前储水" in page
    found = re.search(r'name="id" value="(\d+)">\s*<label>标题 <input name="title" value="停水通知"', page)
    assert found, page
    reply_id = found.group(1)
    status, _, _ = await li.post("/console/canned", {"id": reply_id, "title": "停水通知", "text": "今天下午三点到五点停水。"})
    assert status == 303
    _, page, _ = await li.get("/console/canned")
    assert "三点到五点" in page and "两点到五点" not in page
    # Refused: an empty title; the page says why and nothing changes.
    status, page, _ = await li.post("/console/canned", {"id": reply_id, "title": "", "text": "x"})
    assert status == 400 and "标题需要" in page
    # A resident's conversation offers it to the holder.
    openid = "o_console_canned_0001"
    assert await say(svc, openid, "转人工")
    rid = await resident_id(li)
    await li.post(f"/console/conversations/{rid}/claim")
    _, page, _ = await li.get(f"/console/conversations/{rid}")
    assert 'value="今天下午三点到五点停水。">停水通知</option>' in page
    status, _, _ = await li.post("/console/canned", {"id": reply_id, "title": "停水通知", "text": "x", "delete": "1"})
    assert status == 303
    _, page, _ = await li.get("/console/canned")
    assert "停水通知" not in page
    _, page, _ = await li.get(f"/console/conversations/{rid}")
    assert "停水通知" not in page


async def test_private_notes_are_shown_and_never_sent(console):
    svc = await console()
    openid = "o_console_notes_0001"
    assert await say(svc, openid, "转人工")
    li = await login(svc.http, svc.base, "li")
    rid = await resident_id(li)
    await li.post(f"/console/conversations/{rid}/claim")
    status, _, _ = await li.post(f"/console/conversations/{rid}/notes", {"text": "老人独居，耳背，打电话要大声"})
    assert status == 303
    status, page, _ = await li.post(f"/console/conversations/{rid}/notes", {"text": "   "})
    assert status == 400 and "备注不能为空" in page
    _, page, _ = await li.get(f"/console/conversations/{rid}")
    notes = page.split('id="notes"', 1)[1]
    assert "老人独居" in notes and "<b>li</b>" in notes
    # Another staff member sees it too (notes are the team's).
    zhang = await login(svc.http, svc.base, "zhang")
    _, page, _ = await zhang.get(f"/console/conversations/{rid}")
    assert "老人独居" in page.split('id="notes"', 1)[1]
    # A reply sent after the note arrives; the note never does (the outbox sends in order).
    status, _, _ = await li.post(f"/console/conversations/{rid}/reply", {"text": "您好，我是社区小李。"})
    assert status == 303
    texts = await wait_sent(svc, openid, "我是社区小李")
    assert not any("老人独居" in t for t in texts)
    _, page, _ = await li.get(f"/console/conversations/{rid}/messages")
    assert "老人独居" not in page and "我是社区小李" in page


async def test_a_ticket_is_made_from_a_conversation(console):
    svc = await console()
    openid = "o_console_from_chat_01"
    assert await say(svc, openid, "转人工")
    li = await login(svc.http, svc.base, "li")
    rid = await resident_id(li)
    status, page, _ = await li.post(f"/console/conversations/{rid}/ticket", {"text": "", "category": ""})
    assert status == 400 and "工单内容" in page
    status, _, resp = await li.post(f"/console/conversations/{rid}/ticket",
                                    {"text": "5号楼电梯按键失灵（电话里说的）", "category": "物业服务", "urgency": "urgent"})
    assert status == 303
    location = resp.headers["Location"]
    assert re.fullmatch(r"/console/tickets/\d+", location), location
    status, page, _ = await li.get(location)
    assert status == 200
    assert "5号楼电梯按键失灵" in page and "紧急" in page and "物业服务中心" in page
    number = re.search(r"GD\d{8}-\d{4}", page)
    assert number
    _, page, _ = await li.get(f"/console/conversations/{rid}")
    assert number.group(0) in page  # the conversation lists its ticket
    # The resident sees it as theirs.
    assert number.group(0) in (await say(svc, openid, "查进度") or "")


async def test_ticket_assignment(console):
    svc = await console()
    openid = "o_console_assign_0001"
    assert await say(svc, openid, "转人工")
    zhang = await login(svc.http, svc.base, "zhang")
    rid = await resident_id(zhang)
    _, _, resp = await zhang.post(f"/console/conversations/{rid}/ticket",
                                  {"text": "3号楼楼道堆满杂物", "category": "物业服务"})
    ticket = resp.headers["Location"]
    status, _, _ = await zhang.post(f"{ticket}/assignment", {"department": "物业服务中心", "assignee": "老周"})
    assert status == 303
    _, page, _ = await zhang.get(ticket)
    facts = page.split('class="facts"', 1)[1].split("</dl>", 1)[0]
    assert "<dt>处理人</dt><dd>老周</dd>" in facts and "<dt>部门</dt><dd>物业服务中心</dd>" in facts
    assert "老周" in page.split('id="timeline"', 1)[1]
    # Staff may change the assignee within their department, never move it to another one.
    li = await login(svc.http, svc.base, "li")
    status, _, _ = await li.post(f"{ticket}/assignment", {"department": "", "assignee": "小孙"})
    assert status == 303
    status, page, _ = await li.post(f"{ticket}/assignment", {"department": "环卫所", "assignee": ""})
    assert status == 403 and "只有主管" in page
    _, page, _ = await zhang.get(ticket)
    facts = page.split('class="facts"', 1)[1].split("</dl>", 1)[0]
    assert "<dt>处理人</dt><dd>小孙</dd>" in facts and "<dt>部门</dt><dd>物业服务中心</dd>" in facts
    # The other department's staff no longer see it; after a supervisor moves it, they do.
    wang = await login(svc.http, svc.base, "wang")
    status, _, _ = await wang.get(ticket)
    assert status == 403
    status, _, _ = await zhang.post(f"{ticket}/assignment", {"department": "环卫所", "assignee": ""})
    assert status == 303
    status, _, _ = await wang.get(ticket)
    assert status == 200


async def test_a_tickets_photos_and_location_are_shown(console):
    svc = await console()
    openid = "o_console_photo_0001"
    s = svc.sender()
    assert "具体位置" in (await say(svc, openid, "楼道灯坏了好几天了一直没人修") or "")
    async with svc.http.post(f"{svc.fake_api}/fake/media", data=PNG, headers={"Content-Type": "image/png"}) as r:
        media_id = str((await r.json())["media_id"])
    reply = await s.send(svc.http, s.image(openid, media_id))
    assert "已附在您的反映里" in (reply.content or "")
    reply = await s.send(svc.http, s.location(openid, 39.91234, 116.40567, "新建南社区3号楼"))
    assert reply.status == 200
    reply = await s.send(svc.http, s.text(openid, "电话13812345678"))
    number = re.search(r"GD\d{8}-\d{4}", reply.content or "")
    assert number, reply.content
    zhang = await login(svc.http, svc.base, "zhang")
    status, _, resp = await zhang.get(f"/console/tickets?number={number.group(0)}")
    assert status == 303  # an exact number opens the ticket
    status, page, _ = await zhang.get(resp.headers["Location"])
    assert status == 200
    photos = re.findall(r'<img src="(/console/tickets/\d+/photos/\d+)"', page)
    assert len(photos) == 1, page
    async with svc.http.get(svc.base + photos[0], headers=zhang.cookie) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("image/")
        assert await r.read() == PNG
    where = html.unescape(page.split('id="location"', 1)[1].split("</div>", 1)[0])
    assert "新建南社区3号楼" in where and "39.91234" in where and "116.40567" in where
    assert "13812345678" not in page  # the phone is masked on the page
    assert "<b>受理</b>" in page and "<b>submitted</b>" not in page  # every timeline entry in words
    assert "<b>location_added</b>" not in page


async def test_a_tickets_place_reads_as_residents_say_it(console):
    svc = await console()
    assert "联系电话" in (await say(svc, "o_console_place_0001", "3号楼2单元401门口的楼道灯坏了") or "")  # 物业服务 visits
    reply = await say(svc, "o_console_place_0001", "不留")
    number = re.search(r"GD\d{8}-\d{4}", reply or "")
    assert number, reply
    zhang = await login(svc.http, svc.base, "zhang")
    status, _, resp = await zhang.get(f"/console/tickets?number={number.group(0)}")
    status, page, _ = await zhang.get(resp.headers["Location"])
    assert status == 200
    assert "3号楼2单元401室" in page, page
