"""Residents waiting for a person (``handoff_requests``): the hook the staff console's handoff queue reads.

A request is recorded when a resident asks for a person (转人工) and for an urgent report. A
resident has at most one open request (``waiting`` or ``claimed``; a partial unique index): asking
again adds the words and counts the ask. Claiming, replying and closing are the console's work
(issue 15); :func:`open_requests` is what its queue lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database
from bot.storage.fixedin import fixed_in
from bot.storage.models import HandoffRequest
from bot.storage.prepared import Prepared

REASONS = ("asked", "urgent", "not_understood", "unhelpful")
OPEN = ("waiting", "claimed")
MAX_TEXT = 2000


@dataclass(frozen=True)
class Recorded:
    id: int
    created: bool  # False: added to the resident's open request
    asks: int
    status: str
    earlier: str | None = None  # added to: the open request's reason before (urgent: an emergency queued it)


async def request(
    db: Database,
    resident_id: int,
    reason: str,
    text: str,
    now: datetime,
    *,
    ticket_id: int | None = None,
) -> Recorded:
    """Open a request for ``resident_id`` or add to the open one; safe under concurrent asks.

    One synchronous transaction (:meth:`Database.run_sync_transaction`: one hop to the database's
    thread, not one per statement through the async driver)."""
    if reason not in REASONS:
        raise ValueError(f"unknown handoff reason {reason!r}")
    words = (text or "").strip()[:500]
    for attempt in range(2):
        try:
            return await db.run_sync_transaction(
                lambda connection: request_in(connection, resident_id, reason, words, now, ticket_id=ticket_id)
            )
        except IntegrityError:
            if attempt:
                raise  # opened concurrently by another request: the second pass adds to it
    raise AssertionError("unreachable")


def request_with_reply(
    connection: Connection, resident_id: int, reason: str, text: str, now: datetime, *, ticket_id: int | None = None
) -> Recorded:
    """:func:`request` in the transaction that stores the chat's reply (``Context.reply_in``): the
    request is recorded exactly when the answer that tells of it is, and costs no transaction of
    its own. (A request opened at that moment by another process's transaction fails the reply's
    transaction; its retry adds to that request.)"""
    if reason not in REASONS:
        raise ValueError(f"unknown handoff reason {reason!r}")
    return request_in(connection, resident_id, reason, (text or "").strip()[:500], now, ticket_id=ticket_id)


_TABLE = cast(Table, HandoffRequest.__table__)
_C = _TABLE.c
# Built once and executed with parameters, so SQLAlchemy reuses their compiled form.
_OPEN = (
    select(_C.id, _C.asks, _C.text, _C.reason, _C.ticket_id, _C.status)
    # The literal term lets SQLite use the partial unique index (its WHERE, implied only by the
    # same term as written): with ``status IN (…)`` alone it walked every waiting request.
    .where(_C.resident_id == bindparam("resident"), fixed_in(_C.status, OPEN), _C.status != literal_column("'closed'"))
    .with_for_update()
)
_ADD = (
    update(_TABLE)
    .where(_C.id == bindparam("request"))
    .values(
        asks=bindparam("asked"), text=bindparam("words"), reason=bindparam("why"),
        ticket_id=bindparam("ticket"), updated_at=bindparam("at"),
    )
)
_NEW = insert(_TABLE).returning(_C.id)
# On SQLite run on the driver's cursor (bot/storage/prepared.py): through ``Connection.execute``
# each cost several times what SQLite spends on it.
_OPEN_ROWS, _ADD_ROWS, _NEW_ROWS = Prepared(_OPEN), Prepared(_ADD), Prepared(_NEW)
# PostgreSQL: a new request unless the resident has an open one (the partial unique index decides,
# also against one a concurrent transaction is opening: this waits for it and inserts nothing).
_NEW_UNLESS_OPEN = (
    postgresql.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["resident_id"], index_where=_C.status != literal_column("'closed'"))
    .returning(_C.id)
)


def request_in(
    connection: Connection,
    resident_id: int,
    reason: str,
    words: str,
    now: datetime,
    *,
    ticket_id: int | None = None,
) -> Recorded:
    """:func:`request` in the caller's transaction (``words`` already trimmed). On PostgreSQL a
    resident's first open request is one statement (the insert that does nothing when one is open)."""
    values = {
        "resident_id": resident_id, "reason": reason, "text": words, "ticket_id": ticket_id,
        "status": "waiting", "asks": 1, "created_at": now, "updated_at": now,
    }  # fmt: skip
    if connection.dialect.name == "postgresql":
        made = connection.execute(_NEW_UNLESS_OPEN, values).scalar_one_or_none()
        if made is not None:
            return Recorded(int(made), True, 1, "waiting")
    found = _OPEN_ROWS.rows(connection, {"resident": resident_id})
    if found:
        open_id, asked, text, open_reason, open_ticket, status = found[0]
        asks = (asked or 1) + 1
        if words and words not in text:
            text = (f"{text}\n{words}" if text else words)[-MAX_TEXT:]
        # The more pressing reason is the one the queue shows.
        why = "urgent" if reason == "urgent" else open_reason
        _ADD_ROWS.rows(
            connection,
            {"request": open_id, "asked": asks, "words": text, "why": why,
             "ticket": ticket_id or open_ticket, "at": now},
        )
        return Recorded(int(open_id), False, asks, str(status), str(open_reason))
    (new_id,) = _NEW_ROWS.scalars(connection, values)
    return Recorded(int(new_id), True, 1, "waiting")


async def withdraw(db: Database, resident_id: int, now: datetime) -> bool:
    """The resident no longer needs a person (算了不用了 right after 转人工): their request is closed
    if nobody has claimed it yet and it was only asked for (an urgent report's request stays)."""
    async with db.transaction() as session:
        result = await session.execute(
            update(HandoffRequest)
            .where(HandoffRequest.resident_id == resident_id, HandoffRequest.status == "waiting",
                   HandoffRequest.reason == "asked")
            .values(status="closed", closed_at=now, updated_at=now)
        )
        return bool(getattr(result, "rowcount", 0))


async def is_waiting(db: Database, resident_id: int) -> bool:
    """Whether the resident's request for a person is still waiting for one (nobody took it yet)."""
    async with db.session() as session:
        found = await session.scalar(
            select(HandoffRequest.id)
            .where(HandoffRequest.resident_id == resident_id, HandoffRequest.status == "waiting")
            .limit(1)
        )
        return found is not None


async def open_requests(db: Database, limit: int = 100) -> list[HandoffRequest]:
    """Open requests, urgent first, then oldest first: the queue a staff member works through."""
    async with db.session() as session:
        rows = await session.scalars(
            select(HandoffRequest)
            .where(HandoffRequest.status.in_(OPEN))
            .order_by((HandoffRequest.reason == "urgent").desc(), HandoffRequest.created_at, HandoffRequest.id)
            .limit(limit)
        )
        return list(rows.all())
