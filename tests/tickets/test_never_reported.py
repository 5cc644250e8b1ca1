"""A resident who never reported anything: their row says so (``residents.reported_at``), and the
chat reads no tickets for them (follow-up questions, the own-repeat check of a new report)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from bot.services import reports
from bot.storage.models import Resident, Ticket
from tests.tickets.conftest import START, Desk

NUMBER = re.compile(r"GD\d{8}-\d{4}")


async def _reported_at(desk: Desk, openid: str) -> Any:
    async with desk.db.session() as s:
        return await s.scalar(select(Resident.reported_at).where(Resident.openid == openid))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The reads of a resident's tickets the chat asks for: listed_texts (follow-ups) and own_repeat."""
    made: list[str] = []
    listed, own = reports.listed_texts, reports.own_repeat

    async def listed_texts(*args: Any, **kwargs: Any) -> Any:
        made.append("listed_texts")
        return await listed(*args, **kwargs)

    async def own_repeat(*args: Any, **kwargs: Any) -> Any:
        made.append("own_repeat")
        return await own(*args, **kwargs)

    monkeypatch.setattr(reports, "listed_texts", listed_texts)
    monkeypatch.setattr(reports, "own_repeat", own_repeat)
    return made


async def test_no_reads_until_the_first_report(desk: Desk, reads: list[str]) -> None:
    openid = "o_never"
    assert "具体位置" in await desk.say(openid, "家里的水管好像有点漏水")  # asks where: no own-repeat read
    assert "已取消" in await desk.say(openid, "算了")
    await desk.say(openid, "路灯修好了没有")  # a progress question, no report of theirs
    assert reads == []
    assert await _reported_at(desk, openid) is None

    reply = await desk.say(openid, "5号楼门口路灯不亮了")
    assert NUMBER.search(reply), reply
    assert await _reported_at(desk, openid) == START

    # From now on their tickets are read: the follow-up finds the report, a repeat is recognised.
    reply = await desk.say(openid, "路灯修好了没有")
    assert "listed_texts" in reads and NUMBER.search(reply), reply
    reads.clear()
    assert "具体位置" in await desk.say(openid, "家里的水管好像有点漏水")
    assert reads == ["own_repeat"]


async def test_a_ticket_added_through_the_orm_marks_its_resident(desk: Desk) -> None:
    await desk.say("o_orm", "你好")
    async with desk.db.transaction() as s:
        resident = await s.scalar(select(Resident).where(Resident.openid == "o_orm"))
        assert resident is not None and resident.reported_at is None
        s.add(Ticket(number="GD20261122-9999", resident_id=resident.id, text="楼道灯坏了", status="submitted",
                     created_at=START, updated_at=START))
    assert await _reported_at(desk, "o_orm") == START
    assert NUMBER.search(await desk.say("o_orm", "楼道灯修了没有"))
