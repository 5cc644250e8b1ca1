"""The dashboard's JSON API on SQLite and PostgreSQL: figures computed from tickets reported in
the chat, moved by staff through the API and rated by residents in the chat; a handoff picked up
by staff; the period parameters checked; roles."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.services import takeover
from bot.storage.models import PointsEntry, Resident
from tests.api.conftest import assert_error, check_schema, response_schema
from tests.tickets.conftest import START, Desk

NUMBER = re.compile(r"GD\d{8}-\d{4}")
DAY = START.date().isoformat()  # 2026-11-22 (09:00 in Beijing: the same China date)
NEXT = (START.date() + timedelta(days=1)).isoformat()


async def report(desk: Desk, openid: str, text: str) -> int:
    reply = await desk.say(openid, text)
    if "联系电话" in reply:  # a category whose staff visit asks for a phone first
        reply = await desk.say(openid, "不留")
    assert NUMBER.search(reply), reply
    ticket = (await desk.tickets())[-1]
    if ticket.status == "submitted":  # left for triage: a supervisor dispatches it
        status, body = await desk.act(ticket.id, "supervisor", action="dispatch", department="城管市政科")
        assert status == 200, body
    return ticket.id


async def dashboard(desk: Desk, section: str, role: str = "operator", **params: str) -> dict[str, Any]:
    status, body = await desk.api.get(f"/dashboard/{section}", role, **params)
    assert status == 200, body
    return dict(body)


def figure(data: dict[str, Any], name: str) -> tuple[Any, Any]:
    f = data["figures"][name]
    return f["current"], f["previous"]


def table(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return next(t["rows"] for t in data["tables"] if t["name"] == name)


async def test_figures_match_what_happened(desk: Desk) -> None:
    t1 = await report(desk, "o_dash_a", "5号楼门口路灯不亮了")
    t2 = await report(desk, "o_dash_b", "7号楼门口路灯不亮了，晚上很黑")
    await report(desk, "o_dash_c", "9号楼门口路灯不亮了")

    # t1: accepted after an hour, answered after two, the resident is satisfied.
    desk.clock.advance(timedelta(hours=1))
    assert (await desk.act(t1, "supervisor", action="accept"))[0] == 200
    desk.clock.advance(timedelta(hours=1))
    assert (await desk.act(t1, "supervisor", action="answer", resolution="已更换灯泡"))[0] == 200
    assert "已完结" in await desk.say("o_dash_a", "满意")
    # t2: answered after three hours, the resident is not satisfied: reopened.
    desk.clock.advance(timedelta(hours=1))
    assert (await desk.act(t2, "supervisor", action="answer", resolution="已报修"))[0] == 200
    assert "重新办理" in await desk.say("o_dash_b", "不满意")
    # A resident asks for a person; staff pick the conversation up 30 minutes later.
    await desk.say("o_dash_d", "转人工")
    desk.clock.advance(timedelta(minutes=30))
    async with desk.db.session() as s:
        resident_d = await s.scalar(select(Resident.id).where(Resident.openid == "o_dash_d"))
    assert resident_d is not None
    await takeover.claim(desk.db, resident_d, "zhang", desk.clock.now())

    # Ten days on, t2 (reopened) and t3 are open and past their deadlines.
    desk.clock.advance(timedelta(days=10))
    data = await dashboard(desk, "tickets", start=DAY, end=NEXT)
    document = await desk.api.openapi()
    check_schema(document, response_schema(document, "/dashboard/tickets"), data)
    assert data["period"] == {"start": DAY, "end": NEXT, "days": 1}
    assert data["previous"]["end"] == DAY
    assert figure(data, "new") == (3, 0)
    assert figure(data, "open_now") == (2, None)
    assert figure(data, "overdue_now") == (2, None)
    assert figure(data, "resolved")[0] == 1
    assert figure(data, "resolution_rate")[0] == pytest.approx(1 / 3, abs=1e-4)
    assert figure(data, "satisfaction_rate") == (0.5, None)  # one satisfied of two rated
    assert figure(data, "rated")[0] == 2 and figure(data, "satisfied")[0] == 1
    assert figure(data, "reopen_rate")[0] == pytest.approx(1 / 3, abs=1e-4)
    assert figure(data, "response_rate")[0] == pytest.approx(1 / 3, abs=1e-4)  # t1 in time; t2, t3 overdue
    # Responses after 1 h (t1 accepted) and 3 h (t2 answered); t1 answered after 2 h.
    assert figure(data, "response_median")[0] == pytest.approx(3600, abs=1)
    assert figure(data, "response_p90")[0] == pytest.approx(10800, abs=1)
    assert figure(data, "resolution_median")[0] == pytest.approx(7200, abs=1)
    per_day = table(data, "tickets_per_day")
    assert per_day == [{"day": DAY, "count": 3}]
    for name in ("tickets_by_category", "tickets_by_department", "tickets_by_grid"):
        rows = table(data, name)
        assert sum(r["current"] for r in rows) == 3 and sum(r["open"] for r in rows) == 2, rows
    # The day before has nothing; the previous period of the day after is this day.
    before = await dashboard(desk, "tickets", start=(START.date() - timedelta(days=1)).isoformat(), end=DAY)
    assert figure(before, "new") == (0, 0)
    after = await dashboard(desk, "tickets", start=NEXT, end=(START.date() + timedelta(days=2)).isoformat())
    assert figure(after, "new") == (0, 3)

    res = await dashboard(desk, "residents", "admin", start=DAY, end=NEXT)
    check_schema(document, response_schema(document, "/dashboard/residents"), res)
    assert figure(res, "active_residents") == (4, 0)
    assert figure(res, "messages") == (6, 0)  # three reports, two ratings, one 转人工
    assert sum(v for row in table(res, "messages_per_day") for k, v in row.items() if k != "day") == 6
    assert sum(r["current"] for r in table(res, "messages_by_intent")) == 6
    assert figure(res, "handoffs") == (1, 0) and figure(res, "handoffs_picked") == (1, 0)
    assert figure(res, "pickup_median")[0] == pytest.approx(1800, abs=1)
    assert figure(res, "handoffs_waiting") == (0, None)
    assert figure(res, "conversations") == (4, 0)
    assert figure(res, "bot_resolution_rate") == (0.75, None)  # one of four needed a person

    svc = await dashboard(desk, "services", start=DAY, end=NEXT)
    check_schema(document, response_schema(document, "/dashboard/services"), svc)
    async with desk.db.session() as s:
        earned = await s.scalar(select(func.coalesce(func.sum(PointsEntry.amount), 0)).where(PointsEntry.amount > 0))
    assert figure(svc, "points_issued")[0] == earned
    assert figure(svc, "points_spent") == (0, 0)


async def test_period_parameters_are_checked(desk: Desk) -> None:
    cases = [
        ({"start": "2026-13-01"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-11-31"}, "end"),
        ({"start": DAY, "end": DAY}, "end"),  # empty
        ({"start": NEXT, "end": DAY}, "end"),  # backwards
        ({"start": "2024-01-01", "end": "2026-01-01"}, "end"),  # too long
    ]
    for params, field in cases:
        for section in ("tickets", "residents", "services"):
            status, body = await desk.api.get(f"/dashboard/{section}", "operator", **params)
            message = assert_error(status, body, 400, "bad_param")
            assert body["error"]["details"] == {"param": field}, (params, body)
            assert field in message
    # Without parameters: the last 30 days up to today (China time).
    data = await dashboard(desk, "tickets")
    assert data["period"]["days"] == 30 and data["period"]["end"] == NEXT


async def test_only_operators_and_admins(desk: Desk) -> None:
    for section in ("tickets", "residents", "services"):
        for role in ("operator", "admin"):
            assert (await desk.api.get(f"/dashboard/{section}", role))[0] == 200
        for role in ("staff", "supervisor", "merchant"):
            status, body = await desk.api.get(f"/dashboard/{section}", role)
            assert_error(status, body, 403, "forbidden")
        status, body = await desk.api.get(f"/dashboard/{section}", "")
        assert_error(status, body, 401)
