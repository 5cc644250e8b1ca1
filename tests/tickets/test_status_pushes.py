"""Status pushes outside WeChat's 48-hour window: a template notification when one is configured,
otherwise (or when WeChat refuses the template too) the update is shown on the resident's next message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.storage.db import Database
from bot.storage.models import OutboxMessage, Ticket
from tests.api.conftest import Api, make_tokens
from tests.conftest import ServiceFactory
from tests.tickets.conftest import START, Desk

TEMPLATE_ID = "tmpl_Ticket-Update_01"


@pytest.fixture
async def tdesk(service_factory: ServiceFactory, database_url: str, fake_api: str) -> Any:
    clock = ManualClock(START)
    svc = await service_factory(database_url, fake_api, app_kwargs={"clock": clock},
                                BOT_WECHAT_TEMPLATE_TICKET=TEMPLATE_ID)
    db = Database(database_url)
    yield Desk(svc, clock, Api(svc, await make_tokens(database_url)), db)
    await db.dispose()


async def inject(desk: Desk, endpoint: str, errcode: int, count: int = 5) -> None:
    assert desk.svc.fake_api
    async with desk.svc.http.post(f"{desk.svc.fake_api}/fake/errors",
                                  json={"endpoint": endpoint, "count": count, "errcode": errcode}) as r:
        assert r.status == 200


async def answer_ticket(desk: Desk, openid: str, text: str, resolution: str) -> Ticket:
    reply = await desk.say(openid, text)
    if "联系电话" in reply:  # a category whose staff visit (安全隐患) asks for a phone first
        reply = await desk.say(openid, "不留")
    assert "GD" in reply, reply
    (ticket,) = await desk.tickets()
    await inject(desk, "message/custom/send", 45015)
    if ticket.status == "submitted":
        assert (await desk.act(ticket.id, "supervisor", action="dispatch", department="物业服务中心"))[0] == 200
    status, body = await desk.act(ticket.id, "supervisor", action="answer", resolution=resolution)
    assert status == 200, body
    return ticket


async def settled(desk: Desk) -> list[OutboxMessage]:
    """The outbox once nothing is pending or being sent."""
    rows: list[OutboxMessage] = []
    for _ in range(200):
        async with desk.db.session() as s:
            rows = list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())
        if rows and all(r.status not in ("pending", "sending") for r in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"outbox did not settle: {[(r.id, r.status) for r in rows]}")


async def test_template_sent_when_window_closed_and_configured(tdesk: Desk) -> None:
    openid = "o_tmpl1"
    ticket = await answer_ticket(tdesk, openid, "6号楼楼道里堆满了杂物", "杂物已清理")
    rows = await settled(tdesk)
    answered = [r for r in rows if "杂物已清理" in r.payload.get("text", {}).get("content", "")]
    assert len(answered) == 1 and answered[0].status == "sent", [(r.status, r.payload) for r in rows]
    assert answered[0].payload["kind"] == "template"

    templates = [m for m in await tdesk.svc.fake_sent(openid) if m["msgtype"] == "template"]
    assert all(m["payload"]["data"]["number"]["value"] == ticket.number for m in templates)
    templates = [m for m in templates if "杂物已清理" in m["payload"]["data"]["remark"]["value"]]
    assert len(templates) == 1, templates
    body = templates[0]["payload"]
    assert body["template_id"] == TEMPLATE_ID and body["touser"] == openid
    data = body["data"]
    assert data["number"]["value"] == ticket.number
    assert data["status"]["value"] == "已办结，等待您评价"
    assert data["time"]["value"] == "2026-11-22 09:00"
    assert "杂物已清理" in data["remark"]["value"]
    assert "fallback" not in body and "kind" not in body and "text" not in body
    # Delivered by the template: nothing is repeated on the next message.
    assert "杂物已清理" not in await tdesk.say(openid, "你好")


async def test_refused_template_is_shown_on_next_message(tdesk: Desk) -> None:
    openid = "o_tmpl2"
    await inject(tdesk, "message/template/send", 43101)  # the resident refused the notifications
    ticket = await answer_ticket(tdesk, openid, "6号楼门口垃圾桶满了没人清", "垃圾已清运")
    rows = await settled(tdesk)
    answered = [r for r in rows if "垃圾已清运" in r.payload.get("text", {}).get("content", "")]
    assert len(answered) == 1 and answered[0].status == "expired"
    assert answered[0].last_error is not None and "43101" in answered[0].last_error
    assert not [m for m in await tdesk.svc.fake_sent(openid) if m["msgtype"] == "template"]
    reply = await tdesk.say(openid, "你好")
    assert f"您的诉求 {ticket.number}" in reply and "垃圾已清运" in reply
    assert "垃圾已清运" not in await tdesk.say(openid, "你好")  # once


async def test_without_template_the_update_waits_for_next_message(desk: Desk) -> None:
    openid = "o_tmpl3"
    ticket = await answer_ticket(desk, openid, "6号楼楼道里堆满了纸箱", "纸箱已清理")
    rows = await settled(desk)
    answered = [r for r in rows if "纸箱已清理" in r.payload.get("text", {}).get("content", "")]
    assert len(answered) == 1 and answered[0].status == "expired" and "kind" not in answered[0].payload
    assert not [m for m in await desk.svc.fake_sent(openid) if m["msgtype"] == "template"]
    reply = await desk.say(openid, "你好")
    assert f"您的诉求 {ticket.number}" in reply and "纸箱已清理" in reply
