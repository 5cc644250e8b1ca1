"""Ticket numbers under concurrency, and points for a resolved report credited once."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

from sqlalchemy import select

from bot.services import tickets as svc
from bot.services.dispatch import load_rules
from bot.services.points import rules as points_rules
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import PointsEntry, Ticket
from tests.tickets.conftest import Desk


async def test_numbers_are_unique_per_day_under_concurrency(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade(db)
        rules = load_rules()
        day1 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
        day2 = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)  # 01:00 on the 23rd in Beijing

        async def one(i: int, now: datetime) -> str:
            async with db.transaction() as session:
                ticket = await svc.create_ticket(session, svc.NewTicket(text=f"第{i}个问题 路灯不亮"), rules, now)
                return ticket.number

        numbers = await asyncio.gather(*(one(i, day1) for i in range(12)))
        assert sorted(numbers) == [f"GD20261122-{n:04d}" for n in range(1, 13)]
        assert await one(99, day2) == "GD20261123-0001"
        async with db.session() as session:
            stored = (await session.scalars(select(Ticket.number))).all()
        assert len(set(stored)) == 13 and all(re.fullmatch(r"GD\d{8}-\d{4}", n) for n in stored)
    finally:
        await db.dispose()


async def test_points_for_a_resolved_report_once(desk: Desk) -> None:
    openid = "o_points"
    assert "GD" in await desk.say(openid, "5号楼门口路灯不亮了")
    (ticket,) = await desk.tickets()
    if ticket.status == "submitted":
        assert (await desk.act(ticket.id, "supervisor", action="dispatch", department="城管市政科"))[0] == 200
    for _ in range(2):  # answered, rated, then reopened by a supervisor and answered again
        assert (await desk.act(ticket.id, "supervisor", action="answer", resolution="路灯已修复"))[0] == 200
        assert "已完结" in await desk.say(openid, "满意")
        status, body = await desk.act(ticket.id, "supervisor", action="reopen", note="复查仍有问题")
        assert status == 200 and body["status"] == "reopened", body
    async with desk.db.session() as s:
        entries = (await s.scalars(select(PointsEntry).where(PointsEntry.ref_id == str(ticket.id)))).all()
    assert [(e.amount, e.reason) for e in entries] == [(points_rules().earn["valid_report"], "valid_report")]
