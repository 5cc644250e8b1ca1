"""The questions residents ask the knowledge base, kept for operators (``knowledge_queries``): the
decision (answer, choices, unknown), the entry given, and whether the resident found it useful."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

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


async def unhelpful_in_a_row(db: Database, resident_id: int, query_id: int, now: datetime,
                             within: timedelta) -> list[str]:
    """The questions of the resident's ratings, newest first, that were all 没用, ending at the
    rating of ``query_id``: one question when the rating before (within ``within``) was 有用 or
    there was none, two or more when the answers before were not useful either. Called on a 没用
    only (rare), so the table needs no index by resident."""
    async with db.session() as session:
        rows = (await session.execute(
            select(KnowledgeQuery.question, KnowledgeQuery.helpful)
            .where(KnowledgeQuery.resident_id == resident_id, KnowledgeQuery.id <= query_id,
                   KnowledgeQuery.helpful.is_not(None), KnowledgeQuery.feedback_at >= now - within)
            .order_by(KnowledgeQuery.id.desc())
            .limit(5)
        )).all()
    questions: list[str] = []
    for question, helpful in rows:
        if helpful:
            break
        questions.append(str(question))
    return questions
