"""PostgreSQL: a first booking that gets a place is one statement without a savepoint; when the
statement's snapshot missed a concurrent booking or debit, what it took is given back and the
booking is decided as before, leaving no trace."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot.services import courses, points
from bot.storage.db import Database
from bot.storage.models import ActivitySession, Booking, PointsEntry
from tests.points.helpers import NOW, assert_ledger_matches, make_course, make_residents
from tests.points.test_redeem_in_one import _while_held, pg_db, statements

__all__ = ["pg_db"]  # the fixture, used by name


def book(db: Database, rid: int, session_id: int, key: str, *, welcome: bool = False) -> Any:
    return lambda connection: courses.book_with_reply(
        connection, db, resident_id=rid, session_id=session_id, now=NOW, request_key=key, welcome=welcome
    )


async def places(db: Database, session_id: int) -> int:
    async with db.session() as session:
        sess = await session.get(ActivitySession, session_id)
        assert sess is not None
        return sess.booked


async def test_a_booking_is_one_statement_with_its_debit_and_ledger(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1, points_each=50)
    session_id = await make_course(db, capacity=3, cost=20)
    with statements(db) as sent:
        done = await db.run_sync_transaction(book(db, rid, session_id, "m1"))
    assert len(sent) == 1 and "SAVEPOINT" not in sent[0], sent
    assert done.balance == 30 and done.session.booked == 1 and done.activity.title == "花艺入门"
    assert (done.booking.status, done.booking.points_paid, done.booking.attempt, done.booking.request_key) == (
        "booked", 20, 1, "m1",
    )  # fmt: skip
    async with db.session() as session:
        booking = (await session.scalars(select(Booking))).one()
        assert (booking.id, booking.status, booking.booked_at) == (done.booking.id, "booked", NOW)
        entry = (await session.scalars(select(PointsEntry).where(PointsEntry.reason == "course"))).one()
        assert (entry.amount, entry.balance_after, entry.ref_id, entry.idempotency_key) == (
            -20, 30, str(booking.id), f"booking:{booking.id}:1:pay",
        )  # fmt: skip
    # The same request again: its booking; another request: already booked.
    again = await db.run_sync_transaction(book(db, rid, session_id, "m1"))
    assert again.booking.id == done.booking.id
    try:
        await db.run_sync_transaction(book(db, rid, session_id, "m2"))
        raise AssertionError("booked twice")
    except courses.BookingError as exc:
        assert exc.code == "duplicate"
    assert await places(db, session_id) == 1
    await assert_ledger_matches(db)


async def test_the_welcome_reward_pays_for_a_booking(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1)
    session_id = await make_course(db, capacity=3, cost=0)
    done = await db.run_sync_transaction(book(db, rid, session_id, "w", welcome=True))
    reward = points.registration_points()
    assert done.booking.status == "booked" and done.balance == reward
    async with db.session() as session:
        assert await points.balance_of(session, rid) == reward
    await assert_ledger_matches(db)


async def test_a_double_tap_committed_meanwhile_gives_back_the_place(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1, points_each=50)
    session_id = await make_course(db, capacity=3, cost=20)
    outcome = await _while_held(db, book(db, rid, session_id, "a"), book(db, rid, session_id, "b"))
    assert isinstance(outcome, courses.BookingError) and outcome.code == "duplicate"
    assert await places(db, session_id) == 1
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Booking)) == 1
        assert await points.balance_of(session, rid) == 30
    await assert_ledger_matches(db)


async def test_points_spent_meanwhile_give_back_the_booking_and_place(pg_db: Database) -> None:
    db = pg_db
    (rid,) = await make_residents(db, 1, points_each=30)
    first, second = await make_course(db, capacity=3, cost=20), await make_course(db, capacity=3, cost=20)
    outcome = await _while_held(db, book(db, rid, first, "a"), book(db, rid, second, "b"))
    assert isinstance(outcome, courses.BookingError) and outcome.code == "points"
    assert (await places(db, first), await places(db, second)) == (1, 0)
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Booking)) == 1
        assert await points.balance_of(session, rid) == 10
    await assert_ledger_matches(db)
