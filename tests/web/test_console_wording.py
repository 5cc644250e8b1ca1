"""The console speaks Chinese to its users: a ticket's timeline names who acted (居民, 系统, the staff
member) and the resident's rating, the inbox and a conversation name intents and messages without
text in words, the dashboard names intents and reasons and shows its figures' tables as the cards
do (100.0%, 秒), the review queue says what the bot took a message for. Over HTTP on SQLite; the
resident's side goes through /wechat as WeChat sends it."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

from bot.clock import ManualClock
from tests.web.console_util import (
    YUN,
    ZHANG,
    login,
    reported_ticket,
    say,
    start_console,
    timeline,
    waiting_resident,
)

USERS = (ZHANG, YUN)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def start(service_factory: Any, sqlite_url: str, fake_api: str) -> Any:
    return await start_console(service_factory, sqlite_url, fake_api, *USERS)


async def test_a_tickets_timeline_names_who_acted_and_the_rating(service_factory, sqlite_url, fake_api):
    svc = await start(service_factory, sqlite_url, fake_api)
    openid = "o_wording_ticket_0001"
    zhang = await login(svc.http, svc.base, "zhang")
    ticket, _ = await reported_ticket(svc, zhang, openid, "3号楼2单元楼道灯坏了好几天了", phone="不留")
    _, page, _ = await zhang.get(ticket)
    if "待分派" in page:
        status, _, _ = await zhang.post(f"{ticket}/transition", {"action": "dispatch", "department": "物业服务中心"})
        assert status == 303
    status, _, _ = await zhang.post(f"{ticket}/transition", {"action": "answer", "resolution": "已更换灯泡"})
    assert status == 303
    assert "评价" in (await say(svc, openid, "满意") or "")
    _, page, _ = await zhang.get(ticket)
    events = timeline(page)
    assert "session:" not in events and "resident" not in events and "system" not in events, events
    assert "居民" in events and "zhang" in events
    assert re.search(r"<b>评价</b>\s*满意", events), events


async def test_intents_and_messages_without_text_are_named(service_factory, sqlite_url, fake_api):
    svc = await start(service_factory, sqlite_url, fake_api)
    openid = "o_wording_inbox_0001"
    s = svc.sender()
    assert (await s.send(svc.http, s.event(openid, "subscribe"))).status == 200
    assert (await s.send(svc.http, s.location(openid, 40.0768, 113.3001, "新建南社区3号楼"))).status == 200
    assert await say(svc, openid, "转人工")
    zhang = await login(svc.http, svc.base, "zhang")
    _, inbox, _ = await zhang.get("/console/inbox")
    rid = re.search(r'data-resident="(\d+)"', inbox)
    assert rid
    assert ">转人工 0." in inbox and ">handoff " not in inbox, inbox
    _, page, _ = await zhang.get(f"/console/conversations/{rid.group(1)}")
    messages = page.split('id="messages"', 1)[1].split("</ul>", 1)[0]
    assert "[关注公众号]" in messages and "[event" not in messages, messages
    assert "[位置] 新建南社区3号楼" in messages, messages
    assert ">转人工 0." in messages and "· handoff" not in messages, messages


async def test_the_dashboard_names_intents_reasons_and_units(service_factory, sqlite_url, fake_api):
    svc = await start(service_factory, sqlite_url, fake_api)
    await say(svc, "o_wording_dash_0001", "3号楼楼道灯坏了好几天了")
    await say(svc, "o_wording_dash_0002", "转人工")
    yun = await login(svc.http, svc.base, "yun")
    status, page, _ = await yun.get("/console/dashboard")
    assert status == 200
    data = json.loads(html.unescape(page.split('id="dashboard-data">', 1)[1].split("</script>", 1)[0]))
    names = {r["name"] for r in data["messages_by_intent"]["rows"]}
    assert {"反映问题", "转人工"} <= names and not names & {"complaint", "handoff"}, names
    stack = {c["label"] for c in data["messages_per_day"]["columns"]}
    assert "反映问题" in stack and "complaint" not in stack, stack

    def table(name: str) -> str:
        return html.unescape(page.split(f'id="table-{name}"', 1)[1].split("</table>", 1)[0])

    assert "居民要求人工" in table("handoffs_by_reason") and ">asked<" not in table("handoffs_by_reason")
    figures = table("residents_figures")
    assert re.search(r'data-key="current">\d+ 人<', figures), figures  # 活跃居民, with its unit
    assert re.search(r'data-key="current">\d+\.\d%<', figures), figures  # 机器人解决率 as a percentage
    assert ">s<" not in figures and ">%<" not in figures, figures
    # The download keeps the numbers (rates as fractions) and names the rows and units in words.
    async with svc.http.get(svc.base + "/console/dashboard/export",
                            params={"section": "residents", "table": "messages_by_intent", "format": "csv"},
                            headers=yun.cookie) as r:
        body = (await r.read()).decode("utf-8-sig")
    assert "反映问题," in body and "complaint" not in body, body
    async with svc.http.get(svc.base + "/console/dashboard/export",
                            params={"section": "residents", "table": "residents_figures", "format": "csv"},
                            headers=yun.cookie) as r:
        body = (await r.read()).decode("utf-8-sig")
    assert "接入时长中位数" in body and ",秒" in body and ",s\r" not in body and ",s\n" not in body, body


async def test_the_review_queue_says_what_the_bot_took_a_message_for(service_factory, sqlite_url, fake_api):
    svc = await start(service_factory, sqlite_url, fake_api)
    for n in range(2):
        await say(svc, f"o_wording_review_000{n}", "阿巴阿巴咕噜咕噜")
    yun = await login(svc.http, svc.base, "yun")
    status, page, _ = await yun.get("/console/tuning")
    assert status == 200
    said = [re.sub(r"<[^>]+>", "", s) for s in re.findall(r"机器人理解为：(.*?)</p>", page)]  # as read
    assert said, page
    assert all(re.search(r"[\u4e00-\u9fff]", s) for s in said), said


async def test_the_queue_says_how_long_a_resident_has_waited(service_factory, sqlite_url, fake_api):
    clock = ManualClock()
    svc = await start_console(service_factory, sqlite_url, fake_api, *USERS, clock=clock)
    assert await say(svc, "o_wording_wait_0001", "转人工")
    clock.advance(timedelta(minutes=7, seconds=20))
    zhang = await login(svc.http, svc.base, "zhang")
    for path in ("/console/handoffs", "/console/handoffs/rows"):
        _, page, _ = await zhang.get(path)
        waited = re.search(r'class="waited">([^<]*)<', page)
        assert waited and waited.group(1) == "7分钟", page


async def test_a_missing_page_is_said_in_chinese(service_factory, sqlite_url, fake_api):
    svc = await start(service_factory, sqlite_url, fake_api)
    zhang = await login(svc.http, svc.base, "zhang")
    for path in ("/console/tickets/99999", "/console/tickets/abc", "/console/conversations/99999",
                 "/console/nothing-here", "/merchant/nothing-here"):
        status, page, resp = await zhang.get(path)
        assert status == 404 and "没有找到这个页面" in page and "Not Found" not in page, (path, page)
        assert resp.headers["X-Frame-Options"] == "DENY"
    status, page, _ = await zhang.get("/logout")  # a form's address opened as a link
    assert status == 405 and "不能这样打开" in page, page
    async with svc.http.get(svc.base + "/api/v1/nothing-here") as r:  # the API keeps its JSON errors
        assert r.status == 404 and "没有找到这个页面" not in await r.text()


async def test_a_picture_the_resident_sent_is_shown_in_the_conversation(service_factory, sqlite_url, fake_api):
    svc = await start(service_factory, sqlite_url, fake_api)
    openid = "o_wording_picture_0001"
    assert await say(svc, openid, "转人工")
    async with svc.http.post(f"{svc.fake_api}/fake/media", data=PNG, headers={"Content-Type": "image/png"}) as r:
        media_id = str((await r.json())["media_id"])
    s = svc.sender()
    assert (await s.send(svc.http, s.image(openid, media_id))).status == 200
    zhang = await login(svc.http, svc.base, "zhang")
    _, inbox, _ = await zhang.get("/console/inbox")
    rid = re.search(r'data-resident="(\d+)"', inbox)
    assert rid
    _, page, _ = await zhang.get(f"/console/conversations/{rid.group(1)}")
    src = re.search(r'<img class="msg-image" src="(/console/conversations/\d+/images/\d+)"', page)
    assert src, page
    async with svc.http.get(svc.base + src.group(1), headers=zhang.cookie) as r:
        assert r.status == 200 and r.content_type == "image/png"
        assert await r.read() == PNG
    # Another resident's address, or a message that is no picture: not found.
    status, _, _ = await zhang.get(src.group(1).replace(f"/conversations/{rid.group(1)}/", "/conversations/99999/"))
    assert status == 404
    mid = int(src.group(1).rsplit("/", 1)[1])
    status, _, _ = await zhang.get(f"/console/conversations/{rid.group(1)}/images/{mid - 1}")
    assert status == 404


async def test_a_ticket_from_a_conversation_has_its_place(service_factory, sqlite_url, fake_api):
    svc = await start(service_factory, sqlite_url, fake_api)
    openid = "o_wording_place_0001"
    await say(svc, openid, "我家卫生间漏水了，楼下都湿了")
    zhang = await login(svc.http, svc.base, "zhang")
    conversation = f"/console/conversations/{await waiting_resident(svc, zhang, openid)}"
    _, page, _ = await zhang.get(conversation)
    # The report is offered as the ticket's text, not the 转人工 that followed it.
    assert re.search(r'id="ticket-text"[^>]*>我家卫生间漏水了，楼下都湿了</textarea>', page), page
    assert 'name="place"' in page
    _, _, resp = await zhang.post(f"{conversation}/ticket", {"text": "卫生间漏水到楼下", "category": "物业服务",
                                                             "place": "5号楼2单元301"})
    _, page, _ = await zhang.get(resp.headers["Location"])
    assert "<dt>地点</dt><dd>5号楼2单元301室</dd>" in page, page
    _, _, resp = await zhang.post(f"{conversation}/ticket", {"text": "东门的路灯不亮", "category": "市政设施",
                                                             "place": "小区东门"})
    _, page, _ = await zhang.get(resp.headers["Location"])
    assert "<dt>地点</dt><dd>小区东门</dd>" in page, page
