"""PostgreSQL: a credit is one statement; a key credited already writes nothing, and a key credited
by a transaction its snapshot did not see is undone, so each key is credited once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot.services import points
from bot.storage.db import Database
from bot.storage.models import PointsEntry
from tests.points.helpers import NOW, assert_ledger_matches, make_residents
from tests.points.test_redeem_in_one import _while_held, pg_db, statements

__all__ = ["pg_db"]  # the fixture, used by name


def credit(rid: int, key: str, amount: int = 10) -> Any:
    return lambda connection: points.credit_in(
        connection, resident_id=rid, amount=amount, reason="adjust", ref_type="test", ref_id=key,
        idempotency_key=key, now=NOW,
    )  # fmt: skip


async def balance(db: Database, rid: int) -> int:
    async with db.session() as session:
        return await points.balance_of(session, rid)


async def test_a_credit_is_one_statement_and_a_key_credits_once(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1)
    with statements(db) as sent:
        assert await db.run_sync_transaction(credit(rid, "k1")) is True
    assert len(sent) == 1, sent
    assert await db.run_sync_transaction(credit(rid, "k1")) is False
    assert await db.run_sync_transaction(credit(rid, "k2", 5)) is True
    assert await balance(db, rid) == 15
    async with db.session() as session:
        rows = (await session.execute(select(PointsEntry.idempotency_key, PointsEntry.balance_after))).all()
        assert sorted(rows) == [("k1", 10), ("k2", 15)]
    await assert_ledger_matches(db)


async def test_a_key_credited_meanwhile_is_not_credited_again(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1, points_each=3)
    outcome = await _while_held(db, credit(rid, "same"), credit(rid, "same"))
    assert outcome is False
    assert await balance(db, rid) == 13
    async with db.session() as session:
        assert await session.scalar(select(func.count()).where(PointsEntry.idempotency_key == "same")) == 1
    await assert_ledger_matches(db)
