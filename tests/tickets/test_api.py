"""The tickets API: filters, triage queue, paging, comments, assignment, duplicates, expired pushes."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bot.storage.models import OutboxMessage
from tests.api.conftest import assert_error, check_schema, response_schema
from tests.tickets.conftest import Desk


async def test_triage_filters_paging_and_schema(desk: Desk) -> None:
    assert "GD" in await desk.say("o_t1", "9号楼半夜有人装修太吵了")
    # Nothing a routing model can be confident about: the triage queue, not a guess.
    assert "工作人员会尽快分派" in await desk.say("o_t2", "你们管管吧，3号楼这个事情真的不行")
    assert "GD" in await desk.say("o_t3", "2号楼门口垃圾桶满了没人收")
    doc = await desk.api.openapi()
    body = await desk.api.ok("/tickets", "supervisor")
    check_schema(doc, response_schema(doc, "/tickets"), body)
    assert len(body["items"]) == 3 and body["items"][0]["id"] > body["items"][-1]["id"]
    triage = await desk.api.ok("/tickets", "supervisor", triage="true")
    assert [t["text"] for t in triage["items"]] == ["你们管管吧，3号楼这个事情真的不行"]
    assert triage["items"][0]["status"] == "submitted" and triage["items"][0]["department"] is None
    noise = await desk.api.ok("/tickets", "supervisor", category="噪音扰民")
    assert [t["building"] for t in noise["items"]] == ["9"]
    assert noise["items"][0]["assignee"] == "网格员-王芳" and noise["items"][0]["grid"] == "第三网格"
    assert (await desk.api.ok("/tickets", "supervisor", q="垃圾桶"))["items"][0]["building"] == "2"
    page1 = await desk.api.ok("/tickets", "supervisor", limit=2)
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = await desk.api.ok("/tickets", "supervisor", limit=2, cursor=page1["next_cursor"])
    assert len(page2["items"]) == 1 and page2["next_cursor"] is None
    status, err = await desk.api.get("/tickets", "supervisor", status="nonsense")
    assert_error(status, err, 400)
    status, err = await desk.api.get("/tickets", "merchant")
    assert_error(status, err, 403)
    status, err = await desk.api.get("/tickets/999999", "supervisor")
    assert_error(status, err, 404)
    detail = await desk.api.ok(f"/tickets/{triage['items'][0]['id']}", "supervisor")
    check_schema(doc, response_schema(doc, "/tickets/{id}"), detail)
    assert [e["action"] for e in detail["timeline"]] == ["submitted", "triage"]
    assert detail["timeline"][1]["public"] is False


async def test_comments_assignment_and_duplicates(desk: Desk) -> None:
    assert "GD" in await desk.say("o_d1", "3号楼楼下垃圾堆了好几天没人清理")
    reply = await desk.say("o_d2", "3号楼楼下的垃圾堆了好多天都没人清理")
    assert "类似问题" in reply
    first, second = await desk.tickets()
    assert second.duplicate_of_id == first.id and first.duplicate_of_id is None
    detail = await desk.api.ok(f"/tickets/{first.id}", "supervisor")
    assert [d["id"] for d in detail["duplicates"]] == [second.id]
    assert (await desk.api.ok(f"/tickets/{second.id}", "supervisor"))["duplicate_of_id"] == first.id

    status, event, _ = await desk.api.call("POST", f"/tickets/{first.id}/comments", "supervisor",
                                           json={"text": "已联系保洁", "public": True})
    assert status == 201 and event["public"] is True
    status, event, _ = await desk.api.call("POST", f"/tickets/{first.id}/comments", "supervisor",
                                           json={"text": "保洁公司合同快到期了"})
    assert status == 201 and event["public"] is False
    texts = await desk.pushed("o_d1", "已联系保洁")
    assert not any("合同" in t for t in texts)
    status, body, _ = await desk.api.call("POST", f"/tickets/{first.id}/assignment", "supervisor",
                                          json={"assignee": "保洁组-刘师傅"})
    assert status == 200 and body["assignee"] == "保洁组-刘师傅" and body["status"] == first.status
    # Residents never see staff notes in the chat either.
    status_text = await desk.say("o_d1", "查进度")
    assert "合同" not in status_text and "已联系保洁" in status_text


async def test_update_shown_on_next_message_when_push_expired(desk: Desk) -> None:
    openid = "o_window"
    assert "联系电话" in await desk.say(openid, "6号楼楼道里堆满了杂物")  # 安全隐患: staff visit
    assert "GD" in await desk.say(openid, "不留")
    (ticket,) = await desk.tickets()
    assert desk.svc.fake_api
    async with desk.svc.http.post(f"{desk.svc.fake_api}/fake/errors",
                                  json={"endpoint": "message/custom/send", "count": 5, "errcode": 45015}) as r:
        assert r.status == 200
    action: dict[str, Any] = {"action": "answer", "resolution": "杂物已清理"}
    if ticket.status == "submitted":
        assert (await desk.act(ticket.id, "supervisor", action="dispatch", department="物业服务中心"))[0] == 200
    assert (await desk.act(ticket.id, "supervisor", **action))[0] == 200
    for _ in range(200):  # the outbox worker tries, WeChat says the window is closed
        async with desk.db.session() as s:
            statuses = set((await s.scalars(select(OutboxMessage.status))).all())
        if statuses and statuses <= {"expired", "sent"} and "expired" in statuses:
            break
        await asyncio.sleep(0.05)
    assert "expired" in statuses
    reply = await desk.say(openid, "你好")
    *notices, answer = reply.split("\n\n")  # the usual answer to "你好" follows the updates
    assert notices and all(n.startswith(f"您的诉求 {ticket.number}") for n in notices)
    assert any("杂物已清理" in n for n in notices) and answer.strip() and "杂物" not in answer
    # Shown once.
    assert "杂物已清理" not in await desk.say(openid, "你好")
