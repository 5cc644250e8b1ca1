"""The questions residents ask the knowledge base, kept for operators (``knowledge_queries``): the
decision (answer, choices, unknown), the entry given, and whether the resident found it useful.

The chat's writes (:class:`Logging`, :func:`chosen_in`, :func:`feedback_in`) take a Core
connection in the caller's transaction: the chat stores them with the message's reply, so a
question costs no transaction of its own (and a message redone after a crash logs it once)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, Text, bindparam, func, insert, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY

from bot.storage.db import Database, json_dumps
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


def chosen_in(connection: Connection, query_id: int, entry_id: str) -> None:
    """The resident picked one of the offered entries (in the caller's transaction)."""
    _CHOSEN.rows(connection, {"query_id": query_id, "entry": entry_id})


def feedback_in(connection: Connection, query_id: int, helpful: bool, now: datetime) -> None:
    """The resident's rating of an answer (in the caller's transaction)."""
    _FEEDBACK.rows(connection, {"query_id": query_id, "rating": helpful, "at": now})


@dataclass
class Logging:
    """A question to log with the reply (``Context.with_reply``): a write like any other, which the
    journal's statement storing the replies can also carry on PostgreSQL (:func:`carried`), with
    ``then`` given the new row's id either way."""

    row: dict[str, Any]
    then: Callable[[int], None] | None = None

    def __call__(self, connection: Connection) -> None:
        (row_id,) = _RECORD.scalars(connection, self.row)
        if self.then is not None:
            self.then(int(row_id))


def logging(
    resident_id: int | None,
    question: str,
    decision: str,
    hits: Sequence[Any],
    now: datetime,
    then: Callable[[int], None] | None = None,
) -> Logging:
    """One question and what the knowledge base made of it (``hits``: scored entries, best first), to
    log with the reply (see :class:`Logging`)."""
    return Logging(_row(resident_id, question, decision, hits, now), then)


@dataclass
class Rating:
    """:func:`feedback_in` as a write of the reply's, which the journal's statement can carry."""

    query_id: int
    helpful: bool
    at: datetime

    def __call__(self, connection: Connection) -> None:
        feedback_in(connection, self.query_id, self.helpful, self.at)


_LOGGED_COLUMNS = ("resident_id", "question", "decision", "entry_id", "score", "candidates", "created_at")
_ARRAY_TYPES: dict[str, Any] = {"candidates": Text()}  # JSON texts, cast to JSON (ARRAY of JSON would nest)


def carried(written: Any) -> tuple[Any, list[Any]]:
    """PostgreSQL: :class:`Logging` and :class:`Rating` writes as parts of one statement from arrays
    (the journal's, storing the replies): given ``written``, a CTE of the keys whose replies it
    stored (column ``key``), the CTE of the questions logged (``key``, ``id``: each row's id taken
    from the table's sequence first, so it can be handed back by the message's key) and every CTE
    to add to the statement. Parameters: :func:`carried_arrays`."""
    sequence = func.pg_get_serial_sequence(_TABLE.name, _TABLE.c.id.name)
    questions = (
        func.unnest(
            bindparam("q_keys", type_=ARRAY(Text)),
            *(bindparam(f"q_{c}", type_=ARRAY(_ARRAY_TYPES.get(c, _TABLE.c[c].type))) for c in _LOGGED_COLUMNS),
        )
        .table_valued("key", *_LOGGED_COLUMNS)
        .render_derived(name="q")
    )
    numbered = (
        select(questions.c.key, func.nextval(sequence).label("id"), *(questions.c[c] for c in _LOGGED_COLUMNS))
        .where(questions.c.key.in_(select(written.c.key)))
        .cte("numbered")
    )
    values: list[Any] = [numbered.c[c] for c in _LOGGED_COLUMNS]
    values[_LOGGED_COLUMNS.index("candidates")] = sql_cast(numbered.c.candidates, _TABLE.c.candidates.type)
    logged = insert(_TABLE).from_select(["id", *_LOGGED_COLUMNS], select(numbered.c.id, *values)).cte("questions")
    ratings = (
        func.unnest(
            bindparam("f_keys", type_=ARRAY(Text)),
            bindparam("f_ids", type_=ARRAY(_TABLE.c.id.type)),
            bindparam("f_helpful", type_=ARRAY(_TABLE.c.helpful.type)),
            bindparam("f_ats", type_=ARRAY(_TABLE.c.feedback_at.type)),
        )
        .table_valued("key", "id", "helpful", "at")
        .render_derived(name="f")
    )
    rated = (
        update(_TABLE)
        .where(_TABLE.c.id == ratings.c.id, ratings.c.key.in_(select(written.c.key)))
        .values(helpful=ratings.c.helpful, feedback_at=ratings.c.at)
        .cte("rated")
    )
    return numbered, [numbered, logged, rated]


def carried_arrays(writes: Sequence[tuple[str, Logging | Rating]]) -> dict[str, list[Any]]:
    """The parameters of :func:`carried`: each write with its message's key."""
    questions = [(key, w.row) for key, w in writes if isinstance(w, Logging)]
    ratings = [(key, w) for key, w in writes if isinstance(w, Rating)]
    arrays: dict[str, list[Any]] = {"q_keys": [key for key, _ in questions]}
    for column in _LOGGED_COLUMNS:
        arrays[f"q_{column}"] = [
            json_dumps(row[column]) if column == "candidates" else row[column] for _, row in questions
        ]
    arrays.update(
        f_keys=[key for key, _ in ratings],
        f_ids=[r.query_id for _, r in ratings],
        f_helpful=[r.helpful for _, r in ratings],
        f_ats=[r.at for _, r in ratings],
    )
    return arrays


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
