"""The inbound journal: the hot path's SQL, applied to a batch of requests in one transaction.

:class:`Delivery` submits a *claim* when a message arrives (record its key as ``processing`` and
read what the dispatcher needs: the resident, their conversation state, notices that could not be
delivered) and a *finish* when the answer is ready (store the passive reply with the key, the
message log, the resident's last-inbound time). :class:`bot.storage.groupcommit.GroupCommit` hands
this module every claim and finish waiting at that moment; each kind is applied with a handful of
set-based statements whatever the batch size.

The frequent statements are :class:`bot.storage.prepared.Prepared`: compiled once, with bound
parameters (``IN`` lists, executemany), and run on the driver's cursor. The rare ones (a deferred
reply's outbox rows, notices shown) go through SQLAlchemy as usual, in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    String,
    Table,
    Text,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, distinct_on
from sqlalchemy.orm import Session

from bot.handler.context import Context
from bot.handler.dispatcher import Preloaded
from bot.handler.state import RedisStateStorage, StateRecord, StateStorage
from bot.messages import Out
from bot.services import knowledge_log
from bot.services.notify import enqueue_sync
from bot.storage.db import Database, JSONText, json_dumps, json_text
from bot.storage.models import InboundKey, Message, OutboxMessage, Resident
from bot.storage.prepared import Prepared, detached
from bot.wechat.replies import fit

KEYS = cast(Table, InboundKey.__table__)
RESIDENTS = cast(Table, Resident.__table__)
log = logging.getLogger("bot.journal")
OUTBOX = cast(Table, OutboxMessage.__table__)
MESSAGES = cast(Table, Message.__table__)

MAX_NOTICES = 5  # undelivered notices shown in front of one answer

# Residents are read as Core rows and handed on as detached ORM objects (as if loaded by a session
# that has closed): loading through the ORM costs more than the rest of the claim.
_RESIDENT_KEYS = tuple(attr.key for attr in sa_inspect(Resident).column_attrs)
_RESIDENTS_BY_OPENID = Prepared(
    select(*(getattr(Resident, key) for key in _RESIDENT_KEYS)).where(
        Resident.openid.in_(bindparam("openids", expanding=True))
    )
)
_NOTICES = Prepared(
    select(OUTBOX.c.id, OUTBOX.c.openid, OUTBOX.c.payload)
    .where(OUTBOX.c.openid.in_(bindparam("openids", expanding=True)), OUTBOX.c.status == "expired")
    .order_by(OUTBOX.c.id)
)
_STATUS_QUERY = select(KEYS.c.key, KEYS.c.status).where(KEYS.c.key.in_(bindparam("keys", expanding=True)))
_STATUS = Prepared(_STATUS_QUERY)
# On PostgreSQL a concurrent deferral (the request's budget ran out) or recovery either committed
# before this read, or waits for this transaction and then finds the key no longer processing.
_STATUS_LOCKED = Prepared(_STATUS_QUERY.with_for_update())
_REPLIED = Prepared(
    update(KEYS)
    .where(KEYS.c.key == bindparam("k"))
    .values(status="replied", reply=bindparam("reply"), inbound=None, updated_at=bindparam("at"))
)
_DONE = (
    update(KEYS)
    .where(KEYS.c.key == bindparam("k"))
    .values(status="done", inbound=None, updated_at=bindparam("at"))
)
_SHOWN = (
    update(OUTBOX)
    .where(OUTBOX.c.id.in_(bindparam("ids", expanding=True)), OUTBOX.c.status == "expired")
    .values(status="shown", sent_at=bindparam("at"))
)
_TOUCH = Prepared(
    update(RESIDENTS)
    .where(RESIDENTS.c.id == bindparam("resident"))
    .values(last_inbound_at=bindparam("at"), updated_at=bindparam("at"))
)
_LOG = Prepared(insert(MESSAGES))


def message_row(
    resident_id: int,
    direction: str,
    msg_type: str,
    created_at: datetime,
    *,
    event: str | None = None,
    content: str | None = None,
    payload: dict[str, Any] | JSONText | None = None,
    intent: str | None = None,
    confidence: float | None = None,
    dedup_key: str | None = None,
    via: str | None = None,
) -> dict[str, Any]:
    """A ``messages`` row to store with the reply (every column given: rows go in one executemany)."""
    return {
        "resident_id": resident_id,
        "direction": direction,
        "msg_type": msg_type,
        "event": event,
        "content": content,
        "payload": payload if payload is not None else {},
        "intent": intent,
        "confidence": confidence,
        "dedup_key": dedup_key,
        "via": via,
        "created_at": created_at,
    }


@dataclass
class Claim:
    key: str
    openid: str
    now: datetime
    inbound: dict[str, Any] | JSONText | None = None  # kept while pending, so another process can redo it


@dataclass
class Finish:
    key: str
    openid: str
    outs: list[Out]
    ctx: Context | None
    shown: Sequence[int]
    now: datetime
    recovery: bool = False  # a message redone by the maintenance loop (its key is ``recovering``)


@dataclass
class Finished:
    """What became of a finish: the passive reply (``[]``: it went to the outbox), and whether this
    request still owned its key (False: a recovery took the message over, and nothing was written)."""

    passive: list[Out]
    owned: bool = True
    state: StateRecord | None = None  # a changed state the storage could not write here (Redis)


def _claim_arrays(claims: Sequence[Claim]) -> dict[str, list[Any]]:
    """The claims' columns as arrays, the parameters of the PostgreSQL claim statements."""
    return {
        "keys": [c.key for c in claims],
        "openids": [c.openid for c in claims],
        "inbounds": [c.inbound for c in claims],
        "ats": [c.now for c in claims],
    }


class Journal:
    def __init__(self, db: Database, states: StateStorage) -> None:
        self.states = states
        self.locking = not db.is_sqlite  # SQLite: the transaction holds the write lock already
        self._claim_keys = Prepared(
            db.insert(KEYS).on_conflict_do_nothing(index_elements=["key"]).returning(KEYS.c.key)
        )
        # On PostgreSQL the keys go in as arrays: one SQL text whatever the batch's size (a
        # multi-row VALUES is a text per number of rows, each prepared on the server again).
        self._claim_arrays = None if db.is_sqlite else Prepared(_claim_from_arrays())
        # PostgreSQL: the keys claimed, and the residents and undelivered notices of the ones won,
        # in one statement (see :meth:`claim_in_one`).
        self._claim_reading = None if db.is_sqlite else Prepared(_claim_reading())
        self._add_residents = Prepared(db.insert(RESIDENTS).on_conflict_do_nothing(index_elements=["openid"]))
        # PostgreSQL: a batch's replies, message log and last-inbound times in one statement from
        # arrays (see :meth:`finish_in_one`); conversation states kept elsewhere (Redis) are
        # written after the commit, so a finish that changed one can still be written that way.
        self._finish_arrays = None if db.is_sqlite else _finish_from_arrays()
        # Its variants: skipping a key another transaction has locked (see :meth:`_filled_first`),
        # carrying questions logged and ratings (see :meth:`_statement`), or both.
        self._statements = (
            {}
            if db.is_sqlite
            else {
                (skip, carrying): _finish_from_arrays(skip_locked=skip, carrying=carrying)
                for skip in (False, True)
                for carrying in (False, True)
            }
        )
        self._states_elsewhere = isinstance(states, RedisStateStorage)

    def apply(self, connection: Connection, items: Sequence[Claim | Finish]) -> list[Any]:
        """Claims → ``Preloaded`` (or None: a retry); finishes → the passive reply (``[]``: it goes
        out through the outbox because the request already answered ``success``)."""
        results: dict[int, Any] = {}
        claims = [item for item in items if isinstance(item, Claim)]
        finishes = [item for item in items if isinstance(item, Finish)]
        if claims:
            self._claim(connection, claims, results)
        if finishes:
            self._finish(connection, finishes, results)
        return [results[id(item)] for item in items]

    def claim_in_one(self, connection: Connection, claims: Sequence[Claim]) -> list[Preloaded | None]:
        """PostgreSQL: :meth:`apply` for claims alone, on a connection in autocommit. One statement
        inserts the keys (from arrays) and, for the keys won, reads the resident and the notices
        that could not be delivered: its write is that one statement, atomic, so it needs no
        transaction around it (no BEGIN and COMMIT, and nothing held while the event loop serves
        other requests). A resident not there yet (a first contact) is created and read by the
        statements after it, and the conversation states read when the database keeps them; if
        those fail, the keys stay won and the message goes on without them (the dispatcher reads
        the state and the ``resident`` middleware the resident itself), rather than the batch
        failing after its keys were committed."""
        assert self._claim_reading is not None
        won: dict[str, tuple[Any, ...]] = {
            row[0]: row for row in self._claim_reading.rows(connection, _claim_arrays(claims))
        }
        results: list[Preloaded | None] = []
        winners: list[tuple[Claim, Preloaded]] = []
        for claim in claims:
            row = won.pop(claim.key, None)  # a key twice in one batch: the second is a retry
            if row is None:
                results.append(None)
                continue
            notices = [(int(n[0]), n[1]) for n in (row[1] or [])[:MAX_NOTICES]]
            resident = detached(Resident, _RESIDENT_KEYS, row[2:]) if row[2] is not None else None
            preloaded = Preloaded(resident=resident, state=None, notices=notices)
            winners.append((claim, preloaded))
            results.append(preloaded)
        if not winners:
            return results
        try:
            newcomers = sorted({c.openid for c, p in winners if p.resident is None})
            if newcomers:
                self._add_residents.many(connection, _newcomer_rows(newcomers, winners[0][0].now))
                added = _read_residents(connection, newcomers)
                for claim, preloaded in winners:
                    if preloaded.resident is None:
                        preloaded.resident = added.get(claim.openid)
            states = self.states.read_many(connection, sorted({c.openid for c, _ in winners}))
            if states is not None:
                for claim, preloaded in winners:
                    preloaded.state = states.get(claim.openid)
        except Exception:
            log.warning("claim: keys won, residents or states not read with them", exc_info=True)
        return results

    def finish_in_one(self, connection: Connection, finishes: Sequence[Finish]) -> list[Finished]:
        """PostgreSQL: :meth:`apply` for finishes alone, on a connection in autocommit.

        A batch of plain finishes (:meth:`_plain`: at most one message, no notice shown, not a
        recovery, the state in Redis or unchanged) is stored by one statement from arrays
        (:func:`_finish_from_arrays`): each reply where its key is still ``processing`` — the row's
        lock decides against a concurrent deferral or takeover, as ``SELECT … FOR UPDATE`` did —
        with the message log and last-inbound times of the keys it stored, and the questions logged
        and ratings of the batch's finishes whose writes are only those (:meth:`_statement`).
        Without any other flow's write that statement is the whole finish, in autocommit; with
        some it opens a transaction and the writes of the keys it stored follow in it (BEGIN, the
        statement, the writes, COMMIT). When a write gives the reply's text (a ticket's
        number: ``Context.reply_in``) the writes come first and the statement after them, skipping
        a key another transaction has locked (:meth:`_filled_first`: BEGIN, the writes, the
        statement, COMMIT). Any other batch (a key twice, a notice shown, a recovery, a reply the
        filled text made longer than one message), and a key found no longer ``processing``,
        goes through :meth:`_finish` in one transaction: the keys read under their row locks, the
        writes, then the same statement for the replies, log and times."""
        results: dict[int, Any] = {}
        keys = {f.key for f in finishes}
        rest = list(finishes)
        if len(keys) == len(finishes) and all(self._plain(f) for f in finishes):
            assert self._finish_arrays is not None
            # Writes the statement carries (questions logged, ratings), by finish; the others' run.
            carried = [f for f in finishes if f.ctx is not None and f.ctx.reply_writes and _carried(f)]
            writing = [f for f in finishes if f.ctx is not None and f.ctx.reply_writes and not _carried(f)]
            if any(f.ctx is not None and f.ctx.fills for f in finishes):
                done = self._filled_first(connection, finishes, carried, writing)
                if done is not None:
                    return done
                rest = list(finishes)  # all of it under the keys' locks, the writes again
            else:
                rows = self._plain_rows(finishes)
                statement = self._statement(rows, carried)
                replied: set[Any]
                if not writing:
                    replied = self._stored(connection.execute(statement, rows), carried)
                else:
                    with _transaction(connection) as transactional:
                        replied = self._stored(transactional.execute(statement, rows), carried)
                        for f in writing:
                            if f.key in replied:
                                for write in cast(Context, f.ctx).reply_writes:
                                    write(transactional)
                rest = []
                for f in finishes:
                    if f.key in replied:
                        results[id(f)] = Finished(f.outs[:1], state=_changed(f))
                    else:  # deferred or taken over meanwhile: decided under the row's lock below
                        rest.append(f)
        if rest:
            with _transaction(connection) as transactional:
                self._finish(transactional, rest, results)
        return [results[id(f)] for f in finishes]

    def _statement(self, rows: dict[str, list[Any]], carried: Sequence[Finish], *, skip_locked: bool = False) -> Any:
        """The statement from arrays for a batch of plain finishes, and the parameters of the writes
        it carries added to ``rows``: those of ``carried``, finishes whose writes are only questions
        logged and ratings (:func:`_carried`), which it writes for the keys it stores
        (:func:`bot.services.knowledge_log.carried`) instead of a statement each."""
        if carried:
            rows.update(
                knowledge_log.carried_arrays(
                    [(f.key, cast(Any, w)) for f in carried for w in cast(Context, f.ctx).reply_writes]
                )
            )
        return self._statements[(skip_locked, bool(carried))]

    @staticmethod
    def _stored(result: Any, carried: Sequence[Finish]) -> set[Any]:
        """The keys whose replies the statement stored; with writes carried, each question's id is
        handed to its write's ``then``, as the write would have."""
        if not carried:
            return {key for (key,) in result}
        ids: dict[str, int | None] = dict(result.tuples().all())
        for f in carried:
            if f.key in ids:
                for write in cast(Context, f.ctx).reply_writes:
                    if isinstance(write, knowledge_log.Logging) and write.then is not None:
                        write.then(int(cast(int, ids[f.key])))
        return set(ids)

    def _filled_first(
        self, connection: Connection, finishes: Sequence[Finish], carried: Sequence[Finish], writing: Sequence[Finish]
    ) -> list[Finished] | None:
        """Plain finishes of which some reply's text a write gives, in one transaction: the writes
        of ``writing`` first (so the reply is whole), then the statement from arrays (skipping
        locked keys, and carrying the writes of ``carried``: see :meth:`_statement`), then COMMIT —
        no read of the keys under their locks before the writes. If the statement did not store
        every reply (a key deferred or taken over meanwhile, or locked at that moment by the
        transaction doing so), or a filled reply came out longer than one message, the transaction
        is rolled back, nothing of it written, and None returned: the caller then finishes the
        batch under the keys' locks, running the writes again. The statement skips a locked key
        rather than waiting for it, so this transaction, holding its writes' row locks, never waits
        on a transaction that holds a key's lock and may wait on those rows (a recovery redoing the
        same message)."""
        if connection.in_transaction():
            connection.commit()
        transactional = connection.execution_options(isolation_level=connection.dialect.default_isolation_level)
        transaction = transactional.begin()
        try:
            for f in writing:
                for write in cast(Context, f.ctx).reply_writes:
                    write(transactional)
            outs: dict[int, list[Out]] = {}
            for f in finishes:
                ctx = f.ctx
                outs[id(f)] = fit(ctx.filled(f.outs)) if ctx is not None and ctx.fills else f.outs
            if any(len(o) > 1 for o in outs.values()):
                transaction.rollback()
                return None
            rows = self._plain_rows(finishes, outs)
            statement = self._statement(rows, carried, skip_locked=True)
            replied = self._stored(transactional.execute(statement, rows), carried)
            if len(replied) < len(finishes):
                transaction.rollback()
                return None
            transaction.commit()
        except BaseException:
            if transaction.is_active:
                transaction.rollback()
            raise
        return [Finished(outs[id(f)][:1], state=_changed(f)) for f in finishes]

    def _plain(self, f: Finish) -> bool:
        """A finish whose reply :meth:`finish_in_one` stores by its statement from arrays: one
        message, no notice shown, not a recovery, and its state (which a write may change) kept
        outside the database, or, kept in the database, unchanged and without writes."""
        ctx = f.ctx
        if f.recovery or f.shown or len(f.outs) > 1:
            return False
        if ctx is None:
            return True
        return self._states_elsewhere or (not ctx.fsm.changed and not ctx.reply_writes)

    @staticmethod
    def _plain_rows(finishes: Sequence[Finish], outs: dict[int, list[Out]] | None = None) -> dict[str, list[Any]]:
        """:func:`_finish_arrays` of plain finishes (see :meth:`_plain`), each waiting for its reply
        (``outs``: a finish's messages by ``id``, when not its own)."""
        replied: list[dict[str, Any]] = []
        logged: list[tuple[str, dict[str, Any]]] = []
        touched: list[tuple[str, int, datetime]] = []
        for f in finishes:
            passive = (outs[id(f)] if outs is not None else f.outs)[:1]
            payloads = [json_text(o.to_dict()) for o in passive]  # encoded once: the reply, its log row
            replied.append({"k": f.key, "reply": JSONText(f"[{', '.join(payloads)}]"), "at": f.now})
            ctx = f.ctx
            resident_id = ctx.resident.id if ctx is not None and ctx.resident is not None else None
            if ctx is not None:
                logged.extend((f.key, row) for row in _log_rows(ctx))
                if resident_id is not None and ctx.last_inbound_at is not None:
                    touched.append((f.key, resident_id, ctx.last_inbound_at))
            if resident_id is not None:
                logged.extend((f.key, row) for row in outbound_rows(resident_id, passive, "passive", f.now, payloads))
        return _finish_arrays(replied, logged, touched, owned=())

    def _claim(self, connection: Connection, claims: list[Claim], results: dict[int, Any]) -> None:
        """Insert every key at once (one already there is a retry); then read (or create) the
        residents, and read their states and undelivered notices, one query each."""
        rows = [
            {
                "key": c.key,
                "openid": c.openid,
                "status": "processing",
                "inbound": c.inbound,
                "created_at": c.now,
                "updated_at": c.now,
            }
            for c in claims
        ]
        if self._claim_arrays is None:
            won = {key for (key,) in self._claim_keys.many(connection, rows)}
        else:
            won = {key for (key,) in self._claim_arrays.rows(connection, _claim_arrays(claims))}
        winners: list[Claim] = []
        for claim in claims:
            if claim.key in won:
                won.discard(claim.key)  # a key twice in one batch: the second is a retry
                winners.append(claim)
            else:
                results[id(claim)] = None
        if not winners:
            return
        openids = sorted({claim.openid for claim in winners})
        residents = _read_residents(connection, openids)
        newcomers = [openid for openid in openids if openid not in residents]
        if newcomers:
            # First contact: created here, in the batch, rather than in a transaction each.
            now = winners[0].now
            self._add_residents.many(
                connection,
                [
                    {"openid": o, "subscribed": True, "subscribed_at": now, "created_at": now, "updated_at": now}
                    for o in newcomers
                ],
            )
            residents.update(_read_residents(connection, newcomers))
        states = self.states.read_many(connection, openids)
        notices: dict[str, list[tuple[int, Any]]] = {}
        for notice_id, openid, payload in _NOTICES.rows(connection, {"openids": openids}):
            listed = notices.setdefault(openid, [])
            if len(listed) < MAX_NOTICES:
                listed.append((notice_id, payload))
        for claim in winners:
            results[id(claim)] = Preloaded(
                resident=residents.get(claim.openid),
                state=states.get(claim.openid) if states is not None else None,
                notices=list(notices.get(claim.openid, [])),
            )

    def _finish(self, connection: Connection, finishes: list[Finish], results: dict[int, Any]) -> None:
        """Store each reply with its key if the request still waits for it; otherwise queue it for
        the outbox. The message log, the conversation states and the residents' last-inbound times
        go in the same commit. A finish whose key another process took over (its handler was
        thought dead) writes nothing: that process answers instead."""
        statuses: dict[str, str] = dict(
            (_STATUS_LOCKED if self.locking else _STATUS).rows(connection, {"keys": [f.key for f in finishes]})
        )
        replied: list[dict[str, Any]] = []
        logged: list[tuple[str, dict[str, Any]]] = []  # (the finish's key, its row)
        touched: list[tuple[str, int, datetime]] = []  # (the finish's key, its resident, the time)
        owned: list[str] = []
        changed: dict[str, StateRecord] = {}
        changed_by: dict[str, Finish] = {}
        for f in finishes:
            status = statuses.get(f.key)
            waiting = status == "processing" and not f.recovery
            if not waiting and status != ("recovering" if f.recovery else "deferred"):
                results[id(f)] = Finished([], owned=False)
                continue
            statuses[f.key] = "finished"  # the same key twice in one batch: only the first counts
            owned.append(f.key)
            ctx = f.ctx
            outs = f.outs
            if ctx is not None:
                for write in ctx.reply_writes:  # before the state is taken: a write may fill it in
                    write(connection)
                if ctx.fills:  # text the writes gave (a ticket's number): now the reply is whole
                    outs = fit(ctx.filled(outs))
            if ctx is not None and ctx.fsm.changed:
                changed[f.openid] = ctx.fsm.record
                changed_by[f.openid] = f
            resident_id = ctx.resident.id if ctx is not None and ctx.resident is not None else None
            if ctx is not None:
                logged.extend((f.key, row) for row in _log_rows(ctx))
                if resident_id is not None and ctx.last_inbound_at is not None:
                    touched.append((f.key, resident_id, ctx.last_inbound_at))
            if f.shown:
                connection.execute(_SHOWN, {"ids": list(f.shown), "at": f.now})
            if waiting:
                passive, rest = outs[:1], outs[1:]
                # Each message's JSON made once, for the key's reply and for its log row.
                payloads = [json_text(o.to_dict()) for o in passive]
                replied.append({"k": f.key, "reply": JSONText(f"[{', '.join(payloads)}]"), "at": f.now})
                if rest:
                    with _orm(connection) as session:
                        enqueue_sync(session, f.openid, rest, dedup_key=f"{f.key}:more", not_before=f.now)
                if resident_id is not None:
                    logged.extend(
                        (f.key, row) for row in outbound_rows(resident_id, passive, "passive", f.now, payloads)
                    )
                results[id(f)] = Finished(passive)
            else:
                # The request already answered "success": everything goes out as customer-service messages.
                with _orm(connection) as session:
                    enqueue_sync(session, f.openid, outs, dedup_key=f.key, not_before=f.now)
                connection.execute(_DONE, {"k": f.key, "at": f.now})
                results[id(f)] = Finished([])
        if changed and not self.states.write_many(connection, changed, finishes[0].now):
            for openid, record in changed.items():
                results[id(changed_by[openid])].state = record
        if self._finish_arrays is not None:  # PostgreSQL: one statement (the keys are locked)
            connection.execute(self._finish_arrays, _finish_arrays(replied, logged, touched, owned))
            return
        _REPLIED.many(connection, replied)
        _LOG.many(connection, [row for _, row in logged])
        _TOUCH.many(connection, [{"resident": resident, "at": at} for _, resident, at in touched])


def _claim_from_arrays(*returning: Any) -> Any:
    """PostgreSQL: the claim's keys as one INSERT from arrays (``unnest``), returning the keys
    inserted (or ``returning``); the same rows as the multi-row INSERT."""
    claimed = (
        func.unnest(
            bindparam("keys", type_=ARRAY(KEYS.c.key.type)),
            bindparam("openids", type_=ARRAY(KEYS.c.openid.type)),
            bindparam("inbounds", type_=ARRAY(KEYS.c.inbound.type)),
            bindparam("ats", type_=ARRAY(KEYS.c.created_at.type)),
        )
        .table_valued("key", "openid", "inbound", "at")
        .render_derived(name="claimed")
    )
    rows = select(
        claimed.c.key, claimed.c.openid, literal("processing", String), claimed.c.inbound, claimed.c.at, claimed.c.at
    )
    return (
        postgresql.insert(KEYS)
        .from_select(["key", "openid", "status", "inbound", "created_at", "updated_at"], rows)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(*(returning or (KEYS.c.key,)))
    )


def _claim_reading() -> Any:
    """PostgreSQL: the claim's INSERT from arrays as a CTE, and for each key it inserted the
    key, the resident's undelivered notices (``[[id, payload], …]`` by id, or NULL) and the
    resident's columns (NULL when there is no resident yet), in one statement. The resident's row
    and the notices are read as the statement began, like the separate reads after the INSERT."""
    claimed = _claim_from_arrays(KEYS.c.key, KEYS.c.openid).cte("claimed")
    notices = (
        select(
            func.json_agg(
                aggregate_order_by(func.json_build_array(OUTBOX.c.id, OUTBOX.c.payload), OUTBOX.c.id)
            )
        )
        .where(OUTBOX.c.openid == claimed.c.openid, OUTBOX.c.status == "expired")
        .scalar_subquery()
    )
    return select(
        claimed.c.key,
        type_coerce(notices, postgresql.JSON),
        *(getattr(Resident, key) for key in _RESIDENT_KEYS),
    ).select_from(claimed.outerjoin(RESIDENTS, RESIDENTS.c.openid == claimed.c.openid))


_LOG_COLUMNS = tuple(message_row(0, "in", "text", datetime.min))  # every column a log row gives


def _finish_arrays(
    replied: Sequence[dict[str, Any]],
    logged: Sequence[tuple[str, dict[str, Any]]],
    touched: Sequence[tuple[str, int, datetime]],
    owned: Sequence[str],
) -> dict[str, list[Any]]:
    """The parameters of :func:`_finish_from_arrays`: the replies to store (``{"k", "reply",
    "at"}``, where the key is still ``processing``), and the message log rows and last-inbound
    times, each with its finish's key: written when that key's reply was stored or the key is in
    ``owned`` (found owned under the row's lock)."""
    return {
        "r_keys": [r["k"] for r in replied],
        "r_replies": [json_dumps(r["reply"]) for r in replied],
        "r_ats": [r["at"] for r in replied],
        "owned": list(owned),
        "l_keys": [key for key, _ in logged],
        **{f"l_{column}": [row[column] for _, row in logged] for column in _LOG_COLUMNS},
        "t_keys": [key for key, _, _ in touched],
        "t_residents": [resident for _, resident, _ in touched],
        "t_ats": [at for _, _, at in touched],
    }


def _finish_from_arrays(*, skip_locked: bool = False, carrying: bool = False) -> Any:
    """PostgreSQL: a batch's finish in one statement from arrays (one SQL text whatever the batch):
    the replies stored with their keys still ``processing`` (``replied``), the message log rows
    and the residents' last-inbound times of the keys replied or ``owned`` (the last time of each
    resident, in the batch's order), returning the keys replied. ``skip_locked``: a key another
    transaction holds locked is not replied (as if no longer ``processing``) rather than waited for.
    ``carrying``: also the questions logged and ratings of the keys written
    (:func:`bot.services.knowledge_log.carried`), returning each key replied with its question's id
    (or NULL)."""

    def array(name: str, column: Any) -> Any:
        return bindparam(name, type_=ARRAY(column.type))

    replies = (
        func.unnest(
            array("r_keys", KEYS.c.key),
            bindparam("r_replies", type_=ARRAY(Text)),  # JSON texts: a reply is a list (ARRAY would nest it)
            array("r_ats", KEYS.c.updated_at),
        )
        .table_valued("key", "reply", "at")
        .render_derived(name="r")
    )
    storing = update(KEYS).where(KEYS.c.key == replies.c.key, KEYS.c.status == "processing")
    if skip_locked:
        locked = KEYS.alias("free")
        free = select(locked.c.key).where(locked.c.key == any_(array("r_keys", KEYS.c.key)))
        storing = storing.where(KEYS.c.key.in_(free.with_for_update(skip_locked=True)))
    replied = (
        storing.values(status="replied", reply=sql_cast(replies.c.reply, KEYS.c.reply.type), inbound=None, updated_at=replies.c.at)
        .returning(KEYS.c.key)
        .cte("replied")
    )
    written = select(replied.c.key).union_all(select(func.unnest(array("owned", KEYS.c.key)))).cte("written")
    logs = (
        func.unnest(array("l_keys", KEYS.c.key), *(array(f"l_{c}", MESSAGES.c[c]) for c in _LOG_COLUMNS))
        .table_valued("key", *_LOG_COLUMNS)
        .render_derived(name="l")
    )
    logged = (
        insert(MESSAGES)
        .from_select(
            list(_LOG_COLUMNS),
            select(*(logs.c[c] for c in _LOG_COLUMNS)).where(logs.c.key.in_(select(written.c.key))),
        )
        .cte("logged")
    )
    touches = (
        func.unnest(array("t_keys", KEYS.c.key), array("t_residents", RESIDENTS.c.id), array("t_ats", KEYS.c.updated_at))
        .table_valued("key", "resident", "at", with_ordinality="n")
        .render_derived(name="t")
    )
    last = (
        select(touches.c.resident, touches.c.at)
        .where(touches.c.key.in_(select(written.c.key)))
        .ext(distinct_on(touches.c.resident))
        .order_by(touches.c.resident, touches.c.n.desc())
        .subquery("last")
    )
    touched = (
        update(RESIDENTS)
        .where(RESIDENTS.c.id == last.c.resident)
        .values(last_inbound_at=last.c.at, updated_at=last.c.at)
        .cte("touched")
    )
    if carrying:
        numbered, ctes = knowledge_log.carried(written)
        return (
            select(replied.c.key, numbered.c.id)
            .select_from(replied.outerjoin(numbered, numbered.c.key == replied.c.key))
            .add_cte(logged, touched, *ctes)
        )
    return select(replied.c.key).add_cte(logged, touched)


def _carried(f: Finish) -> bool:
    """Whether the statement from arrays can carry all of a finish's writes: questions logged (one
    at most) and ratings (:func:`bot.services.knowledge_log.carried`)."""
    writes = cast(Context, f.ctx).reply_writes
    logged = sum(isinstance(w, knowledge_log.Logging) for w in writes)
    return logged <= 1 and all(isinstance(w, knowledge_log.Logging | knowledge_log.Rating) for w in writes)


def _changed(f: Finish) -> StateRecord | None:
    """The finish's state as its writes left it, when it changed (written once the reply is stored)."""
    ctx = f.ctx
    return ctx.fsm.record if ctx is not None and ctx.fsm.changed else None


def _log_rows(ctx: Context) -> list[dict[str, Any]]:
    """The message log rows a handler's context gives; a row whose payload is the inbound
    message's ``raw`` gets its JSON made at the claim (``Inbound.raw_json``) instead of anew."""
    inbound = ctx.inbound
    for row in ctx.log_rows:
        if row["payload"] is inbound.raw:
            row["payload"] = JSONText(inbound.raw_json)
    return ctx.log_rows


def _newcomer_rows(openids: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    return [
        {"openid": o, "subscribed": True, "subscribed_at": now, "created_at": now, "updated_at": now} for o in openids
    ]


def _read_residents(connection: Connection, openids: list[str]) -> dict[str, Resident]:
    rows = _RESIDENTS_BY_OPENID.rows(connection, {"openids": openids})
    return {r.openid: r for r in (detached(Resident, _RESIDENT_KEYS, row) for row in rows)}


@contextmanager
def _transaction(connection: Connection) -> Iterator[Connection]:
    """A transaction on a connection in autocommit: SQLAlchemy's own transaction of the statements
    before ended first (nothing is sent), then the dialect's default isolation level (set back to
    the connection's own on its return to the pool), BEGIN … COMMIT."""
    if connection.in_transaction():
        connection.commit()
    transactional = connection.execution_options(isolation_level=connection.dialect.default_isolation_level)
    with transactional.begin():
        yield transactional


@contextmanager
def _orm(connection: Connection) -> Iterator[Session]:
    """An ORM session in the connection's transaction (which it neither commits nor ends)."""
    with Session(bind=connection, expire_on_commit=False) as session:
        yield session
        session.flush()


def outbound_rows(
    resident_id: int, outs: Sequence[Out], via: str, now: datetime, payloads: Sequence[JSONText] | None = None
) -> list[dict[str, Any]]:
    """The log rows of messages sent; ``payloads``: their ``to_dict()`` encoded already."""
    return [
        message_row(
            resident_id,
            "out",
            out.kind,
            now,
            content=out.content or None,
            payload=payloads[i] if payloads is not None else out.to_dict(),
            via=via,
        )
        for i, out in enumerate(outs)
    ]
