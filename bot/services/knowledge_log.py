"""The questions residents ask the knowledge base, kept for operators (``knowledge_queries``): the
decision (answer, choices, unknown), the entry given, and whether the resident found it useful.

The chat's writes (:func:`record_in`, :func:`chosen_in`, :func:`feedback_in`) take a Core
connection in the caller's transaction: the chat stores them with the message's reply, so a
question costs no transaction of its own (and a message redone after a crash logs it once)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from bot.storage.db import Database
from bot.storage.models import KnowledgeQuery
from bot.storage.prepared import Prepared


def _row(resident_id: int | None, question: str, decision: str, hits: Sequence[Any], now: datetime) -> dict[str, Any]:
    return {
        "resident_id": resident_id,
        "question": question[:2000],
        "decision": decision,
        "entry_id": hits[0].entry.id if decision == "answer" and hits else None,
        "score": float(hits[0].score) if hits else None,
        "candidates": [[h.entry.id, round(float(h.score), 4)] for h in hits],
        "created_at": now,
    }


# Built once and prepared (``bot/storage/prepared.py``): a question is logged with most replies
# of the mix and a rating with many, in the reply's transaction on SQLite's thread, where
# ``Connection.execute`` cost about three times the statement itself (56 and 36 us per call).
_TABLE = cast(Table, KnowledgeQuery.__table__)
_RECORD = Prepared(insert(_TABLE).returning(_TABLE.c.id))  # every column but helpful, feedback_at
_CHOSEN = Prepared(update(_TABLE).where(_TABLE.c.id == bindparam("query_id")).values(entry_id=bindparam("entry")))
_FEEDBACK = Prepared(
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("query_id"))
    .values(helpful=bindparam("rating"), feedback_at=bindparam("at"))
)


def record_in(
    connection: Connection,
    resident_id: int | None,
    question: str,
    decision: str,
    hits: Sequence[Any],
    now: datetime,
) -> int:
    """One question and what the knowledge base made of it (``hits``: scored entries, best first),
    in the caller's transaction; returns its id."""
    row = _row(resident_id, question, decision, hits, now)
    (row_id,) = _RECORD.scalars(connection, row)
    return int(row_id)


def chosen_in(connection: Connection, query_id: int, entry_id: str) -> None:
    """The resident picked one of the offered entries (in the caller's transaction)."""
    _CHOSEN.rows(connection, {"query_id": query_id, "entry": entry_id})


def feedback_in(connection: Connection, query_id: int, helpful: bool, now: datetime) -> None:
    """The resident's rating of an answer (in the caller's transaction)."""
    _FEEDBACK.rows(connection, {"query_id": query_id, "rating": helpful, "at": now})


async def feedback(db: Database, query_id: int, helpful: bool, now: datetime) -> None:
    """:func:`feedback_in` in a transaction of its own (a 没用, read back at once by
    :func:`unhelpful_in_a_row`)."""
    async with db.transaction() as session:
        connection = await session.connection()
        await connection.run_sync(feedback_in, query_id, helpful, now)


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
