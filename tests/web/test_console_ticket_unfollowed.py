"""A ticket's answer and public replies to a resident who unfollowed the account: nothing is queued
to WeChat (it would refuse it, 43004), the staff member's ticket page says the resident cannot
receive it, and the answer is still recorded on the ticket (console and JSON API). After following
again the resident is sent the next reply, never the ones from before."""

from __future__ import annotations

from tests.api.conftest import Api, make_tokens
from tests.web.console_util import (
    LI,
    login,
    sent_texts,
    start_console,
    ticket_from_conversation,
    timeline,
    wait_sent,
    waiting_resident,
)


async def test_no_push_to_a_resident_who_unfollowed_but_the_answer_is_recorded(service_factory, sqlite_url,
                                                                                 fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    api = Api(svc, await make_tokens(sqlite_url))
    openid = "o_ticket_unfollowed_01"
    li = await login(svc.http, svc.base, "li")
    rid = await waiting_resident(svc, li, openid)
    ticket, tid = await ticket_from_conversation(li, rid, "3号楼楼道灯坏了", "物业服务")
    status, _, _ = await li.post(f"{ticket}/transition", {"action": "accept"})
    assert status == 303
    await wait_sent(svc, openid, "已接单")  # followed: told of the progress
    s = svc.sender()
    assert (await s.send(svc.http, s.event(openid, "unsubscribe"))).status == 200

    # The page tells the staff member before they write, and the answer is recorded all the same.
    _, page, _ = await li.get(ticket)
    assert 'id="unsubscribed"' in page and "居民已取消关注公众号" in page
    status, _, _ = await li.post(f"{ticket}/comments", {"text": "师傅明天上午来修", "public": "1"})
    assert status == 303
    status, _, _ = await li.post(f"{ticket}/transition", {"action": "answer", "resolution": "灯已换好"})
    assert status == 303
    _, page, _ = await li.get(ticket)
    marked = [item for item in timeline(page).split("<li")[1:] if "未推送给居民" in item]
    assert len(marked) == 2 and "师傅明天上午来修" in marked[0] and "灯已换好" in marked[1], marked
    status, body, _ = await api.call("GET", f"/tickets/{tid}", "supervisor")
    assert status == 200 and body["status"] == "answered" and body["resolution"] == "灯已换好"
    undelivered = [e["action"] for e in body["timeline"] if e["data"].get("undelivered") == "unsubscribed"]
    assert undelivered == ["comment", "answer"]

    # Following again, the next reply goes out; what was written while unfollowed was never queued.
    assert (await s.send(svc.http, s.event(openid, "subscribe"))).status == 200
    _, page, _ = await li.get(ticket)
    assert 'id="unsubscribed"' not in page
    status, _, _ = await li.post(f"{ticket}/comments", {"text": "欢迎回来，灯已经修好了", "public": "1"})
    assert status == 303
    texts = await wait_sent(svc, openid, "欢迎回来，灯已经修好了")
    assert not any("师傅明天上午来修" in t or "灯已换好" in t for t in texts), texts
    assert texts == await sent_texts(svc, openid)
