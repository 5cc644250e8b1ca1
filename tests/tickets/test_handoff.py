"""The handoff queue (the staff console's hook): one open request per resident, also when the
resident asks several times at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from bot.services import handoff
from tests.tickets.conftest import Desk


async def test_concurrent_asks_make_one_open_request(desk: Desk) -> None:
    await desk.say("o_hand1", "你好")
    replies = await asyncio.gather(*(desk.say("o_hand1", "转人工") for _ in range(4)))
    assert all("工作人员" in r for r in replies), replies
    assert sum("已经登记您要找工作人员" in r for r in replies) == 1, replies
    rows = [r for r in await handoff.open_requests(desk.db) if r.reason == "asked"]
    assert len(rows) == 1 and rows[0].asks == 4 and rows[0].status == "waiting"


async def test_urgent_requests_come_first(desk: Desk) -> None:
    await desk.say("o_hand2", "转人工")
    await desk.say("o_hand3", "5号楼有人晕倒了")
    rows = await handoff.open_requests(desk.db)
    assert [r.reason for r in rows][:2] == ["urgent", "asked"]
    assert rows[0].ticket_id is not None
