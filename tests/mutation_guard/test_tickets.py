"""bot/services/tickets.py: assignment, comments and the timeline through the staff API. Written against the mutants that survived the earlier tests
(docs/testing.md; tickets.py was measured only in part)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.services import tickets
from bot.services.dispatch import load_rules
from bot.services.points import rules as points_rules
from bot.storage.db import Database
from bot.storage.models import OutboxMessage, PointsEntry, Resident, Ticket, TicketEvent
from tests.api.conftest import assert_error
from tests.tickets.conftest import START, Desk


async def ticket_of(desk: Desk, openid: str, text: str) -> int:
    assert "GD" in await desk.say(openid, text)
    return (await desk.tickets())[-1].id


async def outbox_texts(desk: Desk, openid: str) -> list[str]:
    async with desk.db.session() as s:
        rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.openid == openid)
                              .order_by(OutboxMessage.id))).all()
    return [r.payload["text"]["content"] for r in rows]


async def test_assignment_keeps_what_is_not_named_and_is_a_private_timeline_entry(desk: Desk) -> None:
    tid = await ticket_of(desk, "o_as1", "9号楼半夜有人装修太吵了")
    status, data, _ = await desk.api.call(
        "POST",
        f"/tickets/{tid}/assignment",
        "supervisor",
        json={"department": "物业服务中心", "assignee": "王师傅"},
    )
    assert status == 200, data
    status, data, _ = await desk.api.call(
        "POST", f"/tickets/{tid}/assignment", "supervisor", json={"assignee": "李师傅"}
    )
    assert status == 200 and (data["department"], data["assignee"]) == ("物业服务中心", "李师傅")
    status, data, _ = await desk.api.call(
        "POST", f"/tickets/{tid}/assignment", "supervisor", json={"department": "街道城管科"}
    )
    assert (data["department"], data["assignee"]) == ("街道城管科", "李师傅")
    assigns = [e for e in data["timeline"] if e["action"] == "assign"]
    assert [e["data"] for e in assigns] == [
        {"department": "物业服务中心", "assignee": "王师傅"},
        {"department": "物业服务中心", "assignee": "李师傅"},
        {"department": "街道城管科", "assignee": "李师傅"},
    ]
    assert all(e["public"] is False and e["at"].startswith("2026-11-22T01:00") for e in assigns)
    assert all(e["actor"].endswith("test supervisor") for e in assigns)


async def test_a_closed_or_rejected_ticket_is_not_assigned(desk: Desk) -> None:
    for openid, action in (("o_as2", "reject"), ("o_as3", "close")):
        tid = await ticket_of(desk, openid, "9号楼门口垃圾桶满了没人收")
        if action == "close":
            assert (await desk.act(tid, action="answer", resolution="已清运"))[0] == 200
            assert (await desk.act(tid, action="close"))[0] == 200
        else:
            assert (await desk.act(tid, action="reject", reason="不属于本社区"))[0] == 200
        status, body, _ = await desk.api.call(
            "POST", f"/tickets/{tid}/assignment", "supervisor", json={"assignee": "王"}
        )
        message = assert_error(status, body, 409, "illegal_transition")
        number = (await desk.api.ok(f"/tickets/{tid}", "supervisor"))["number"]
        state = "rejected" if action == "reject" else "closed"
        assert message == f"ticket {number} is {state}; reopen it first"


async def test_public_comments_reach_the_resident_and_private_ones_do_not(desk: Desk) -> None:
    tid = await ticket_of(desk, "o_cm1", "2号楼门口垃圾桶满了没人收")
    number = (await desk.api.ok(f"/tickets/{tid}", "supervisor"))["number"]
    before = await outbox_texts(desk, "o_cm1")
    status, private, _ = await desk.api.call(
        "POST", f"/tickets/{tid}/comments", "supervisor", json={"text": "内部：已联系维保公司"}
    )
    assert status == 201 and (private["action"], private["public"]) == ("comment", False)
    assert await outbox_texts(desk, "o_cm1") == before
    status, public, _ = await desk.api.call(
        "POST", f"/tickets/{tid}/comments", "supervisor", json={"text": "维保师傅明天上午到", "public": True}
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
        "POST", f"/tickets/{first}/comments", "supervisor", json={"text": "公开回复", "public": True}
    )
    await desk.api.call("POST", f"/tickets/{first}/comments", "supervisor", json={"text": "内部备注"})
    async with desk.db.session() as s:
        latest = await tickets.latest_public_event(s, first)
        assert latest is not None and latest.note == "公开回复" and latest.ticket_id == first
        other = await tickets.latest_public_event(s, second)
        assert other is not None and other.ticket_id == second


# -- the whole state machine through the staff API, as staff and residents see it ----------------
# Written against the survivors of the first whole run of tickets.py (docs/testing.md).

T0 = "2026-11-22T01:00:00+00:00"  # tests.tickets.conftest.START


def at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


async def detail(desk: Desk, tid: int) -> dict[str, Any]:
    body: dict[str, Any] = await desk.api.ok(f"/tickets/{tid}", "supervisor")
    return body


async def row(desk: Desk, tid: int) -> Ticket:
    async with desk.db.session() as s:
        ticket = await s.get(Ticket, tid)
    assert ticket is not None
    return ticket


def last_event(body: dict[str, Any]) -> dict[str, Any]:
    event = dict(body["timeline"][-1])
    event.pop("id")
    return event


async def new_pushes(desk: Desk, openid: str, before: list[str]) -> list[str]:
    texts = await outbox_texts(desk, openid)
    assert texts[: len(before)] == before
    return texts[len(before) :]


async def test_each_step_is_on_the_timeline_and_told_to_the_resident(desk: Desk) -> None:
    openid = "o_life1"
    tid = await ticket_of(desk, openid, "9号楼半夜有人装修太吵了")
    first = await detail(desk, tid)
    number = first["number"]
    assert (first["status"], first["department"], first["assignee"]) == ("dispatched", "综合执法队", "网格员-王芳")
    assert await outbox_texts(desk, openid) == []  # the chat's reply told the resident; no push
    sent: list[str] = []

    desk.clock.advance(timedelta(minutes=10))
    status, body = await desk.act(tid, "supervisor", action="accept", note="  今晚去现场  ")
    assert status == 200, body
    assert last_event(body) == {
        "at": at(10), "actor": "token:test supervisor", "action": "accept", "from_status": "dispatched",
        "to_status": "accepted", "note": "  今晚去现场  ", "public": True, "data": {"assignee": "test supervisor"},
    }
    # Whoever accepts becomes the handler (in place of the grid worker it was dispatched to).
    assert (body["status"], body["updated_at"], body["created_at"], body["assignee"]) == (
        "accepted", at(10), T0, "test supervisor")
    assert await new_pushes(desk, openid, sent) == [f"您的诉求 {number} 有新进展：综合执法队已接单。\n工作人员说明：今晚去现场"]
    sent = await outbox_texts(desk, openid)

    desk.clock.advance(timedelta(minutes=10))
    status, body = await desk.act(tid, "supervisor", action="start", note="   ")
    assert status == 200 and body["status"] == "in_progress", body
    assert await new_pushes(desk, openid, sent) == [f"您的诉求 {number} 有新进展：正在处理"]
    sent = await outbox_texts(desk, openid)
    assert (await row(desk, tid)).responded_at == START + timedelta(minutes=10)  # the first response

    desk.clock.advance(timedelta(minutes=10))
    photos = ["image/202611/a.jpg", "image/202611/b.jpg"]
    status, body = await desk.act(tid, "supervisor", action="answer", resolution="  已劝导施工方夜间停工  ", photos=photos)
    assert status == 200, body
    assert (body["status"], body["resolution"], body["resolution_photos"]) == ("answered", "已劝导施工方夜间停工", photos)
    assert (body["answered_at"], body["closed_at"], body["updated_at"]) == (at(30), None, at(30))
    assert last_event(body) == {
        "at": at(30), "actor": "token:test supervisor", "action": "answer", "from_status": "in_progress",
        "to_status": "answered", "note": "已劝导施工方夜间停工", "public": True, "data": {},
    }
    assert await new_pushes(desk, openid, sent) == [
        f"您的诉求 {number} 已办结：已劝导施工方夜间停工\n请回复“满意”“基本满意”或“不满意”评价（也可以回复数字 1、2、3），不满意可以直接说原因。"
    ]
    sent = await outbox_texts(desk, openid)

    desk.clock.advance(timedelta(minutes=10))
    status, body = await desk.act(tid, action="close", note="回访无异议")
    assert status == 200, body
    assert (body["status"], body["closed_at"], body["answered_at"]) == ("closed", at(40), at(30))
    assert last_event(body)["note"] == "回访无异议" and last_event(body)["from_status"] == "answered"
    assert await new_pushes(desk, openid, sent) == [f"您的诉求 {number} 已完结，谢谢您的支持。"]
    sent = await outbox_texts(desk, openid)
    async with desk.db.session() as s:
        entries = (await s.scalars(select(PointsEntry).where(PointsEntry.ref_id == str(tid)))).all()
    assert [(e.reason, e.ref_type, e.amount, e.resident_id) for e in entries] == [
        ("valid_report", "ticket", points_rules().earn["valid_report"], body["resident_id"])
    ]

    desk.clock.advance(timedelta(minutes=10))
    status, body = await desk.act(tid, action="reopen", note="复查仍有噪音")
    assert status == 200, body
    assert (body["status"], body["reopen_count"], body["answered_at"], body["closed_at"]) == ("reopened", 1, None, None)
    assert body["deadline"] == (START + timedelta(minutes=50, hours=168)).isoformat()
    assert body["resolution"] == "已劝导施工方夜间停工"  # kept for the record
    assert last_event(body) == {
        "at": at(50), "actor": "token:test supervisor", "action": "reopen", "from_status": "closed",
        "to_status": "reopened", "note": "复查仍有噪音", "public": True, "data": {},
    }
    assert await new_pushes(desk, openid, sent) == [f"您的诉求 {number} 已重新办理，我们会尽快处理。"]
    sent = await outbox_texts(desk, openid)

    desk.clock.advance(timedelta(minutes=10))
    status, body = await desk.act(tid, action="escalate")
    assert status == 200 and body["status"] == "escalated", body
    assert last_event(body)["data"] == {"notify_role": "supervisor"} and last_event(body)["note"] is None
    assert (await row(desk, tid)).escalated_at == START + timedelta(minutes=60)
    assert await new_pushes(desk, openid, sent) == [f"您的诉求 {number} 有新进展：已上报领导督办"]
    sent = await outbox_texts(desk, openid)

    status, body = await desk.act(tid, "supervisor", action="dispatch", department="街道城管科")
    assert status == 200 and (body["status"], body["department"], body["assignee"]) == (
        "dispatched", "街道城管科", "test supervisor")  # a dispatch naming no one keeps the handler (who accepted)
    assert last_event(body)["data"] == {"department": "街道城管科", "assignee": "test supervisor"}
    assert await new_pushes(desk, openid, sent) == [f"您的诉求 {number} 有新进展：已派给街道城管科"]
    sent = await outbox_texts(desk, openid)
    status, body = await desk.act(tid, "supervisor", action="dispatch", assignee="城管-李队")
    assert (body["department"], body["assignee"]) == ("街道城管科", "城管-李队")
    sent = await outbox_texts(desk, openid)

    status, body = await desk.act(tid, action="reject", reason="  属于物业合同纠纷  ", note="转交物业")
    assert status == 200 and (body["status"], body["reject_reason"]) == ("rejected", "属于物业合同纠纷"), body
    assert (last_event(body)["note"], last_event(body)["data"].get("note")) == ("属于物业合同纠纷", "转交物业")
    assert await new_pushes(desk, openid, sent) == [f"您的诉求 {number} 未能受理：属于物业合同纠纷"]
    assert (await row(desk, tid)).responded_at == START + timedelta(minutes=10)  # still the first
    status, body = await desk.act(tid, action="reopen")
    assert status == 200 and body["reopen_count"] == 2, body  # counted again


async def test_a_rejected_ticket_closed_earns_no_points_and_a_note_from_the_system_is_not_shown(desk: Desk) -> None:
    openid = "o_life2"
    tid = await ticket_of(desk, openid, "2号楼门口垃圾桶满了没人收")
    number = (await detail(desk, tid))["number"]
    status, body = await desk.act(tid, action="reject", reason="重复反映")
    assert status == 200 and last_event(body)["note"] == "重复反映", body
    assert (await row(desk, tid)).responded_at == START
    status, body = await desk.act(tid, action="close")
    assert status == 200 and body["status"] == "closed" and body["closed_at"] == T0
    async with desk.db.transaction() as s:
        assert (await s.scalars(select(PointsEntry).where(PointsEntry.ref_id == str(tid)))).all() == []
        ticket = await s.get(Ticket, tid)
        assert ticket is not None
        # A system actor's note (the scheduler's) stays on the timeline, not in the push.
        await tickets.transition(s, ticket, "reopen", actor="system", now=START, rules=load_rules(),
                                 note="自动重办")
    texts = await outbox_texts(desk, openid)
    assert texts[-1] == f"您的诉求 {number} 已重新办理，我们会尽快处理。"
    async with desk.db.transaction() as s:
        ticket = await s.get(Ticket, tid)
        assert ticket is not None
        await tickets.transition(s, ticket, "accept", actor="system:scheduler", now=START, rules=load_rules(),
                                 note="自动接单")
    assert (await outbox_texts(desk, openid))[-1] == f"您的诉求 {number} 有新进展：环卫所已接单"


# status → the actions it allows (docs/tickets.md's state machine)
ALLOWED = {
    "submitted": ["dispatch", "escalate", "reject"],
    "dispatched": ["accept", "answer", "dispatch", "escalate", "reject", "start"],
    "accepted": ["answer", "escalate", "start"],
    "in_progress": ["answer", "escalate"],
    "answered": ["close", "reopen"],
    "closed": ["reopen"],
    "reopened": ["accept", "answer", "dispatch", "escalate", "reject", "start"],
    "escalated": ["accept", "answer", "dispatch", "reject", "start"],
    "rejected": ["close", "reopen"],
}
ACTIONS = ["dispatch", "accept", "start", "answer", "reject", "reopen", "escalate", "close"]
# One walk through every status: (action, its fields) → the status it leads to.
WALK = [
    ({"action": "dispatch", "assignee": "网格员-张敏"}, "dispatched"),
    ({"action": "accept"}, "accepted"),
    ({"action": "start"}, "in_progress"),
    ({"action": "answer", "resolution": "已处理"}, "answered"),
    ({"action": "close"}, "closed"),
    ({"action": "reopen"}, "reopened"),
    ({"action": "escalate"}, "escalated"),
    ({"action": "reject", "reason": "不属于本社区"}, "rejected"),
]


async def test_every_status_refuses_the_actions_it_does_not_allow_and_names_the_allowed(desk: Desk) -> None:
    assert "工作人员会尽快分派" in await desk.say("o_walk", "你们管管吧，3号楼这个事情真的不行")
    tid = (await desk.tickets())[-1].id
    number = (await detail(desk, tid))["number"]
    status_now = "submitted"
    # What each action needs, refused before anything changes.
    status, body = await desk.act(tid, action="dispatch")
    assert assert_error(status, body, 400, "missing_department") == "dispatch needs a department or an assignee"
    for step in [*WALK, None]:
        for action in ACTIONS:
            if action in ALLOWED[status_now]:
                continue
            status, body = await desk.act(tid, action=action, reason="r", resolution="r", department="d")
            message = assert_error(status, body, 409, "illegal_transition")
            assert message == (f"cannot {action} ticket {number}: it is {status_now}; "
                               f"allowed now: {', '.join(ALLOWED[status_now])}")
        if step is None:
            break
        fields, status_now = step
        if fields["action"] == "answer":
            for blank in ({}, {"resolution": "  "}):
                status, body = await desk.act(tid, action="answer", **blank)
                assert assert_error(status, body, 400, "missing_resolution") == "answer needs the resolution text"
        if fields["action"] == "reject":
            status, body = await desk.act(tid, action="reject", reason=" \n")
            assert assert_error(status, body, 400, "missing_reason") == "reject needs a reason"
        status, body = await desk.act(tid, **fields)
        assert status == 200 and body["status"] == status_now, body
        if fields["action"] == "dispatch":
            assert (body["department"], body["assignee"]) == (None, "网格员-张敏")
    assert [e["to_status"] for e in (await detail(desk, tid))["timeline"] if e["to_status"]] == [
        "submitted", *(s for _, s in WALK)]
    # A department alone is enough to dispatch too.
    assert "工作人员会尽快分派" in await desk.say("o_walk2", "你们管管吧，5号楼这个事情真的不行")
    other = (await desk.tickets())[-1].id
    status, body = await desk.act(other, "supervisor", action="dispatch", department="物业服务中心")
    assert status == 200 and (body["department"], body["assignee"]) == ("物业服务中心", None), body
    assert (await row(desk, other)).responded_at is None  # dispatching is not yet a response


def test_an_unknown_action_is_named_with_the_known_ones() -> None:
    ticket = Ticket(number="GD20261122-0001", status="answered")
    with pytest.raises(tickets.TicketError) as info:
        tickets.check_transition(ticket, "archive")
    assert info.value.code == "unknown_action"
    assert info.value.message == (
        "unknown action 'archive'; known: dispatch, accept, start, answer, reject, reopen, escalate, close")
    assert tickets.check_transition(ticket, "reopen") == "reopened"
    assert tickets.check_transition(Ticket(number="x", status="submitted"), "dispatch") == "dispatched"


# -- ratings through the chat --------------------------------------------------------------------
async def answered_ticket(desk: Desk, openid: str, text: str) -> tuple[int, str]:
    tid = await ticket_of(desk, openid, text)
    status, body = await desk.act(tid, "supervisor", action="answer", resolution="已处理完毕")
    assert status == 200, body
    return tid, body["number"]


async def test_ratings_close_or_reopen_without_a_push_and_keep_the_words(desk: Desk) -> None:
    cases = [
        ("o_rate1", "基本满意", "basic", None, "closed"),
        ("o_rate2", "满意，师傅很负责", "satisfied", "师傅很负责", "closed"),
        ("o_rate3", "不满意", "unsatisfied", None, "reopened"),
        ("o_rate4", "不满意 还是很吵", "unsatisfied", "还是很吵", "reopened"),
    ]
    for openid, said, rating, comment_text, after in cases:
        tid, number = await answered_ticket(desk, openid, "9号楼半夜有人装修太吵了")
        pushed = await outbox_texts(desk, openid)
        desk.clock.advance(timedelta(minutes=5))
        reply = await desk.say(openid, said)
        assert number in reply, reply
        body = await detail(desk, tid)
        assert (body["status"], body["rating"], body["rating_comment"]) == (after, rating, comment_text), said
        assert await outbox_texts(desk, openid) == pushed  # the chat's reply is the only answer
        events = [dict(e) for e in body["timeline"][-2:]]
        for e in events:
            e.pop("id")
        now = desk.clock.now().isoformat()
        assert events[0] == {"at": now, "actor": "resident", "action": "rate", "from_status": None,
                             "to_status": None, "note": comment_text, "public": True, "data": {"rating": rating}}
        second = {"at": now, "actor": "resident", "from_status": "answered", "to_status": after, "public": True,
                  "data": {}}
        if after == "closed":
            assert events[1] == {**second, "action": "close", "note": None}
            assert body["closed_at"] == now and body["reopen_count"] == 0
        else:
            assert events[1] == {**second, "action": "reopen", "note": comment_text or "居民不满意，重办"}
            assert body["reopen_count"] == 1 and body["answered_at"] is None
        async with desk.db.session() as s:
            credited = (await s.scalars(select(PointsEntry).where(PointsEntry.ref_id == str(tid)))).all()
        assert len(credited) == (1 if after == "closed" else 0)


async def test_a_rating_is_refused_unless_known_and_the_ticket_answered(desk: Desk) -> None:
    tid = await ticket_of(desk, "o_rate5", "9号楼半夜有人装修太吵了")
    rules = load_rules()
    async with desk.db.transaction() as s:
        ticket = await s.get(Ticket, tid)
        assert ticket is not None
        with pytest.raises(tickets.TicketError) as info:
            await tickets.rate(s, ticket, "satisfied", None, now=START, rules=rules)
        assert info.value.code == "illegal_transition"
        assert info.value.message == f"ticket {ticket.number} is dispatched, not answered"
        with pytest.raises(tickets.TicketError) as info:
            await tickets.rate(s, ticket, "满意", None, now=START, rules=rules)
        assert info.value.code == "bad_rating"
        assert info.value.message == "rating must be one of ['basic', 'satisfied', 'unsatisfied']"
    assert [e.action for e in await desk.events(tid)] == ["submitted", "dispatch"]


# -- the deadline a reopened ticket gets ---------------------------------------------------------
async def test_a_reopened_ticket_gets_its_category_and_urgency_deadline_and_starts_afresh(desk: Desk) -> None:
    from bot.services.jobs import escalate_overdue, remind_assignees
    from tests.tickets.test_scheduler import runtime

    water = await ticket_of(desk, "o_reo1", "家里停水了，8号楼2单元，电话13900001111")
    assert "GD" in await desk.say("o_reo2", "7号楼2单元楼道里燃气味很大")
    gas = (await desk.tickets())[-1].id
    assert (await row(desk, gas)).urgency == "urgent"
    desk.clock.advance(timedelta(hours=20))  # most of the water ticket's 24 h; the gas ticket's 2 h are over
    await remind_assignees(runtime(desk), desk.clock.now())
    await escalate_overdue(runtime(desk), desk.clock.now())
    assert (await row(desk, water)).reminded_at is not None and (await row(desk, gas)).escalated_at is not None
    for tid in (water, gas):
        assert (await desk.act(tid, "supervisor", action="answer", resolution="已处理"))[0] == 200
    assert "已完结" in await desk.say("o_reo1", "满意")
    assert (await row(desk, water)).rating == "satisfied"
    desk.clock.advance(timedelta(hours=1))
    for tid, hours in ((water, 24), (gas, 2)):
        status, body = await desk.act(tid, action="reopen")
        assert status == 200, body
        assert body["deadline"] == (desk.clock.now() + timedelta(hours=hours)).isoformat(), body["category"]
        assert (body["rating"], body["answered_at"], body["closed_at"]) == (None, None, None)
    assert (await row(desk, water)).reminded_at is None and (await row(desk, gas)).escalated_at is None


# -- neighbours' duplicates ------------------------------------------------------------------------
async def test_a_duplicate_links_to_the_first_report_of_the_chain_with_its_score(desk: Desk) -> None:
    first = await ticket_of(desk, "o_dup1", "3号楼楼下垃圾堆了好几天没人清理")
    second = await ticket_of(desk, "o_dup2", "3号楼楼下的垃圾堆了好多天都没人清理")
    third = await ticket_of(desk, "o_dup3", "3号楼楼下的垃圾堆了好多天都没人清理")
    a, b, c = [await detail(desk, t) for t in (first, second, third)]
    score = round(tickets.similarity(b["text"], a["text"]), 1)
    assert 60 <= score < 100
    assert (b["duplicate_of_id"], b["duplicate_score"]) == (first, score)
    # The third is most like the second (the same words), and joins the chain at its start.
    assert (c["duplicate_of_id"], c["duplicate_score"]) == (first, 100.0)
    assert a["duplicate_of_id"] is None and [d["id"] for d in a["duplicates"]] == [second, third]
    events = [dict(e) for e in c["timeline"] if e["action"] == "possible_duplicate"]
    for e in events:
        e.pop("id")
    assert events == [{"at": T0, "actor": "system", "action": "possible_duplicate", "from_status": None,
                       "to_status": None, "note": f"可能与 {b['number']} 重复", "public": False,
                       "data": {"other": second, "score": 100.0}}]


async def test_a_duplicate_is_another_residents_report_within_the_days(desk: Desk) -> None:
    # o_own's first report is rejected; the same words again are a new report, not a duplicate of their own.
    first = await ticket_of(desk, "o_own", "6号楼门口垃圾桶满了没人收")
    assert (await desk.act(first, action="reject", reason="已有人处理"))[0] == 200
    again = await ticket_of(desk, "o_own", "6号楼门口垃圾桶满了没人收")
    assert (await detail(desk, again))["duplicate_of_id"] is None
    # Another resident: equally like both, the first of equals.
    other = await ticket_of(desk, "o_nb1", "6号楼门口垃圾桶满了没人收")
    assert (await detail(desk, other))["duplicate_of_id"] == first
    # Another building: no link.
    assert (await detail(desk, await ticket_of(desk, "o_nb2", "5号楼门口垃圾桶满了没人收")))["duplicate_of_id"] is None
    noise = await ticket_of(desk, "o_nb3", "9号楼半夜有人装修太吵了")
    # Three days after the first report exactly: still a duplicate; a second more: no longer.
    desk.clock.advance(timedelta(days=3))
    assert (await detail(desk, await ticket_of(desk, "o_nb4", "6号楼门口垃圾桶满了没人收")))["duplicate_of_id"] == first
    desk.clock.advance(timedelta(seconds=1))
    late = await ticket_of(desk, "o_nb5", "9号楼半夜有人装修太吵了")
    assert (await detail(desk, late))["duplicate_of_id"] is None and noise != late


# -- the place, told after an urgent report --------------------------------------------------------
async def test_the_place_told_afterwards_fills_the_ticket_and_a_private_timeline_entry(desk: Desk) -> None:
    s = desk.svc.sender()
    assert "具体位置" in await desk.say("o_pl1", "楼道里燃气味很大")
    said = "6号楼3单元201室"
    assert "位置已补充" in await desk.say("o_pl1", said)
    tid = (await desk.tickets())[-1].id
    body = await detail(desk, tid)
    assert (body["building"], body["unit"], body["room"]) == ("6", "3", "201")
    assert body["location"]["text"] == said and body["updated_at"] == T0
    event = last_event(body)
    assert event == {"at": T0, "actor": "resident", "action": "location_added", "from_status": None,
                     "to_status": None, "note": said, "public": False, "data": {"building": "6", "unit": "3"}}

    assert "具体位置" in await desk.say("o_pl2", "楼道里燃气味很大")
    assert "位置已补充" in await desk.send(s.location("o_pl2", 39.91, 116.40, "幸福小区7号楼"))
    body = await detail(desk, (await desk.tickets())[-1].id)
    assert body["building"] == "7" and body["unit"] is None
    assert body["location"] == {"label": "幸福小区7号楼", "latitude": 39.91, "longitude": 116.4, "text": "幸福小区7号楼"}
    assert [a["kind"] for a in body["attachments"]] == ["location"]
    assert [e["action"] for e in body["timeline"]][-2:] == ["attachment", "location_added"]
    attached = dict(body["timeline"][-2])
    attached.pop("id")
    assert attached == {"at": T0, "actor": "resident", "action": "attachment", "from_status": None,
                        "to_status": None, "note": None, "public": False, "data": {"kind": "location"}}

    long_said = "8号楼" + "东侧楼道口旁边" * 40
    assert "具体位置" in await desk.say("o_pl3", "楼道里燃气味很大")
    assert "位置已补充" in await desk.say("o_pl3", long_said)
    body = await detail(desk, (await desk.tickets())[-1].id)
    assert body["location"]["text"] == long_said[:200] and last_event(body)["note"] == long_said[:200]


# -- the service's own rules, called directly: what no chat or API input reaches -------------------
async def resident(database: Database, openid: str, **fields: Any) -> Resident:
    async with database.transaction() as s:
        person = Resident(openid=openid, **fields)
        s.add(person)
        await s.flush()
        return person


async def test_a_new_ticket_keeps_what_it_was_told(db: Database) -> None:
    rules = load_rules()
    person = await resident(db, "o_direct1", community="幸福社区", building="3")
    new = tickets.NewTicket(
        text="  " + "楼" * 4100 + "  ", resident=person, channel="console",
        attachments=[{"kind": "image", "file": "image/a.png"}], location={"label": "东门"}, unit="2", room="301",
        category="水电气暖", confidence=0.9, urgency="urgent", contact_phone="13900001111", actor="session:王",
        source_key="msg:1",
    )
    async with db.transaction() as s:
        ticket = await tickets.create_ticket(s, new, rules, START)
        tid = ticket.id
    async with db.session() as s:
        t = await s.get(Ticket, tid)
        assert t is not None
        assert (t.text, t.channel, t.attachments, t.location) == (
            "楼" * 4000, "console", [{"kind": "image", "file": "image/a.png"}], {"label": "东门"})
        assert (t.community, t.building, t.unit, t.room, t.grid) == ("幸福社区", "3", "2", "301", "第一网格")
        assert (t.category, t.category_confidence, t.urgency, t.contact_phone) == ("水电气暖", 0.9, "urgent", "13900001111")
        assert (t.department, t.status, t.deadline, t.source_key) == (
            "水电气暖服务中心", "dispatched", START + timedelta(hours=2), "msg:1")
        assert (t.resolution_photos, t.reopen_count, t.created_at, t.updated_at) == ([], 0, START, START)
        events = (await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid).order_by(TicketEvent.id))).all()
        assert [(e.action, e.actor, e.at, e.from_status, e.to_status, e.public, e.data) for e in events] == [
            ("submitted", "session:王", START, "", "submitted", True,
             {"category": "水电气暖", "confidence": 0.9, "urgency": "urgent"}),
            ("dispatch", "system", START, "submitted", "dispatched", True,
             {"department": "水电气暖服务中心", "assignee": None}),
        ]
    # The same message handled again finds its ticket; no number is used up.
    async with db.transaction() as s:
        again = await tickets.create_ticket(s, dataclasses.replace(new, text="别的话"), rules, START)
        assert again.id == tid and again.text == "楼" * 4000
        assert (await tickets.create_ticket(s, tickets.NewTicket(text="路灯不亮"), rules, START)).number == "GD20261122-0002"
    async with db.transaction() as s:
        with pytest.raises(tickets.TicketError) as info:
            await tickets.create_ticket(s, tickets.NewTicket(text=" \n "), rules, START)
        assert (info.value.code, info.value.message) == ("empty_text", "a ticket needs a description")
        # Without a resident: the building given, no community.
        t = await tickets.create_ticket(s, tickets.NewTicket(text="路灯不亮了", building="5"), rules, START)
        assert (t.resident_id, t.community, t.building, t.channel, t.urgency) == (None, None, "5", "wechat", "normal")
        # A category handled in the grid: the grid's worker is the assignee.
        noise = await tickets.create_ticket(
            s, tickets.NewTicket(text="半夜装修太吵", building="10", category="噪音扰民", confidence=0.9), rules, START)
        assert (noise.department, noise.assignee, noise.grid) == ("综合执法队", "网格员-王芳", "第三网格")
        # No category: the triage queue, with a private note on the timeline.
        assert (t.status, t.department, t.assignee) == ("submitted", None, None)
        events = (await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id)
                                  .order_by(TicketEvent.id))).all()
        assert [(e.action, e.actor, e.at, e.from_status, e.to_status, e.public, e.note, e.data) for e in events] == [
            ("submitted", "resident", START, "", "submitted", True, None,
             {"category": None, "confidence": None, "urgency": "normal"}),
            ("triage", "system", START, None, None, False, "分类不确定，进入人工分派队列", {}),
        ]


async def test_duplicates_need_a_building_and_a_category_and_count_reports_without_a_resident(db: Database) -> None:
    rules = load_rules()
    person = await resident(db, "o_direct2")
    text = "3号楼楼下垃圾堆了好几天没人清理"

    async def make(**fields: Any) -> Ticket:
        async with db.transaction() as s:
            return await tickets.create_ticket(s, tickets.NewTicket(text=text, confidence=0.9, **fields), rules, START)

    no_building = [await make(category="环境卫生") for _ in range(2)]
    no_category = [await make(building="3") for _ in range(2)]
    assert [t.duplicate_of_id for t in no_building + no_category] == [None] * 4
    anonymous = await make(building="3", category="环境卫生")
    assert anonymous.duplicate_of_id is None
    second = await make(building="3", category="环境卫生")  # no resident either: another reporter
    assert (second.duplicate_of_id, second.duplicate_score) == (anonymous.id, 100.0)
    mine = await make(building="3", category="环境卫生", resident=person)  # the anonymous reports count
    assert mine.duplicate_of_id == anonymous.id
    async with db.session() as s:
        event = (await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == second.id,
                                                           TicketEvent.action == "possible_duplicate"))).one()
        assert (event.actor, event.at, event.public, event.note, event.data) == (
            "system", START, False, f"可能与 {anonymous.number} 重复", {"other": anonymous.id, "score": 100.0})
    # One's own earlier report is no duplicate; another resident's is.
    own = await make(building="4", category="环境卫生", resident=person)
    assert (await make(building="4", category="环境卫生", resident=person)).duplicate_of_id is None
    neighbour = await resident(db, "o_direct2b")
    assert (await make(building="4", category="环境卫生", resident=neighbour)).duplicate_of_id == own.id
    assert (await make(building="4", category="环境卫生")).duplicate_of_id == own.id  # an anonymous one too

    # Reports of the last three days count, to the second.
    async def made_at(building: str, when: datetime) -> Ticket:
        async with db.transaction() as s:
            new = tickets.NewTicket(text=text, confidence=0.9, building=building, category="环境卫生")
            return await tickets.create_ticket(s, new, rules, when)

    old = await made_at("7", START - timedelta(days=3))
    older = await made_at("8", START - timedelta(days=3, seconds=1))
    assert (await made_at("7", START)).duplicate_of_id == old.id
    assert (await made_at("8", START)).duplicate_of_id is None and older.id


def test_similarity_ignores_punctuation_and_most_similar_takes_the_first_at_the_threshold() -> None:
    assert tickets.similarity("路灯，不亮！", "路灯 不亮") == 100.0
    assert tickets.similarity("！？", "路灯不亮") == 0.0 and tickets.similarity("路灯不亮", "") == 0.0
    rules = load_rules()
    a, b, c = (Ticket(text=t) for t in ("路灯不亮", "路灯不亮", "小区门口的路灯晚上不亮"))
    score = tickets.similarity("路灯不亮了", c.text)
    assert tickets.most_similar("路灯不亮了", [c, a, b], rules) == (tickets.similarity("路灯不亮了", a.text), a)
    at_threshold = dataclasses.replace(rules, duplicate_similarity=score)
    assert tickets.most_similar("路灯不亮了", [c], at_threshold) == (score, c)
    above = dataclasses.replace(rules, duplicate_similarity=score + 0.01)
    assert tickets.most_similar("路灯不亮了", [c], above) is None
    assert tickets.most_similar("路灯不亮了", [], rules) is None
    zero = dataclasses.replace(rules, duplicate_similarity=0.5)
    assert tickets.most_similar("！！", [a], zero) is None


def test_labels_and_template_fields() -> None:
    ticket = Ticket(number="GD20261122-0007", status="dispatched", department=None)
    assert tickets.status_label(ticket) == "已派给相关部门"
    ticket.department = "街道办事处城市管理综合行政执法队第三中队"
    assert tickets.status_label(ticket) == "已派给街道办事处城市管理综合行政执法队第三中队"
    assert tickets.status_label(Ticket(status="archived")) == "archived"
    now = datetime(2026, 11, 22, 16, 5, tzinfo=UTC)  # 00:05 on the 23rd in Beijing
    assert tickets.local_day(now) == "20261123"
    fields = tickets.template_fields(ticket, "好" * 100, now)
    assert fields == {"number": "GD20261122-0007", "status": "已派给街道办事处城市管理综合行政执法队第",
                      "time": "2026-11-23 00:05", "remark": "好" * 100}
    assert tickets.template_fields(ticket, "好" * 101, now)["remark"] == "好" * 99 + "…"


async def test_attachments_once_per_message_claims_once_and_pushes_only_to_a_resident(db: Database) -> None:
    rules = load_rules()
    person = await resident(db, "o_direct3")
    async with db.transaction() as s:
        mine = await tickets.create_ticket(s, tickets.NewTicket(text="路灯不亮了", resident=person), rules, START)
        nobody = await tickets.create_ticket(s, tickets.NewTicket(text="路灯不亮了"), rules, START)
        for _ in range(2):  # a retry of the same message
            await tickets.add_attachment(s, mine, {"kind": "image", "msg_key": "m1"}, actor="resident", now=START)
        later = START + timedelta(minutes=1)
        await tickets.add_attachment(s, mine, {"kind": "voice", "msg_key": "m2"}, actor="resident", now=later)
        assert [a["msg_key"] for a in mine.attachments] == ["m1", "m2"] and mine.updated_at == later
        for ticket in (mine, nobody):
            await tickets.comment(s, ticket, actor="token:" + "名" * 120, text="已联系", public=True, now=later)
        # Many tickets of one resident: the five newest.
        made = [await tickets.create_ticket(s, tickets.NewTicket(text=f"第{i}件事", resident=person), rules, START)
                for i in range(5)]
        assert [t.id for t in await tickets.tickets_of(s, person.id)] == [t.id for t in reversed(made)]
    async with db.session() as s:
        events = (await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == mine.id)
                                  .order_by(TicketEvent.id))).all()
        kinds = [(e.action, e.data, e.public) for e in events if e.action == "attachment"]
        assert kinds == [("attachment", {"kind": "image"}, False), ("attachment", {"kind": "voice"}, False)]
        said = events[-1]
        assert (said.action, said.actor) == ("comment", "token:" + "名" * 94)
        outbox = (await s.scalars(select(OutboxMessage))).all()
        assert [(o.openid, o.payload["text"]["content"]) for o in outbox] == [
            ("o_direct3", f"您的诉求 {mine.number} 有新回复：已联系")]
        assert said.push_key == outbox[0].dedup_key == f"ticket:{mine.id}:event:{said.id}#0"
        nobody_said = (await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == nobody.id,
                                                                 TicketEvent.action == "comment"))).one()
        assert nobody_said.push_key is None and nobody_said.public is True

    async with db.transaction() as s:
        then = START + timedelta(hours=1)
        assert await tickets.claim(s, mine.id, "reminded_at", Ticket.reminded_at.is_(None), then) is True
        assert await tickets.claim(s, mine.id, "reminded_at", Ticket.reminded_at.is_(None), then) is False
        assert await tickets.claim(s, 999_999, "reminded_at", Ticket.reminded_at.is_(None), then) is False
    async with db.session() as s:
        claimed = await s.get(Ticket, mine.id)
        other = await s.get(Ticket, nobody.id)
        assert claimed is not None and other is not None
        assert (claimed.reminded_at, claimed.updated_at) == (then, then)
        assert other.reminded_at is None
