"""Group commit: many small write transactions from concurrent requests share one.

Each request submits an item and awaits its result. One writer task at a time takes every item
waiting (up to ``max_batch``), applies them all in one transaction and hands each its result. An
idle writer starts at once, so a lone request waits for no one; under load the transaction and
per-statement costs are shared by the whole batch. If a batch fails, its items are applied again
one by one, each in its own transaction, so one bad item fails alone.

``apply`` is synchronous: the whole batch is one call into the database layer
(:meth:`Database.run_sync_transaction`), not one await per statement.

The writer is an ordinary task started on demand and ending when the queue is empty: nothing to
start or stop with the application, and it works in any event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from bot.storage.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Apply = Callable[[Session, Sequence[T]], Sequence[R]]


class GroupCommit(Generic[T, R]):
    def __init__(self, db: Database, apply: Apply[T, R], max_batch: int = 64) -> None:
        """``apply(session, items)`` writes ``items`` in the caller's transaction and returns one
        result per item, in order."""
        self.db = db
        self.apply = apply
        self.max_batch = max_batch
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # counters for benchmarks and tests
        self.items = 0

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self._waiting:
            batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
            self.batches += 1
            self.items += len(batch)
            try:
                await self._commit(batch)
            except BaseException as exc:  # cancelled while writing: nobody may wait forever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            exc if isinstance(exc, Exception) else RuntimeError("writer stopped")
                        )
                if not isinstance(exc, Exception):
                    self._fail_waiting()
                    raise

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self.db.run_sync_transaction(self._bound(items))
        except Exception:
            if len(batch) == 1:
                raise
            log.warning("a batch of %d failed; applying its items one by one", len(batch), exc_info=True)
            for item, future in batch:
                try:
                    (result,) = await self.db.run_sync_transaction(self._bound([item]))
                except Exception as exc:
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _bound(self, items: Sequence[T]) -> Callable[[Session], Sequence[R]]:
        return lambda session: self.apply(session, items)

    def _fail_waiting(self) -> None:
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_exception(RuntimeError("writer stopped"))
