"""bot/services/tickets.py: assignment, comments and the timeline through the staff API. Written against the mutants that survived the earlier tests
(docs/testing.md; tickets.py was measured only in part)."""

from __future__ import annotations

from sqlalchemy import select

from bot.services import tickets
from bot.storage.models import OutboxMessage
from tests.api.conftest import assert_error
from tests.tickets.conftest import Desk


async def ticket_of(desk: Desk, openid: str, text: str) -> int:
    assert "GD" in await desk.say(openid, text)
    return (await desk.tickets())[-1].id


async def outbox_texts(desk: Desk, openid: str) -> list[str]:
    async with desk.db.session() as s:
        rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.openid == openid))).all()
    return [r.payload["text"]["content"] for r in rows]


async def test_assignment_keeps_what_is_not_named_and_is_a_private_timeline_entry(desk: Desk) -> None:
    tid = await ticket_of(desk, "o_as1", "9号楼半夜有人装修太吵了")
    status, data, _ = await desk.api.call(
        "POST",
        f"/tickets/{tid}/assignment",
        "staff",
        json={"department": "物业服务中心", "assignee": "王师傅"},
    )
    assert status == 200, data
    status, data, _ = await desk.api.call(
        "POST", f"/tickets/{tid}/assignment", "staff", json={"assignee": "李师傅"}
    )
    assert status == 200 and (data["department"], data["assignee"]) == ("物业服务中心", "李师傅")
    status, data, _ = await desk.api.call(
        "POST", f"/tickets/{tid}/assignment", "staff", json={"department": "街道城管科"}
    )
    assert (data["department"], data["assignee"]) == ("街道城管科", "李师傅")
    assigns = [e for e in data["timeline"] if e["action"] == "assign"]
    assert [e["data"] for e in assigns] == [
        {"department": "物业服务中心", "assignee": "王师傅"},
        {"department": "物业服务中心", "assignee": "李师傅"},
        {"department": "街道城管科", "assignee": "李师傅"},
    ]
    assert all(e["public"] is False and e["at"].startswith("2026-11-22T01:00") for e in assigns)
    assert all(e["actor"].endswith("test staff") for e in assigns)


async def test_a_closed_or_rejected_ticket_is_not_assigned(desk: Desk) -> None:
    for openid, action in (("o_as2", "reject"), ("o_as3", "close")):
        tid = await ticket_of(desk, openid, "9号楼门口垃圾桶满了没人收")
        if action == "close":
            assert (await desk.act(tid, action="answer", resolution="已清运"))[0] == 200
            assert (await desk.act(tid, action="close"))[0] == 200
        else:
            assert (await desk.act(tid, action="reject", reason="不属于本社区"))[0] == 200
        status, body, _ = await desk.api.call(
            "POST", f"/tickets/{tid}/assignment", "staff", json={"assignee": "王"}
        )
        message = assert_error(status, body, 409, "illegal_transition")
        number = (await desk.api.ok(f"/tickets/{tid}", "staff"))["number"]
        state = "rejected" if action == "reject" else "closed"
        assert message == f"ticket {number} is {state}; reopen it first"


async def test_public_comments_reach_the_resident_and_private_ones_do_not(desk: Desk) -> None:
    tid = await ticket_of(desk, "o_cm1", "2号楼门口垃圾桶满了没人收")
    number = (await desk.api.ok(f"/tickets/{tid}", "staff"))["number"]
    before = await outbox_texts(desk, "o_cm1")
    status, private, _ = await desk.api.call(
        "POST", f"/tickets/{tid}/comments", "staff", json={"text": "内部：已联系维保公司"}
    )
    assert status == 201 and (private["action"], private["public"]) == ("comment", False)
    assert await outbox_texts(desk, "o_cm1") == before
    status, public, _ = await desk.api.call(
        "POST", f"/tickets/{tid}/comments", "staff", json={"text": "维保师傅明天上午到", "public": True}
    )
    assert status == 201 and (public["action"], public["public"], public["note"]) == (
        "comment",
        True,
        "维保师傅明天上午到",
    )
    assert (await outbox_texts(desk, "o_cm1"))[len(before) :] == [
        f"您的诉求 {number} 有新回复：维保师傅明天上午到"
    ]


async def test_tickets_of_a_resident_newest_first_and_the_latest_public_event(desk: Desk) -> None:
    first = await ticket_of(desk, "o_tl1", "3号楼楼下垃圾堆了好几天没人清理")
    second = await ticket_of(desk, "o_tl1", "9号楼半夜有人装修太吵了")
    await ticket_of(desk, "o_tl2", "2号楼门口垃圾桶满了没人收")
    async with desk.db.session() as s:
        rid = (await desk.tickets())[0].resident_id
        assert rid is not None
        assert [t.id for t in await tickets.tickets_of(s, rid)] == [second, first]
        assert [t.id for t in await tickets.tickets_of(s, rid, limit=1)] == [second]
    await desk.api.call(
        "POST", f"/tickets/{first}/comments", "staff", json={"text": "公开回复", "public": True}
    )
    await desk.api.call("POST", f"/tickets/{first}/comments", "staff", json={"text": "内部备注"})
    async with desk.db.session() as s:
        latest = await tickets.latest_public_event(s, first)
        assert latest is not None and latest.note == "公开回复" and latest.ticket_id == first
        other = await tickets.latest_public_event(s, second)
        assert other is not None and other.ticket_id == second
