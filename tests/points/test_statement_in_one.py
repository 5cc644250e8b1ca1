"""The chat's points statement (balance, registration reward, newest lines) is one statement."""

from __future__ import annotations

from datetime import timedelta

from bot.services import points
from tests.points.helpers import NOW, make_residents, migrated
from tests.points.test_redeem_in_one import statements


async def test_the_statement_with_its_lines_is_one_read(database_url: str) -> None:
    db = await migrated(database_url)
    try:
        (rid, empty) = await make_residents(db, 2)
        reward = points.registration_points()
        # No line yet: the reward shown as pending, no line read.
        with statements(db) as sent:
            shown = await db.run_sync_read(lambda c: points.read_statement_in(c, empty, NOW, entries=3))
        assert len(sent) == 1
        assert shown.pending and shown.balance == reward and [e.reason for e in shown.entries] == ["registration"]
        for i, amount in enumerate((5, 7, -2, 4)):
            await db.run_sync_transaction(
                lambda c, i=i, amount=amount: points.credit_in(
                    c, resident_id=rid, amount=abs(amount), reason="adjust", ref_type="t", ref_id=str(i),
                    idempotency_key=f"k{i}", now=NOW + timedelta(minutes=i),
                )
            )  # fmt: skip
        await db.run_sync_transaction(lambda c: points.award_registration_in(c, rid, NOW + timedelta(hours=1)))
        with statements(db) as sent:
            shown = await db.run_sync_read(lambda c: points.read_statement_in(c, rid, NOW, entries=3))
        assert len(sent) == 1
        assert not shown.pending and shown.balance == 5 + 7 + 2 + 4 + reward
        assert [(e.amount, e.reason) for e in shown.entries] == [(reward, "registration"), (4, "adjust"), (2, "adjust")]
        head_only = await db.run_sync_read(lambda c: points.read_statement_in(c, rid, NOW))
        assert head_only.balance == shown.balance and head_only.entries == ()
    finally:
        await db.dispose()
