"""Group commit: many small write transactions from concurrent requests share one.

Each request submits an item and awaits its result. One writer task at a time takes every item
waiting (up to ``max_batch``), applies them all in one transaction and hands each its result.
Before it takes them it yields to the event loop for as long as that brings more items (requests
already under way reach their submit), without a timer: a lone request waits a few loop turns,
microseconds; under load the transaction and per-statement costs are shared by the whole batch.
If a batch fails, its items are applied again one by one, each in its own transaction, so one bad
item fails alone.

``apply`` is synchronous: the whole batch is one call into the database layer
(:meth:`Database.run_sync_transaction`), not one await per statement.

The writer is an ordinary task started on demand and ending when the queue is empty: nothing to
start or stop with the application, and it works in any event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Histogram
from sqlalchemy import Connection

from bot.storage.db import Database

log = logging.getLogger(__name__)

_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
WAIT = Histogram(
    "bot_group_commit_wait_seconds",
    "Per batch, the longest wait of its requests: from submitting to the result (gathering, queueing, the transaction)",
    ["batch"],
    buckets=_SECONDS,
)
COMMIT = Histogram(
    "bot_group_commit_seconds", "A batch's transaction, the hop to the database's thread included", ["batch"], buckets=_SECONDS
)
ITEMS = Histogram(
    "bot_group_commit_items", "Requests per batch", ["batch"], buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)

T = TypeVar("T")
R = TypeVar("R")

Apply = Callable[[Connection, Sequence[T]], Sequence[R]]


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        db: Database,
        apply: Apply[T, R],
        max_batch: int = 64,
        max_turns: int = 50,
        patience: int = 8,
        *,
        run: Callable[[Callable[[Connection], Sequence[R]]], Awaitable[Sequence[R]]] | None = None,
    ) -> None:
        """``apply(connection, items)`` writes ``items`` in the caller's transaction and returns one
        result per item, in order. ``max_turns`` and ``patience`` bound how long a batch gathers
        (see :meth:`_gather`). ``run`` runs ``apply`` on a connection: by default in one write
        transaction (:meth:`Database.run_sync_transaction`); an ``apply`` whose one write is a
        single statement can run in autocommit (:meth:`Database.run_sync_autocommit`)."""
        self.db = db
        self.apply = apply
        self._run = run if run is not None else db.run_sync_transaction
        self.max_batch = max_batch
        self.max_turns = max_turns
        self.patience = patience
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._since: deque[float] = deque()  # when each waiting item was submitted
        name = getattr(apply, "__qualname__", "") or "batch"
        self._metrics = (WAIT.labels(name), COMMIT.labels(name), ITEMS.labels(name))
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # counters for benchmarks and tests
        self.items = 0

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._since.append(time.perf_counter())
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._waiting:
                await self._gather()
                n = min(self.max_batch, len(self._waiting))
                batch = [self._waiting.popleft() for _ in range(n)]
                oldest = self._since[0]
                for _ in range(n):
                    self._since.popleft()
                self.batches += 1
                self.items += n
                wait, commit, items = self._metrics
                started = time.perf_counter()
                try:
                    await self._commit(batch)
                except Exception as exc:
                    _fail(batch, exc)
                done = time.perf_counter()
                commit.observe(done - started)
                wait.observe(done - oldest)
                items.observe(n)
                batch = []
        except BaseException:  # cancelled (shutdown): nobody may wait forever
            _fail(batch, RuntimeError("writer stopped"))
            _fail(list(self._waiting), RuntimeError("writer stopped"))
            self._waiting.clear()
            self._since.clear()
            raise

    async def _gather(self) -> None:
        """Let requests already under way join the batch: yield to the event loop (no timer) while
        turns keep bringing new items, up to ``max_turns`` in all and ``patience`` idle turns in a
        row. A lone request costs a few turns of the loop (microseconds)."""
        idle = 0
        for _ in range(self.max_turns):
            before = len(self._waiting)
            if before >= self.max_batch or idle >= self.patience:
                return
            await asyncio.sleep(0)
            idle = idle + 1 if len(self._waiting) == before else 0

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self._run(self._bound(items))
        except Exception:
            if len(batch) == 1:
                raise
            log.warning("a batch of %d failed; applying its items one by one", len(batch), exc_info=True)
            for item, future in batch:
                try:
                    (result,) = await self._run(self._bound([item]))
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

    def _bound(self, items: Sequence[T]) -> Callable[[Connection], Sequence[R]]:
        return lambda connection: self.apply(connection, items)


def _fail(batch: Sequence[tuple[object, asyncio.Future[R]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
