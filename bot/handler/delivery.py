"""Exactly-once processing and the 5-second deadline.

WeChat retries a request up to three times when it has no answer within 5 s. Every message or
event is claimed once in ``inbound_keys`` (so a retry, even after a restart or on another
process, finds it), and the reply is stored with it so every retry gets the same answer.

If the answer is not ready within the budget the request is answered ``success`` and the answer
goes out later through the outbox as customer-service messages. Which of the two happens is
decided by the database with conditional updates of the key's status (``processing`` →
``replied`` by the handler, or ``processing`` → ``deferred`` by the request), so exactly one
wins: nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.handler.context import Context
from bot.handler.dispatcher import Dispatcher, Preloaded
from bot.handler.types import Inbound, Out
from bot.runtime import Runtime
from bot.storage.groupcommit import GroupCommit
from bot.storage.models import InboundKey, Message, OutboxMessage, Resident
from bot.wechat import outbox
from bot.wechat.replies import fit

log = logging.getLogger("bot.delivery")

POLL_SECONDS = 0.05

# Core tables for the hot path: batched statements without the ORM's unit of work.
KEYS = cast(Table, InboundKey.__table__)
RESIDENTS = cast(Table, Resident.__table__)
OUTBOX = cast(Table, OutboxMessage.__table__)


@dataclass
class _Claim:
    inbound: Inbound
    now: datetime


@dataclass
class _Finish:
    inbound: Inbound
    outs: list[Out]
    ctx: Context | None
    shown: Sequence[int]
    now: datetime


class Delivery:
    def __init__(self, rt: Runtime, dispatcher: Dispatcher) -> None:
        self.rt = rt
        self.dispatcher = dispatcher
        self._tasks: set[asyncio.Task[None]] = set()
        # Claims and replies of concurrent requests share write transactions (group commit).
        self.writes: GroupCommit[_Claim | _Finish, Any] = GroupCommit(rt.db, self._apply)

    async def handle(self, inbound: Inbound) -> list[Out]:
        """The passive reply for this request (at most one message); ``[]`` means answer ``success``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.rt.settings.reply_budget
        preloaded = await self._claim(inbound)
        if preloaded is None:
            return await self._replay(inbound.key, deadline)
        done: asyncio.Future[list[Out]] = loop.create_future()
        task = asyncio.create_task(self._process(inbound, done, preloaded))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(done), max(0.0, deadline - loop.time()))
        except TimeoutError:
            if await self._defer(inbound.key):
                log.info("deferred %s: answer goes out as a customer-service message", inbound.log_key)
                return []
            # The handler finished in the meantime and stored its reply.
            return await done

    async def _claim(self, inbound: Inbound) -> Preloaded | None:
        """Claim the key and read what the dispatcher needs first; None for a retry."""
        preloaded: Preloaded | None = await self.writes.submit(_Claim(inbound, self.rt.clock.now()))
        if preloaded is None:
            log.info("retry of %s", inbound.log_key)
        return preloaded

    async def _apply(self, session: AsyncSession, items: Sequence[_Claim | _Finish]) -> list[Any]:
        """One transaction for a batch of claims and replies (see :class:`GroupCommit`)."""
        results: dict[int, Any] = {}
        claims = [item for item in items if isinstance(item, _Claim)]
        finishes = [item for item in items if isinstance(item, _Finish)]
        if claims:
            await self._claim_batch(session, claims, results)
        if finishes:
            await self._finish_batch(session, finishes, results)
        return [results[id(item)] for item in items]

    async def _claim_batch(
        self, session: AsyncSession, claims: list[_Claim], results: dict[int, Any]
    ) -> None:
        """Insert every new key at once (a key already there is a retry); then read the residents,
        their states and their undelivered notices with one query each."""
        rows: dict[str, dict[str, Any]] = {}
        for claim in claims:
            key = claim.inbound.key
            rows.setdefault(
                key,
                {
                    "key": key,
                    "openid": claim.inbound.openid,
                    "status": "processing",
                    "created_at": claim.now,
                    "updated_at": claim.now,
                },
            )
        insert = (
            self.rt.db.insert(KEYS)
            .values(list(rows.values()))
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(KEYS.c.key)
        )
        won = set((await session.execute(insert)).scalars())
        winners: list[_Claim] = []
        for claim in claims:
            if claim.inbound.key in won:
                won.discard(claim.inbound.key)  # a key twice in one batch: the second is a retry
                winners.append(claim)
            else:
                results[id(claim)] = None
        if not winners:
            return
        openids = sorted({claim.inbound.openid for claim in winners})
        residents = {
            row.openid: row
            for row in await session.scalars(select(Resident).where(Resident.openid.in_(openids)))
        }
        states = await self.rt.states.get_many_in(session, openids)
        outbox_table = OUTBOX
        notices: dict[str, list[tuple[int, Any]]] = {}
        for row in await session.execute(
            select(outbox_table.c.id, outbox_table.c.openid, outbox_table.c.payload)
            .where(outbox_table.c.openid.in_(openids), outbox_table.c.status == "expired")
            .order_by(outbox_table.c.id)
        ):
            listed = notices.setdefault(row.openid, [])
            if len(listed) < MAX_NOTICES:
                listed.append((row.id, row.payload))
        for claim in winners:
            openid = claim.inbound.openid
            results[id(claim)] = Preloaded(
                resident=residents.get(openid),
                state=states.get(openid) if states is not None else None,
                notices=list(notices.get(openid, [])),
            )

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

    async def _process(self, inbound: Inbound, done: asyncio.Future[list[Out]], preloaded: Preloaded) -> None:
        try:
            processed = await self.dispatcher.process(inbound, self.rt, preloaded)
            outs, shown = _with_notices(processed.outs, preloaded.notices)
            passive = await self._finish(inbound, fit(outs), processed.ctx, shown)
        except Exception:
            log.exception("could not finish %s", inbound.log_key)
            passive = [Out.text(texts.ERROR)]
        if not done.done():
            done.set_result(passive)

    async def _finish(
        self, inbound: Inbound, outs: list[Out], ctx: Context | None, shown: Sequence[int] = ()
    ) -> list[Out]:
        """Store the reply — as the passive answer if the request still waits, else via the outbox —
        together with what the middlewares and handler left pending, in one transaction."""
        passive: list[Out] = await self.writes.submit(_Finish(inbound, outs, ctx, shown, self.rt.clock.now()))
        return passive

    async def _finish_batch(
        self, session: AsyncSession, finishes: list[_Finish], results: dict[int, Any]
    ) -> None:
        keys = KEYS.c
        waiting_query = select(keys.key).where(
            keys.key.in_([f.inbound.key for f in finishes]), keys.status == "processing"
        )
        if not self.rt.db.is_sqlite:
            # A concurrent deferral (the request's budget ran out) either committed before this
            # read, or waits for this transaction and then finds the key no longer processing.
            waiting_query = waiting_query.with_for_update()
        waiting: set[str] = set(await session.scalars(waiting_query))
        touched: list[dict[str, Any]] = []
        replied: list[dict[str, Any]] = []
        for f in finishes:
            ctx = f.ctx
            if ctx is not None:
                session.add_all(ctx.pending_rows)
                for statement in ctx.pending_statements:
                    await session.execute(statement)
                if ctx.resident is not None and ctx.last_inbound_at is not None:
                    touched.append({"resident": ctx.resident.id, "at": ctx.last_inbound_at})
            if f.shown:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(f.shown), OutboxMessage.status == "expired")
                    .values(status="shown", sent_at=f.now)
                )
            key, openid = f.inbound.key, f.inbound.openid
            if key in waiting:
                passive, rest = f.outs[:1], f.outs[1:]
                replied.append({"k": key, "reply": [o.to_dict() for o in passive], "at": f.now})
                if rest:
                    await outbox.enqueue(session, openid, rest, dedup_key=f"{key}:more", not_before=f.now)
                resident_id = ctx.resident.id if ctx is not None and ctx.resident is not None else None
                if passive and resident_id is not None:
                    _record_outbound(session, resident_id, passive, "passive", f.now)
                results[id(f)] = passive
            else:
                # The request already answered "success": everything goes out as customer-service messages.
                await outbox.enqueue(session, openid, f.outs, dedup_key=key, not_before=f.now)
                await session.execute(
                    update(InboundKey).where(InboundKey.key == key).values(status="done", updated_at=f.now)
                )
                results[id(f)] = []
        if replied:
            await session.execute(
                update(KEYS)
                .where(keys.key == bindparam("k"))
                .values(status="replied", reply=bindparam("reply"), updated_at=bindparam("at")),
                replied,
            )
        if touched:
            residents = RESIDENTS.c
            await session.execute(
                update(RESIDENTS)
                .where(residents.id == bindparam("resident"))
                .values(last_inbound_at=bindparam("at"), updated_at=bindparam("at")),
                touched,
            )

    async def recover_stale(self, older_than: timedelta = timedelta(minutes=2)) -> int:
        """Keys left ``processing`` by a process that died: tell the resident to send again."""
        cutoff = self.rt.clock.now() - older_than
        async with self.rt.db.session() as session:
            rows = (
                await session.execute(
                    select(InboundKey.key, InboundKey.openid).where(
                        InboundKey.status == "processing", InboundKey.updated_at < cutoff
                    )
                )
            ).all()
        recovered = 0
        for key, openid in rows:
            async with self.rt.db.transaction() as session:
                result = await session.execute(
                    update(InboundKey)
                    .where(InboundKey.key == key, InboundKey.status == "processing")
                    .values(status="abandoned", updated_at=self.rt.clock.now())
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    await outbox.enqueue(
                        session, openid, [Out.text(texts.ABANDONED)], dedup_key=f"{key}:abandoned"
                    )
                    recovered += 1
        return recovered

    async def drain(self, grace: float = 10.0) -> None:
        """Wait for handlers still running (graceful shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)


MAX_NOTICES = 5


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


def _record_outbound(
    session: AsyncSession, resident_id: int, outs: list[Out], via: str, now: datetime
) -> None:
    for out in outs:
        session.add(
            Message(
                resident_id=resident_id,
                direction="out",
                msg_type=out.kind,
                content=out.content or None,
                payload=out.to_dict(),
                via=via,
                created_at=now,
            )
        )
