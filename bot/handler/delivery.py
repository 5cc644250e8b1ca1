"""Exactly-once processing and the 5-second deadline.

WeChat retries a request up to three times when it has no answer within 5 s. Every message or
event is claimed once in ``inbound_keys`` (so a retry, even after a restart or on another
process, finds it), and the reply is stored with it so every retry gets the same answer.

If the answer is not ready within the budget the request is answered ``success`` and the answer
goes out later through the outbox as customer-service messages. Which of the two happens is
decided by the database: the request's deferral is a conditional update ``processing`` →
``deferred``, and the reply is stored as ``replied`` only for a key read as still ``processing``
under a row lock (PostgreSQL) or SQLite's write lock, so exactly one wins: nothing is lost and
nothing is sent twice.

Claims and replies are not written here but submitted to a group commit, which applies those of
concurrent requests together (``bot/handler/journal.py``, ``bot/storage/groupcommit.py``).

A process can die after a message was claimed and before its reply was stored. A ticket, a
redemption, a booking or a 转人工 request is written in the transaction that stores the reply
giving it (``Context.reply_in``), so it exists exactly when that answer does (a row an earlier
version committed on its own is found again by the message's key). The claim keeps the message itself with its key, and while a handler runs it beats (refreshes
the key's ``updated_at``); the maintenance loop of any process takes over a pending key whose
heartbeat stopped (``processing``, ``deferred``, or ``recovering`` by a process that died too) and
redoes the message: conversation state is written only with the reply, so the redo repeats nothing
and the resident gets the answer through the outbox. A handler that is only slow keeps beating and is
never taken over; a finish whose key was taken over writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bot import faults, texts
from bot.handler.context import Context
from bot.handler.dispatcher import Dispatcher, Preloaded
from bot.handler.journal import Claim, Finish, Finished, Journal
from bot.messages import Inbound, Out
from bot.runtime import Runtime
from bot.storage.db import JSONText
from bot.storage.groupcommit import GroupCommit
from bot.storage.models import InboundKey
from bot.wechat import outbox
from bot.wechat.replies import fit

log = logging.getLogger("bot.delivery")

POLL_SECONDS = 0.05
PENDING = ("processing", "deferred", "recovering")
MAX_RECOVERIES = 3  # a message that keeps killing its process is given up after this many redos
RECOVER_BATCH = 50


class Delivery:
    def __init__(self, rt: Runtime, dispatcher: Dispatcher) -> None:
        self.rt = rt
        self.dispatcher = dispatcher
        self._tasks: set[asyncio.Task[list[Out]]] = set()
        # Claims and replies of concurrent requests share write transactions (group commit).
        self.journal = Journal(rt.db, rt.states)
        # On PostgreSQL a batch of finishes is one statement in autocommit when it can be
        # (Journal.finish_in_one), else one transaction.
        self.writes: GroupCommit[Claim | Finish, Any] = (
            GroupCommit(rt.db, self.journal.apply)
            if rt.db.is_sqlite
            else GroupCommit(rt.db, self.journal.finish_in_one, run=rt.db.run_sync_autocommit)  # type: ignore[arg-type]
        )
        # On PostgreSQL a batch of claims is one statement in autocommit (Journal.claim_in_one),
        # not a part of the replies' write transactions.
        self.claims: GroupCommit[Any, Preloaded | None] = (
            self.writes
            if rt.db.is_sqlite
            else GroupCommit(rt.db, self.journal.claim_in_one, run=rt.db.run_sync_autocommit)
        )
        self.beats = _Beats(rt.settings.recover_after / 4)

    async def handle(self, inbound: Inbound) -> list[Out]:
        """The passive reply for this request (at most one message); ``[]`` means answer ``success``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.rt.settings.reply_budget
        preloaded = await self._claim(inbound)
        if preloaded is None:
            return await self._replay(inbound.key, deadline)
        # The handler runs in a task of its own, which goes on when the budget runs out; the
        # request waits for whichever comes first: the answer, or the deadline (``None``).
        first: asyncio.Future[list[Out] | None] = loop.create_future()
        task = asyncio.create_task(self._process(inbound, first, preloaded))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        timer = loop.call_at(deadline, _settle, first, None)
        try:
            passive = await first
        finally:
            timer.cancel()
        if passive is not None:
            return passive
        if await self._defer(inbound.key):
            log.info("deferred %s: answer goes out as a customer-service message", inbound.log_key)
            return []
        # The handler finished in the meantime and stored its reply.
        return await task

    async def _claim(self, inbound: Inbound) -> Preloaded | None:
        """Claim the key and read what the dispatcher needs first; None for a retry."""
        preloaded: Preloaded | None = await self.claims.submit(
            # The message as JSON text: its ``raw`` part made once, for this and for the message log.
            Claim(inbound.key, inbound.openid, self.rt.clock.now(), JSONText(inbound.to_json()))
        )
        if preloaded is None:
            log.info("retry of %s", inbound.log_key)
        return preloaded

    async def _replay(self, key: str, deadline: float) -> list[Out]:
        """A retry: the stored reply, waiting for it while the first request is still working."""
        loop = asyncio.get_running_loop()
        while True:
            async with self.rt.db.session() as session:
                row = await session.get(InboundKey, key, populate_existing=True)
            if row is None or row.status not in ("processing", "replied"):
                return []
            if row.status == "replied":
                return [Out.from_dict(d) for d in (row.reply or [])]
            if loop.time() + POLL_SECONDS >= deadline:
                return []
            await asyncio.sleep(POLL_SECONDS)

    async def _defer(self, key: str) -> bool:
        async with self.rt.db.transaction() as session:
            result = await session.execute(
                update(InboundKey)
                .where(InboundKey.key == key, InboundKey.status == "processing")
                .values(status="deferred", updated_at=self.rt.clock.now())
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _process(
        self, inbound: Inbound, first: asyncio.Future[list[Out] | None], preloaded: Preloaded
    ) -> list[Out]:
        beat = _Heartbeat(self, inbound.key)
        try:
            processed = await self.dispatcher.process(inbound, self.rt, preloaded)
            await faults.reached("delivery.before_finish")
            outs, shown = _with_notices(processed.outs, preloaded.notices)
            passive = await self._finish(inbound, fit(outs), processed.ctx, shown)
        except Exception:
            log.exception("could not finish %s", inbound.log_key)
            passive = [Out.text(texts.DELAYED)]  # the key stays pending: the recovery answers
        finally:
            beat.stop()
        _settle(first, passive)
        return passive

    async def _finish(
        self,
        inbound: Inbound,
        outs: list[Out],
        ctx: Context | None,
        shown: Sequence[int] = (),
        *,
        recovery: bool = False,
    ) -> list[Out]:
        """Store the reply — as the passive answer if the request still waits, else via the outbox —
        together with what the middlewares and handler left pending, in one transaction."""
        finished: Finished = await self.writes.submit(
            Finish(inbound.key, inbound.openid, outs, ctx, shown, self.rt.clock.now(), recovery)
        )
        if not finished.owned:
            log.warning("%s was taken over by a recovery; this answer is dropped", inbound.log_key)
        elif finished.state is not None:
            # A storage outside the database (Redis): written once the reply is stored.
            await self.rt.states.write({inbound.openid: finished.state})
        return finished.passive

    async def recover_stale(self, older_than: timedelta | None = None) -> int:
        """Pending keys whose handler stopped beating (its process died): redo the message and send
        the answer through the outbox, or, when it cannot be redone, ask the resident to send
        again. Returns how many keys were taken over."""
        now = self.rt.clock.now()
        if older_than is None:
            older_than = timedelta(seconds=self.rt.settings.recover_after)
        cutoff = now - older_than
        # Every few seconds in every process, nearly always finding nothing: one hop to the
        # database's thread, no session.
        rows = await self.rt.db.run_sync_read(lambda connection: _stale(connection, cutoff))
        recovered = 0
        for row in rows:
            key: str = row.key
            openid: str = row.openid
            stored: Any = row.inbound
            attempts: int = row.attempts or 0
            redo = isinstance(stored, dict) and attempts < MAX_RECOVERIES
            async with self.rt.db.transaction() as session:
                # Taken over only if still pending with a stopped heartbeat: a beat, a finish or
                # another process's recovery in the meantime wins.
                result = await session.execute(
                    update(InboundKey)
                    .where(
                        InboundKey.key == key, InboundKey.status.in_(PENDING), InboundKey.updated_at < cutoff
                    )
                    .values(
                        status="recovering" if redo else "abandoned",
                        attempts=InboundKey.attempts + 1,
                        inbound=stored if redo else None,
                        updated_at=self.rt.clock.now(),
                    )
                )
                if not result.rowcount:  # type: ignore[attr-defined]
                    continue
                if not redo:
                    await outbox.enqueue(
                        session,
                        openid,
                        [Out.text(texts.ABANDONED)],
                        dedup_key=f"{key}:abandoned",
                        not_before=self.rt.clock.now(),
                    )
            recovered += 1
            if redo:
                assert isinstance(stored, dict)
                await self._redo(Inbound.from_dict(stored))
        return recovered

    async def _redo(self, inbound: Inbound) -> None:
        log.warning("redoing %s: its handler's process stopped", inbound.log_key)
        beat = _Heartbeat(self, inbound.key, statuses=("recovering",))
        try:
            processed = await self.dispatcher.process(inbound, self.rt, None)
            await faults.reached("delivery.before_finish")
            await self._finish(inbound, fit(processed.outs), processed.ctx, recovery=True)
        except Exception:
            log.exception("could not redo %s", inbound.log_key)
        finally:
            beat.stop()

    async def drain(self, grace: float = 10.0) -> None:
        """Wait for handlers still running (graceful shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)


_STALE = (
    select(InboundKey.key, InboundKey.openid, InboundKey.inbound, InboundKey.attempts)
    .where(InboundKey.status.in_(PENDING), InboundKey.updated_at < bindparam("cutoff"))
    .order_by(InboundKey.updated_at)
    .limit(RECOVER_BATCH)
)


def _stale(connection: Connection, cutoff: datetime) -> list[Any]:
    """Pending keys whose heartbeat stopped before ``cutoff`` (on the partial index of pending keys)."""
    return list(connection.execute(_STALE, {"cutoff": cutoff}).all())


class _Heartbeat:
    """Refreshes a key's ``updated_at`` while its handler runs longer than a beat (a quarter of
    ``recover_after``). The running handlers share one timer (:class:`_Beats`): a message answered
    within a beat costs no timer of its own."""

    def __init__(self, delivery: Delivery, key: str, statuses: Sequence[str] = ("processing", "deferred")) -> None:
        self.delivery = delivery
        self.key = key
        self.statuses = tuple(statuses)
        self.since = asyncio.get_running_loop().time()  # the handler's start, then the last beat
        self._task: asyncio.Task[None] | None = None
        delivery.beats.add(self)

    def fire(self, now: float) -> None:
        self.since = now
        self._task = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        try:
            async with self.delivery.rt.db.transaction() as session:
                await session.execute(
                    update(InboundKey)
                    .where(InboundKey.key == self.key, InboundKey.status.in_(self.statuses))
                    .values(updated_at=self.delivery.rt.clock.now())
                )
        except Exception:
            log.warning("heartbeat failed", exc_info=True)

    def stop(self) -> None:
        self.delivery.beats.discard(self)


class _Beats:
    """The heartbeats of the handlers running, looked at every half beat while there are any: each
    beats when a beat has passed since its start or its last beat (so within one and a half beats,
    well inside ``recover_after``, which is four)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._running: dict[_Heartbeat, None] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, heartbeat: _Heartbeat) -> None:
        self._running[heartbeat] = None
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval / 2, self._sweep)

    def discard(self, heartbeat: _Heartbeat) -> None:
        self._running.pop(heartbeat, None)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for heartbeat in list(self._running):
            if now - heartbeat.since >= self.interval:
                heartbeat.fire(now)
        self._timer = loop.call_later(self.interval / 2, self._sweep) if self._running else None


def _settle(future: asyncio.Future[list[Out] | None], value: list[Out] | None) -> None:
    if not future.done():
        future.set_result(value)


def _with_notices(outs: list[Out], notices: Sequence[tuple[int, Any]]) -> tuple[list[Out], list[int]]:
    """Put customer-service messages that could not be delivered (the 48-hour window had closed)
    in front of this answer, once; returns the answer and the outbox ids shown."""
    texts_ = []
    ids = []
    for row_id, payload in notices:
        content = (payload or {}).get("text", {}).get("content") if isinstance(payload, dict) else None
        if isinstance(content, str) and content:
            texts_.append(content)
            ids.append(row_id)
    if not texts_ or not outs:
        return outs, []  # nothing to show, or an answer that stays silent (takeover, events)
    if outs[0].kind == "text":
        return [Out.text("\n\n".join([*texts_, outs[0].content])), *outs[1:]], ids
    return [*(Out.text(t) for t in texts_), *outs], ids
