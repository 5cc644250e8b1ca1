"""Residents waiting for a person (``handoff_requests``): the hook the staff console's handoff queue reads.

A request is recorded when a resident asks for a person (转人工) and for an urgent report. A
resident has at most one open request (``waiting`` or ``claimed``; a partial unique index): asking
again adds the words and counts the ask. Claiming, replying and closing are the console's work
(issue 15); :func:`open_requests` is what its queue lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database
from bot.storage.models import HandoffRequest

REASONS = ("asked", "urgent", "not_understood", "unhelpful")
OPEN = ("waiting", "claimed")
MAX_TEXT = 2000


@dataclass(frozen=True)
class Recorded:
    id: int
    created: bool  # False: added to the resident's open request
    asks: int
    status: str


async def request(
    db: Database,
    resident_id: int,
    reason: str,
    text: str,
    now: datetime,
    *,
    ticket_id: int | None = None,
) -> Recorded:
    """Open a request for ``resident_id`` or add to the open one; safe under concurrent asks."""
    if reason not in REASONS:
        raise ValueError(f"unknown handoff reason {reason!r}")
    words = (text or "").strip()[:500]
    for attempt in range(2):
        try:
            async with db.transaction() as session:
                row = await session.scalar(
                    select(HandoffRequest)
                    .where(HandoffRequest.resident_id == resident_id, HandoffRequest.status.in_(OPEN))
                    .with_for_update()
                )
                if row is not None:
                    row.asks = (row.asks or 1) + 1
                    if words and words not in row.text:
                        row.text = (f"{row.text}\n{words}" if row.text else words)[-MAX_TEXT:]
                    if reason == "urgent" and row.reason != "urgent":
                        row.reason = "urgent"  # the more pressing reason is the one the queue shows
                    row.ticket_id = ticket_id or row.ticket_id
                    row.updated_at = now
                    return Recorded(row.id, False, row.asks, row.status)
                row = HandoffRequest(
                    resident_id=resident_id, reason=reason, text=words, ticket_id=ticket_id,
                    status="waiting", asks=1, created_at=now, updated_at=now,
                )
                session.add(row)
                await session.flush()
                return Recorded(row.id, True, 1, row.status)
        except IntegrityError:
            if attempt:
                raise  # opened concurrently by another request: the second pass adds to it
    raise AssertionError("unreachable")


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
