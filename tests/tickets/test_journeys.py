"""Whole journeys through the WeChat endpoint and the staff API."""

from __future__ import annotations

import re
from pathlib import Path

from tests.api.conftest import assert_error
from tests.tickets.conftest import Desk

NUMBER = re.compile(r"GD\d{8}-\d{4}")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def register_media(desk: Desk, content: bytes, ctype: str) -> str:
    assert desk.svc.fake_api
    async with desk.svc.http.post(f"{desk.svc.fake_api}/fake/media", data=content,
                                  headers={"Content-Type": ctype}) as resp:
        return str((await resp.json())["media_id"])


async def test_report_with_photo_and_location_to_closed(desk: Desk) -> None:
    s = desk.svc.sender()
    openid = "o_report1"
    # Where is missing from the text: the bot asks once.
    assert "具体位置" in await desk.say(openid, "楼道灯坏了好几天了一直没人修")
    media_id = await register_media(desk, PNG, "image/png")
    assert "收到" in await desk.send(s.image(openid, media_id))
    reply = await desk.send(s.location(openid, 39.91, 116.40, "幸福小区3号楼"))
    assert "联系电话" in reply  # the category needs a visit
    reply = await desk.say(openid, "电话13812345678")
    number = NUMBER.search(reply)
    assert number, reply
    assert "内处理" in reply or "给您答复" in reply

    (ticket,) = await desk.tickets()
    assert ticket.number == number.group(0) and ticket.number.startswith("GD20261122-")
    assert ticket.location and ticket.location["label"] == "幸福小区3号楼" and ticket.building == "3"
    assert ticket.contact_phone == "13812345678"
    images = [a for a in ticket.attachments if a["kind"] == "image"]
    assert images and images[0]["file"].startswith("image/")
    stored = Path(desk.svc.settings.media_dir) / images[0]["file"]
    assert stored.read_bytes() == PNG

    # Staff take it through to an answer; the resident is told.
    if ticket.status == "submitted":
        status, body = await desk.act(ticket.id, "supervisor", action="dispatch", department="物业服务中心")
        assert status == 200, body
    status, body = await desk.act(ticket.id, "supervisor", action="accept")
    assert status == 200 and body["status"] == "accepted", body
    status, body = await desk.act(ticket.id, "supervisor", action="answer", resolution="已更换楼道灯泡",
                                  photos=["image/202611/after.jpg"])
    assert status == 200 and body["status"] == "answered", body
    texts = await desk.pushed(openid, "已办结")
    assert any("已更换楼道灯泡" in t and ticket.number in t for t in texts)

    # The resident rates it; satisfied closes it.
    assert "已完结" in await desk.say(openid, "满意 修得很快")
    code, detail, _ = await desk.api.call("GET", f"/tickets/{ticket.id}", "supervisor")
    assert code == 200
    assert detail["status"] == "closed" and detail["rating"] == "satisfied"
    assert detail["rating_comment"] == "修得很快"
    actions = [e["action"] for e in detail["timeline"]]
    assert actions[0] == "submitted" and "answer" in actions and actions[-1] == "close"


async def test_unsatisfied_reopens_with_comment(desk: Desk) -> None:
    openid = "o_unsat"
    reply = await desk.say(openid, "5号楼门口路灯不亮了")
    number = NUMBER.search(reply)
    assert number, reply
    (ticket,) = await desk.tickets()
    if ticket.status == "submitted":
        assert (await desk.act(ticket.id, "supervisor", action="dispatch", department="城管市政科"))[0] == 200
    assert (await desk.act(ticket.id, "supervisor", action="answer", resolution="已报修"))[0] == 200
    reply = await desk.say(openid, "不满意")
    assert "重新办理" in reply and "哪里不满意" in reply
    assert "转给办理人员" in await desk.say(openid, "灯还是不亮")
    _, detail, _ = await desk.api.call("GET", f"/tickets/{ticket.id}", "supervisor")
    assert detail["status"] == "reopened" and detail["reopen_count"] == 1
    assert detail["rating_comment"] == "灯还是不亮"
    assert any(e["action"] == "resident_comment" and e["note"] == "灯还是不亮" for e in detail["timeline"])


async def test_urgent_report_gets_emergency_numbers_first(desk: Desk) -> None:
    s = desk.svc.sender()
    reply = await s.send(desk.svc.http, s.text("o_urgent", "7号楼2单元楼道里燃气味很大"))
    assert reply.status == 200
    first = reply.content or ""
    # The gas company's line first (bot/rules/hazards.yml), then 119/120, gas advice only.
    assert first.splitlines()[0].find("燃气抢修电话96777") >= 0 and "119" in first and "120" in first
    assert "电梯" not in first and "阀门" in first
    # The emergency numbers come before anything else; the ticket number follows.
    number = NUMBER.search(first)
    assert number and first.index("119") < number.start() and "紧急情况登记" in first
    (ticket,) = await desk.tickets()
    assert ticket.urgency == "urgent" and ticket.building == "7"
    assert ticket.deadline is not None and (ticket.deadline - ticket.created_at).total_seconds() == 2 * 3600


async def test_status_query_shows_only_own_tickets(desk: Desk) -> None:
    reply = await desk.say("o_alice", "3号楼楼下垃圾堆了好几天没人清理")
    mine = NUMBER.search(reply)
    assert mine, reply
    reply = await desk.say("o_bob", "9号楼半夜有人装修太吵了")
    bobs = NUMBER.search(reply)
    assert bobs, reply
    status = await desk.say("o_alice", "查进度")
    assert mine.group(0) in status and bobs.group(0) not in status
    # Asking for someone else's number reveals nothing.
    other = await desk.say("o_alice", f"{bobs.group(0)} 怎么样了")
    assert "没有找到" in other and "装修" not in other
    assert mine.group(0) in await desk.say("o_alice", mine.group(0))
    assert "还没有提交过" in await desk.say("o_carol", "我的诉求")


async def test_cancel_mid_flow(desk: Desk) -> None:
    assert "具体位置" in await desk.say("o_cancel", "楼道里的灯不亮")
    assert "已取消" in await desk.say("o_cancel", "算了")
    assert await desk.tickets() == []


async def test_idle_flow_expires_politely(desk: Desk) -> None:
    from datetime import timedelta

    assert "具体位置" in await desk.say("o_idle", "楼道里的灯不亮")
    desk.clock.advance(timedelta(hours=3))
    assert "太久没有回复" in await desk.say("o_idle", "5号楼")
    assert await desk.tickets() == []


async def test_illegal_transition_refused(desk: Desk) -> None:
    reply = await desk.say("o_illegal", "2号楼2单元门口垃圾桶满了没人收")
    assert NUMBER.search(reply), reply
    (ticket,) = await desk.tickets()
    status, body = await desk.act(ticket.id, "supervisor", action="close")
    message = assert_error(status, body, 409, "illegal_transition")
    assert "cannot close" in message and ticket.status in message
    # A staff member may not reject (supervisor action).
    status, body = await desk.act(ticket.id, "staff", action="reject", reason="不归我们管")
    assert_error(status, body, 403)
    status, body = await desk.act(ticket.id, "supervisor", action="reject")
    assert_error(status, body, 400, "missing_reason")
    status, body = await desk.act(ticket.id, "supervisor", action="reject", reason="不属于本辖区")
    assert status == 200 and body["status"] == "rejected" and body["reject_reason"] == "不属于本辖区"
    texts = await desk.pushed("o_illegal", "未能受理")
    assert any("不属于本辖区" in t for t in texts)
