"""The dashboard's daily roll-ups on SQLite and PostgreSQL: the figures read through them equal the
figures computed from the raw messages and tickets alone, and direct counts, while messages and
tickets are added and changed across a day boundary, for today's partial day, before and after the
roll-up job runs. And a staff takeover without the resident asking for a person lowers the bot's
resolution rate."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, distinct, func, select

from bot.services.dashboard_rollup import rollup
from bot.services.tickets import CHINA
from bot.storage.dashboard_models import (
    DashboardMessageDay,
    DashboardPointsDay,
    DashboardResidentDay,
    DashboardRollup,
    DashboardTicketDay,
    DashboardTicketDuration,
)
from bot.storage.models import Message, PointsEntry, Resident, Ticket
from tests.dashboard.test_dashboard_api import dashboard, figure, report, table
from tests.tickets.conftest import START, Desk
from tests.web.console_util import add_users, login

D0 = START.astimezone(CHINA).date()  # 2026-11-22
D1, D2, D3 = (D0 + timedelta(days=n) for n in (1, 2, 3))
ROLLUPS = (DashboardMessageDay, DashboardResidentDay, DashboardTicketDay, DashboardTicketDuration, DashboardPointsDay,
           DashboardRollup)


def china(day: Any, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), CHINA)


def periods() -> list[dict[str, str]]:
    return [{"start": a.isoformat(), "end": b.isoformat()} for a, b in (
        (D0, D1), (D1, D2), (D2, D3), (D0, D2), (D0, D3), (D0 - timedelta(days=5), D3))]


async def figures(desk: Desk) -> list[Any]:
    out = []
    for section in ("tickets", "residents", "services"):
        for params in periods():
            data = await dashboard(desk, section, **params)
            data.pop("generated_at")
            out.append(data)
    return out


async def rolled_days(desk: Desk) -> int:
    async with desk.db.session() as s:
        return sum([int(await s.scalar(select(func.count()).select_from(model)) or 0)
                    for model in (DashboardMessageDay, DashboardTicketDay, DashboardPointsDay)])


async def check(desk: Desk) -> None:
    """The figures with the roll-ups as they stand equal those computed from the raw rows only (the
    roll-ups emptied), and equal direct counts; then the roll-ups are filled again from nothing."""
    with_rollups = await figures(desk)
    async with desk.db.transaction() as s:
        for model in ROLLUPS:
            await s.execute(delete(model))
    raw_only = await figures(desk)
    assert with_rollups == raw_only
    await rollup(desk.db, desk.clock.now())
    assert await figures(desk) == with_rollups
    # Direct counts for each period.
    for params in periods():
        lo = china(datetime.fromisoformat(params["start"]).date(), 0)
        hi = china(datetime.fromisoformat(params["end"]).date(), 0)
        async with desk.db.session() as s:
            inbound = (Message.direction == "in", Message.created_at >= lo, Message.created_at < hi)
            messages = await s.scalar(select(func.count()).where(*inbound))
            residents = await s.scalar(select(func.count(distinct(Message.resident_id))).where(*inbound))
            new = await s.scalar(select(func.count()).where(Ticket.created_at >= lo, Ticket.created_at < hi))
            answered = await s.scalar(select(func.count()).where(
                Ticket.created_at >= lo, Ticket.created_at < hi, Ticket.status.in_(("answered", "closed"))))
            issued = await s.scalar(select(func.coalesce(func.sum(PointsEntry.amount), 0)).where(
                PointsEntry.amount > 0, PointsEntry.created_at >= lo, PointsEntry.created_at < hi))
        res = await dashboard(desk, "residents", **params)
        assert figure(res, "messages")[0] == messages, params
        assert figure(res, "active_residents")[0] == residents, params
        assert sum(r["current"] for r in table(res, "messages_by_intent")) == messages
        tic = await dashboard(desk, "tickets", **params)
        assert figure(tic, "new")[0] == new and figure(tic, "resolved")[0] == answered, params
        assert sum(r["count"] for r in table(tic, "tickets_per_day")) == new
        svc = await dashboard(desk, "services", **params)
        assert figure(svc, "points_issued")[0] == issued, params
        assert sum(r["issued"] for r in table(svc, "points_per_day")) == issued


async def test_rollups_equal_the_raw_data(desk: Desk) -> None:
    # Day 0: two reports, a question, a 转人工.
    t1 = await report(desk, "o_roll_a", "5号楼门口路灯不亮了")
    await report(desk, "o_roll_b", "7号楼楼道里堆满了杂物")
    await desk.say("o_roll_c", "社区医院几点开门")
    await desk.say("o_roll_d", "转人工")
    await desk.say("o_roll_c", "查积分")  # the first points view: the welcome points
    await check(desk)  # nothing rolled up yet: day 0 is today's partial day

    # Day 1, 10:00: day 0 is rolled up; then a day-0 ticket is answered (its day is read from the
    # raw rows until the next run), a new report and messages come in today.
    desk.clock.set(china(D1, 10))
    await rollup(desk.db, desk.clock.now())
    assert await rolled_days(desk) > 0
    await check(desk)
    desk.clock.advance(timedelta(minutes=1))
    assert (await desk.act(t1, "supervisor", action="answer", resolution="已更换灯泡"))[0] == 200
    await report(desk, "o_roll_c", "9号楼门口路灯不亮了")
    await desk.say("o_roll_a", "谢谢")
    await desk.say("o_roll_a", "查积分")
    await check(desk)

    # Day 1 just before midnight, day 2 in the margin after it, and after: rolled up in turn.
    desk.clock.set(china(D1, 23, 59))
    await desk.say("o_roll_b", "你好")
    await desk.say("o_roll_b", "查积分")
    desk.clock.set(china(D2, 0, 5))
    await desk.say("o_roll_b", "你好")
    await desk.say("o_roll_d", "查积分")
    assert "已完结" in await desk.say("o_roll_a", "满意")  # rates the day-0 ticket on day 2
    await rollup(desk.db, desk.clock.now())
    await check(desk)
    desk.clock.set(china(D2, 0, 30))
    await rollup(desk.db, desk.clock.now())
    await check(desk)


async def test_a_takeover_without_a_request_needs_a_person(desk: Desk, database_url: str) -> None:
    for openid in ("o_take_a", "o_take_b", "o_take_c", "o_take_d"):
        await desk.say(openid, "社区医院几点开门")
    params = {"start": D0.isoformat(), "end": D1.isoformat()}
    res = await dashboard(desk, "residents", **params)
    assert figure(res, "conversations")[0] == 4 and figure(res, "bot_resolution_rate")[0] == 1.0
    # Staff take one conversation over and write in it; the resident never asked for a person.
    await add_users(database_url, ("zhang", "staff", {}))
    zhang = await login(desk.svc.http, desk.svc.base, "zhang")
    async with desk.db.session() as s:
        rid = await s.scalar(select(Resident.id).where(Resident.openid == "o_take_b"))
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/claim")
    assert status == 303
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/reply", {"text": "您好，社区医院早上八点开门。"})
    assert status == 303
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/release")
    assert status == 303  # the claim is gone; the takeover is remembered
    res = await dashboard(desk, "residents", **params)
    assert figure(res, "handoffs")[0] == 0
    assert figure(res, "bot_resolution_rate")[0] == 0.75
    # The day after it is the same, read through the roll-up.
    desk.clock.set(china(D1, 9))
    await rollup(desk.db, desk.clock.now())
    assert figure(await dashboard(desk, "residents", **params), "bot_resolution_rate")[0] == 0.75
