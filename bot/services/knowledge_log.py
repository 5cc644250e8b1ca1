"""The questions residents ask the knowledge base, kept for operators (``knowledge_queries``): the
decision (answer, choices, unknown), the entry given, and whether the resident found it useful."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update

from bot.storage.db import Database
from bot.storage.models import KnowledgeQuery


async def record(
    db: Database, resident_id: int | None, question: str, decision: str, hits: Sequence[Any], now: datetime
) -> int:
    """One question and what the knowledge base made of it (``hits``: scored entries, best first)."""
    async with db.transaction() as session:
        row = KnowledgeQuery(
            resident_id=resident_id,
            question=question[:2000],
            decision=decision,
            entry_id=hits[0].entry.id if decision == "answer" and hits else None,
            score=float(hits[0].score) if hits else None,
            candidates=[[h.entry.id, round(float(h.score), 4)] for h in hits],
            created_at=now,
        )
        session.add(row)
        await session.flush()
        return int(row.id)


async def chosen(db: Database, query_id: int, entry_id: str) -> None:
    """The resident picked one of the offered entries."""
    async with db.transaction() as session:
        await session.execute(update(KnowledgeQuery).where(KnowledgeQuery.id == query_id).values(entry_id=entry_id))


async def feedback(db: Database, query_id: int, helpful: bool, now: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(KnowledgeQuery).where(KnowledgeQuery.id == query_id).values(helpful=helpful, feedback_at=now)
        )
