"""The journal's finish on PostgreSQL (bot/handler/journal.py, ``Journal.finish_in_one``): a batch of
plain finishes is one statement outside any transaction, which stores each reply only where its key
is still ``processing``, with the message log and the residents' last-inbound times of the keys it
stored; a key deferred meanwhile, a flow's write or a key twice in one batch go through one
transaction, where the key is read under its row's lock, as before."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import Connection, event, insert, select, update

from bot.handler.context import Context
from bot.handler.journal import Claim, Finish, Finished, Journal, message_row
from bot.handler.state import FSM, RedisStateStorage, StateRecord
from bot.messages import Inbound, Out
from bot.services import knowledge_log
from bot.storage.db import Database
from bot.storage.models import InboundKey, KnowledgeQuery, Message, OutboxMessage, Resident

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _postgres_only(database_url: str) -> None:
    """The finish under test is PostgreSQL's (autouse: skipped before the shared ``db`` migrates)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's finish")


def journal_of(db: Database) -> Journal:
    return Journal(db, RedisStateStorage(redis=None))  # states kept outside the database


async def claimed(db: Database, journal: Journal, *keys: tuple[str, str]) -> dict[str, Resident]:
    """Claim ``(key, openid)`` pairs (residents made on first contact); the residents by openid."""
    results = await db.run_sync_autocommit(
        lambda conn: journal.claim_in_one(conn, [Claim(k, o, T0, {"Content": k}) for k, o in keys])
    )
    return {p.resident.openid: p.resident for p in results if p is not None and p.resident is not None}


def finish(key: str, resident: Resident, text: str, *, at: datetime, state: str | None = None) -> Finish:
    inbound = Inbound(openid=resident.openid, account="gh_x", msg_type="text", create_time=0, content=text)
    ctx = Context(inbound=inbound, rt=cast(Any, None), fsm=FSM(StateRecord()), resident=resident)
    ctx.last_inbound_at = at
    ctx.log_rows.append(message_row(resident.id, "in", "text", at, content=text, dedup_key=key))
    if state is not None:
        ctx.fsm.move(state, step=1)
    return Finish(key, resident.openid, [Out.text(f"答：{text}")], ctx, (), at)


async def finished(db: Database, journal: Journal, batch: Sequence[Finish], sent: list[str]) -> list[Finished]:
    """The batch finished; ``sent`` gets each statement's first word, and BEGIN where a statement
    is the first of a transaction (the connection out of autocommit), COMMIT at its end."""

    def run(conn: Connection) -> list[Finished]:
        transaction: list[bool] = [False]

        def seen(c: Connection, _cursor: Any, statement: str, *_: Any) -> None:
            in_one = c.get_execution_options().get("isolation_level") != "AUTOCOMMIT"
            if in_one and not transaction[0]:
                sent.append("BEGIN")
            transaction[0] = in_one
            sent.append(statement.split()[0].upper())

        def committed(c: Connection) -> None:
            if c.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                sent.append("COMMIT")
                transaction[0] = False

        event.listen(conn, "before_cursor_execute", seen)
        event.listen(conn, "commit", committed)
        try:
            return journal.finish_in_one(conn, batch)
        finally:
            event.remove(conn, "before_cursor_execute", seen)
            event.remove(conn, "commit", committed)

    return await db.run_sync_autocommit(run)


async def test_plain_finishes_are_one_statement_outside_a_transaction(db: Database) -> None:
    journal = journal_of(db)
    residents = await claimed(db, journal, ("k1", "o_a"), ("k2", "o_b"), ("k3", "o_a"))
    a, b = residents["o_a"], residents["o_b"]
    sent: list[str] = []
    results = await finished(
        db,
        journal,
        [
            finish("k1", a, "你好", at=T0 + timedelta(seconds=1), state="points:menu"),
            finish("k2", b, "谢谢", at=T0 + timedelta(seconds=2)),
            finish("k3", a, "积分", at=T0 + timedelta(seconds=3)),
        ],
        sent,
    )
    assert sent == ["WITH"], sent  # one statement, no BEGIN or COMMIT
    assert [r.passive for r in results] == [[Out.text("答：你好")], [Out.text("答：谢谢")], [Out.text("答：积分")]]
    assert all(r.owned for r in results)
    # A state kept in Redis is handed back, to be written once the reply is stored.
    assert results[0].state == StateRecord("points:menu", {"step": 1}) and results[1].state is None
    async with db.session() as s:
        keys = {k.key: k for k in (await s.scalars(select(InboundKey))).all()}
        messages = (await s.execute(select(Message.resident_id, Message.direction, Message.content))).all()
        times = dict((await s.execute(select(Resident.openid, Resident.last_inbound_at))).all())
    assert {k: (v.status, v.reply, v.inbound) for k, v in keys.items()} == {
        "k1": ("replied", [Out.text("答：你好").to_dict()], None),
        "k2": ("replied", [Out.text("答：谢谢").to_dict()], None),
        "k3": ("replied", [Out.text("答：积分").to_dict()], None),
    }
    assert sorted(messages) == sorted(
        [(a.id, "in", "你好"), (a.id, "out", "答：你好"), (b.id, "in", "谢谢"), (b.id, "out", "答：谢谢"),
         (a.id, "in", "积分"), (a.id, "out", "答：积分")]
    )  # fmt: skip
    # The resident's last message of the batch gives the time.
    assert times == {"o_a": T0 + timedelta(seconds=3), "o_b": T0 + timedelta(seconds=2)}


async def test_a_key_deferred_or_taken_over_meanwhile_is_decided_under_its_lock(db: Database) -> None:
    journal = journal_of(db)
    residents = await claimed(db, journal, ("k1", "o_a"), ("k2", "o_b"), ("k3", "o_c"))
    async with db.transaction() as s:  # the request of k2 answered "success"; k3 was taken over
        await s.execute(update(InboundKey).where(InboundKey.key == "k2").values(status="deferred"))
        await s.execute(update(InboundKey).where(InboundKey.key == "k3").values(status="recovering"))
    sent: list[str] = []
    at = T0 + timedelta(seconds=1)
    results = await finished(
        db, journal, [finish(k, residents[o], k, at=at) for k, o in (("k1", "o_a"), ("k2", "o_b"), ("k3", "o_c"))], sent
    )
    assert sent[0] == "WITH" and "BEGIN" in sent, sent  # the statement, then one transaction for the rest
    assert results[0].passive == [Out.text("答：k1")] and results[0].owned
    assert results[1].passive == [] and results[1].owned  # goes out through the outbox
    assert results[2].passive == [] and not results[2].owned  # the recovery answers instead
    async with db.session() as s:
        statuses = dict((await s.execute(select(InboundKey.key, InboundKey.status))).all())
        queued = (await s.execute(select(OutboxMessage.openid, OutboxMessage.dedup_key))).all()
        logged = sorted((await s.execute(select(Message.dedup_key, Message.direction))).all(), key=str)
    assert statuses == {"k1": "replied", "k2": "done", "k3": "recovering"}
    assert queued == [("o_b", "k2#0")]
    # k2's message is logged (its answer goes out as a customer-service message); k3's is not.
    assert logged == [("k1", "in"), ("k2", "in"), (None, "out")], logged


def noted(openid: str, what: str) -> Any:
    """A flow's write: an outbox row of ``what`` (something to count afterwards)."""

    def write(conn: Connection) -> str:
        conn.execute(insert(OutboxMessage).values(openid=openid, payload={"text": {"content": what}}, status="sent"))
        return what

    return write


async def sent_rows(db: Database) -> list[str]:
    async with db.session() as s:
        rows: Sequence[Any] = (await s.scalars(select(OutboxMessage.payload).where(OutboxMessage.status == "sent"))).all()
    return sorted(str(payload["text"]["content"]) for payload in rows)


async def test_a_flows_writes_follow_the_statement_in_one_transaction(db: Database) -> None:
    """A write whose reply is known already (a question logged): BEGIN, the statement, the writes of
    the keys it stored, COMMIT; a key deferred meanwhile gets its write in the transaction after,
    under its row's lock, once."""
    journal = journal_of(db)
    residents = await claimed(db, journal, ("k1", "o_a"), ("k2", "o_b"), ("k3", "o_c"))
    async with db.transaction() as s:
        await s.execute(update(InboundKey).where(InboundKey.key == "k3").values(status="deferred"))
    batch = [finish(k, residents[o], k, at=T0) for k, o in (("k1", "o_a"), ("k2", "o_b"), ("k3", "o_c"))]
    for f in (batch[0], batch[2]):
        context = cast(Context, f.ctx)
        context.with_reply(noted(f.openid, f.key))
        context.with_reply(functools.partial(lambda context, conn: context.fsm.fill(query_id=7), context))
    sent: list[str] = []
    results = await finished(db, journal, batch, sent)
    # The statement and k1's write; then k3, deferred: locked, its write, the outbox, done, its log.
    assert sent == [
        "BEGIN", "WITH", "INSERT", "COMMIT", "BEGIN", "SELECT", "INSERT", "SELECT", "INSERT", "UPDATE", "WITH", "COMMIT"
    ], sent  # fmt: skip
    assert [r.passive for r in results] == [[Out.text("答：k1")], [Out.text("答：k2")], []]
    assert results[0].state == StateRecord(None, {"query_id": 7})  # as the write left it
    assert await sent_rows(db) == ["k1", "k3"]


def filled(key: str, resident: Resident, number: str, dedup_key: str | None = None) -> Finish:
    """A finish whose reply's text its write gives (``Context.reply_in``: a ticket and its number)."""
    f = finish(key, resident, "报修", at=T0)

    def write(conn: Connection) -> str:
        row = {"openid": resident.openid, "payload": {"text": {"content": number}}, "status": "sent"}
        conn.execute(insert(OutboxMessage).values(**row, dedup_key=dedup_key))
        return number

    f.outs = [Out.text(f"已登记：{cast(Context, f.ctx).reply_in(write)}")]
    return f


async def test_a_reply_a_write_gives_is_written_before_the_statement_in_one_transaction(db: Database) -> None:
    """A write giving the reply's text: BEGIN, the writes, the statement, COMMIT — the keys are not
    read under their locks first (the statement's own row locks decide)."""
    journal = journal_of(db)
    residents = await claimed(db, journal, ("k1", "o_a"), ("k2", "o_b"))
    a, b = residents["o_a"], residents["o_b"]
    sent: list[str] = []
    results = await finished(db, journal, [filled("k1", a, "T-1"), finish("k2", b, "谢谢", at=T0)], sent)
    assert sent == ["BEGIN", "INSERT", "WITH", "COMMIT"], sent  # the write, then the replies
    assert results[0].passive == [Out.text("已登记：T-1")] and results[1].passive == [Out.text("答：谢谢")]
    assert await sent_rows(db) == ["T-1"]
    async with db.session() as s:
        replies: dict[str, Any] = dict((await s.execute(select(InboundKey.key, InboundKey.reply))).all())
    assert replies == {"k1": [Out.text("已登记：T-1").to_dict()], "k2": [Out.text("答：谢谢").to_dict()]}


async def test_a_key_twice_makes_the_batch_one_transaction_under_the_keys_locks(db: Database) -> None:
    journal = journal_of(db)
    residents = await claimed(db, journal, ("k1", "o_a"))
    a = residents["o_a"]
    sent: list[str] = []
    await finished(db, journal, [filled("k1", a, "T-1")], sent)
    sent.clear()
    residents = await claimed(db, journal, ("k3", "o_a"))
    twice = await finished(db, journal, [finish("k3", a, "一", at=T0), finish("k3", a, "二", at=T0)], sent)
    assert sent[:2] == ["BEGIN", "SELECT"], sent
    assert twice[0].passive == [Out.text("答：一")] and not twice[1].owned
    async with db.session() as s:
        replies: dict[str, Any] = dict((await s.execute(select(InboundKey.key, InboundKey.reply))).all())
        messages = [str(c) for c in (await s.scalars(select(Message.content).where(Message.direction == "out")))]
    assert replies["k1"] == [Out.text("已登记：T-1").to_dict()] and replies["k3"] == [Out.text("答：一").to_dict()]
    assert await sent_rows(db) == ["T-1"]
    assert sorted(messages) == sorted(["已登记：T-1", "答：一"])


async def test_a_filled_reply_whose_key_was_deferred_meanwhile_is_written_once_under_the_lock(db: Database) -> None:
    """The writes ran before the statement found the key deferred: all rolled back, then the batch
    finished under the keys' locks, the writes once more; the answer goes to the outbox."""
    journal = journal_of(db)
    residents = await claimed(db, journal, ("k1", "o_a"), ("k2", "o_b"))
    async with db.transaction() as s:
        await s.execute(update(InboundKey).where(InboundKey.key == "k2").values(status="deferred"))
    sent: list[str] = []
    batch = [filled("k1", residents["o_a"], "T-1"), filled("k2", residents["o_b"], "T-2")]
    results = await finished(db, journal, batch, sent)
    assert sent[:3] == ["BEGIN", "INSERT", "INSERT"] and "SELECT" in sent, sent  # rolled back, then locked
    assert results[0].passive == [Out.text("已登记：T-1")] and results[0].owned
    assert results[1].passive == [] and results[1].owned
    assert await sent_rows(db) == ["T-1", "T-2"]  # each write once
    async with db.session() as s:
        statuses = dict((await s.execute(select(InboundKey.key, InboundKey.status))).all())
        queued: Sequence[Any] = (
            await s.scalars(select(OutboxMessage.payload).where(OutboxMessage.dedup_key == "k2#0"))
        ).all()
    assert statuses == {"k1": "replied", "k2": "done"}
    assert [q["text"]["content"] for q in queued] == ["已登记：T-2"]


async def test_a_filled_finish_does_not_wait_for_a_key_locked_by_a_transaction_waiting_on_its_write(
    db: Database,
) -> None:
    """A recovery takes the key over (holding its row's lock) and, redoing the message, waits on the
    row the finish's write inserted (the same unique key): the finish's statement skips the locked
    key and rolls back instead of waiting (a deadlock, one of the two aborted, on the old order);
    the recovery commits, and the finish, under the key's lock after it, writes nothing."""
    journal = journal_of(db)
    residents = await claimed(db, journal, ("k1", "o_a"))
    async with db.engine.connect() as recovery:
        await recovery.begin()
        await recovery.execute(update(InboundKey).where(InboundKey.key == "k1").values(status="recovering"))
        task = asyncio.create_task(finished(db, journal, [filled("k1", residents["o_a"], "T-1", dedup_key="t1")], []))
        await asyncio.sleep(0.3)  # the finish's write is in, uncommitted
        redo = {"openid": "o_a", "payload": {"text": {"content": "redo"}}, "status": "sent", "dedup_key": "t1"}
        await recovery.execute(insert(OutboxMessage).values(**redo))  # waits for the finish's rollback
        await recovery.commit()
    (result,) = await asyncio.wait_for(task, 10)
    assert not result.owned and result.passive == []
    assert await sent_rows(db) == ["redo"]
    async with db.session() as s:
        assert (await s.get(InboundKey, "k1")).status == "recovering"  # type: ignore[union-attr]


async def test_questions_logged_and_ratings_are_carried_by_the_statement_outside_a_transaction(db: Database) -> None:
    """A question logged (its id handed back for the state) and a rating are parts of the one
    statement; a key deferred meanwhile logs its question once, under its row's lock."""
    journal = journal_of(db)
    residents = await claimed(db, journal, ("k1", "o_a"), ("k2", "o_b"), ("k3", "o_c"))
    async with db.transaction() as s:
        await s.execute(update(InboundKey).where(InboundKey.key == "k3").values(status="deferred"))
        earlier = KnowledgeQuery(resident_id=residents["o_b"].id, question="早先的问题", decision="answer")
        s.add(earlier)
    given: dict[str, int] = {}
    batch = [finish(k, residents[o], k, at=T0) for k, o in (("k1", "o_a"), ("k2", "o_b"), ("k3", "o_c"))]
    hits = [SimpleNamespace(entry=SimpleNamespace(id="e1"), score=0.9)]
    for f in (batch[0], batch[2]):
        context = cast(Context, f.ctx)

        def then(query_id: int, key: str = f.key) -> None:
            given[key] = query_id

        resident_id = cast(Resident, context.resident).id
        context.with_reply(knowledge_log.logging(resident_id, f"问{f.key}", "answer", hits, T0, then))
    cast(Context, batch[1].ctx).with_reply(knowledge_log.Rating(earlier.id, True, T0))
    sent: list[str] = []
    results = await finished(db, journal, batch, sent)
    assert sent[0] == "WITH" and sent[1] == "BEGIN", sent  # k3 alone, under its lock, afterwards
    assert [r.passive for r in results] == [[Out.text("答：k1")], [Out.text("答：k2")], []]
    async with db.session() as s:
        rows = {q.question: q for q in (await s.scalars(select(KnowledgeQuery))).all()}
    assert sorted(rows) == ["早先的问题", "问k1", "问k3"]
    assert given == {"k1": rows["问k1"].id, "k3": rows["问k3"].id}
    assert rows["问k1"].candidates == [["e1", 0.9]] and rows["问k1"].entry_id == "e1"
    assert rows["早先的问题"].helpful is True and rows["早先的问题"].feedback_at == T0
    assert rows["问k1"].helpful is None


async def test_questions_logged_ride_in_the_statement_beside_other_writes(db: Database) -> None:
    """In a batch with other writes the statement still carries the questions: BEGIN, the statement,
    the other write, COMMIT; and with a reply a write fills in: BEGIN, that write, the statement,
    COMMIT — no statement of their own for the questions."""
    journal = journal_of(db)
    residents = await claimed(db, journal, ("k1", "o_a"), ("k2", "o_b"), ("k3", "o_a"), ("k4", "o_b"))
    hits = [SimpleNamespace(entry=SimpleNamespace(id="e1"), score=0.9)]
    given: dict[str, int] = {}

    def asked(key: str, resident: Resident) -> Finish:
        f = finish(key, resident, key, at=T0)

        def then(query_id: int) -> None:
            given[key] = query_id

        cast(Context, f.ctx).with_reply(knowledge_log.logging(resident.id, f"问{key}", "answer", hits, T0, then))
        return f

    other = finish("k2", residents["o_b"], "k2", at=T0)
    cast(Context, other.ctx).with_reply(noted("o_b", "k2"))
    sent: list[str] = []
    await finished(db, journal, [asked("k1", residents["o_a"]), other], sent)
    assert sent == ["BEGIN", "WITH", "INSERT", "COMMIT"], sent
    sent.clear()
    results = await finished(db, journal, [asked("k3", residents["o_a"]), filled("k4", residents["o_b"], "T-4")], sent)
    assert sent == ["BEGIN", "INSERT", "WITH", "COMMIT"], sent
    assert results[1].passive == [Out.text("已登记：T-4")]
    async with db.session() as s:
        ids = dict((await s.execute(select(KnowledgeQuery.question, KnowledgeQuery.id))).all())
    assert given == {"k1": ids["问k1"], "k3": ids["问k3"]} and len(ids) == 2
    assert await sent_rows(db) == ["T-4", "k2"]
