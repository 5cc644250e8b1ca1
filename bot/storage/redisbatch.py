"""Redis commands of concurrent requests sent together: one pipeline, one round trip.

Every message on the production pair makes a few single Redis commands (its rate-limit count,
its conversation state read and, when it changed, written). Through redis-py each command costs
the client about 0.1 ms of CPU (connection checkout, packing, the round trip's wake-ups, parsing)
against microseconds inside Redis. :class:`RedisBatch` works like the database's group commit
(``groupcommit.py``): each caller awaits :meth:`RedisBatch.execute` with its commands, and one
sender task at a time takes every command waiting at that moment and sends them in one
non-transactional pipeline, after yielding to the event loop while that brings more (no timer:
a lone command waits a loop turn or two). Callers get their own commands' results, in order.

The process's users of one client share its batch (:meth:`RedisBatch.shared`): a message's
rate-limit count, made as it arrives, goes out with the conversation states other messages read
or write at that moment, instead of in a pipeline of its own (on the realistic mix about a third
of the pipelines carried only rate-limit counts).

Nothing changes for a caller but the cost: commands are not atomic together (they were not
before either), a command Redis refuses comes back as its exception for that caller alone, and a
connection failure raises in every caller of that pipeline, as it would have in each.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

Command = tuple[str, tuple[Any, ...], dict[str, Any]]  # a pipeline method's name, its arguments


def command(name: str, *args: Any, **kwargs: Any) -> Command:
    return (name, args, kwargs)


class RedisBatch:
    @classmethod
    def shared(cls, redis: Any) -> RedisBatch:
        """The batch of everyone in this process who uses the client ``redis``."""
        batch = _SHARED.get(id(redis))
        if batch is None:
            batch = _SHARED[id(redis)] = cls(redis)
        return batch

    def __init__(self, redis: Any, max_commands: int = 512, max_turns: int = 16, patience: int = 2) -> None:
        self.redis = redis
        self.max_commands = max_commands
        self.max_turns = max_turns
        self.patience = patience
        self._waiting: deque[tuple[Sequence[Command], asyncio.Future[list[Any]]]] = deque()
        self._queued = 0  # commands waiting
        self._sender: asyncio.Task[None] | None = None
        self.pipelines = 0  # counters for benchmarks and tests
        self.commands = 0

    async def execute(self, *commands: Command) -> list[Any]:
        """The commands' results, in order; a command Redis refused gives its exception as its
        result. Raises what the pipeline raised (Redis unreachable)."""
        if not commands:
            return []
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((commands, future))
        self._queued += len(commands)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return await future

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """One command's result; raises the error Redis gave for it."""
        (result,) = await self.execute(command(name, *args, **kwargs))
        if isinstance(result, Exception):
            raise result
        return result

    async def _send(self) -> None:
        batch: list[tuple[Sequence[Command], asyncio.Future[list[Any]]]] = []
        try:
            while self._waiting:
                await self._gather()
                batch, size = [], 0
                while self._waiting and (not batch or size + len(self._waiting[0][0]) <= self.max_commands):
                    item = self._waiting.popleft()
                    batch.append(item)
                    size += len(item[0])
                self._queued -= size
                self.pipelines += 1
                self.commands += size
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for commands, _ in batch:
                            for name, args, kwargs in commands:
                                getattr(pipe, name)(*args, **kwargs)
                        results = await pipe.execute(raise_on_error=False)
                except Exception as exc:
                    _fail(batch, exc)
                else:
                    start = 0
                    for commands, future in batch:
                        if not future.done():
                            future.set_result(list(results[start : start + len(commands)]))
                        start += len(commands)
                batch = []
        except BaseException:  # cancelled (shutdown): nobody may wait forever
            stopped = RuntimeError("Redis batch stopped")
            _fail(batch, stopped)
            _fail(list(self._waiting), stopped)
            self._waiting.clear()
            self._queued = 0
            raise

    async def _gather(self) -> None:
        """Let requests already under way add their commands: yield to the event loop while turns
        bring more, up to ``max_turns`` turns and ``patience`` idle turns in a row."""
        idle = 0
        for _ in range(self.max_turns):
            before = self._queued
            if before >= self.max_commands or idle >= self.patience:
                return
            await asyncio.sleep(0)
            idle = idle + 1 if self._queued == before else 0


# By the client's id: a batch holds its client, so the id is not reused while the batch lives,
# and the batch lives as long as its users hold it.
_SHARED: weakref.WeakValueDictionary[int, RedisBatch] = weakref.WeakValueDictionary()


def _fail(batch: Sequence[tuple[object, asyncio.Future[list[Any]]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
