"""A debit repeated with the same idempotency key is SQLAlchemy's IntegrityError (the callers catch
it) and takes nothing: on SQLite, where the debit's statements run straight on the driver's cursor,
as on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from bot.services import points
from tests.points.helpers import NOW, assert_ledger_matches, make_residents, migrated


async def test_a_repeated_debit_key_is_an_integrity_error_and_takes_nothing(database_url: str) -> None:
    db = await migrated(database_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=50)
        spend = {"resident_id": rid, "amount": 20, "reason": "coupon", "ref_type": "issued_coupon", "ref_id": "1",
                 "idempotency_key": "coupon:1", "now": NOW}  # fmt: skip
        async with db.transaction() as session:
            assert await points.debit(session, **spend) == 30
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                await points.debit(session, **spend)
        async with db.session() as session:
            assert await points.balance_of(session, rid) == 30
        await assert_ledger_matches(db)
    finally:
        await db.dispose()
