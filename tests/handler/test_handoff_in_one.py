"""PostgreSQL: a resident's first open handoff request is one statement (an insert that does
nothing when one is open); a second request adds to the open one."""

from __future__ import annotations

from bot.services import handoff
from bot.storage.db import Database
from tests.points.helpers import NOW, make_residents
from tests.points.test_redeem_in_one import pg_db, statements

__all__ = ["pg_db"]  # the fixture, used by name


async def test_a_first_handoff_request_is_one_statement_and_a_second_adds_to_it(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1)
    with statements(db) as sent:
        first = await db.run_sync_transaction(lambda c: handoff.request_in(c, rid, "asked", "转人工", NOW))
    assert len(sent) == 1 and first.created and first.asks == 1, sent
    second = await db.run_sync_transaction(lambda c: handoff.request_in(c, rid, "urgent", "快点", NOW))
    assert (second.id, second.created, second.asks) == (first.id, False, 2)
    requests = await handoff.open_requests(db)
    assert [(r.id, r.reason, r.text, r.asks) for r in requests] == [(first.id, "urgent", "转人工\n快点", 2)]
