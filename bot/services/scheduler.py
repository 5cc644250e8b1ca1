"""Periodic jobs, safe with several server processes.

Each job has a row in ``scheduler_leases`` holding its next run time. A process runs a job only
after moving that time forward with a conditional UPDATE (``WHERE next_run_at <= now``), so among
any number of schedulers one runs each due job per interval. The jobs themselves also change each
ticket with a conditional UPDATE, so even a job run twice acts once per ticket.

Idle, it costs one read: each tick reads every lease's next run time in one query (no write
transaction, so no write lock that the hot path's commits would wait for) and tries to take only
the jobs that are due; between ticks it sleeps until the earliest next run time it knows of, at
most ``poll`` seconds. Leases only move forward, so a time read here is never later than the real
one: a job is never missed, only looked at again.

The scheduler is given its jobs (the application passes :data:`bot.services.jobs.JOBS`); it knows
no job itself. Time comes from ``rt.clock``: tests drive it with a ManualClock and call :meth:`Scheduler.tick`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from bot.runtime import Runtime
from bot.storage.models import SchedulerLease

log = logging.getLogger(__name__)

JobFn = Callable[[Runtime, datetime], Awaitable[int]]
Job = tuple[str, float, JobFn]  # name, interval in seconds, async fn(rt, now) -> number of things done

MIN_WAIT = 0.5  # seconds between ticks at least (a due job another process holds is read again)
_LEASES = select(SchedulerLease.name, SchedulerLease.next_run_at)


def _leases(connection: Connection) -> dict[str, datetime]:
    return {name: at for name, at in connection.execute(_LEASES)}


class Scheduler:
    def __init__(self, rt: Runtime, jobs: Sequence[Job], *, poll: float = 5.0) -> None:
        self.rt = rt
        self.jobs = list(jobs)
        self.poll = poll
        self.holder = secrets.token_hex(8)
        self.next_run: datetime | None = None  # the earliest next run time seen by the last tick

    async def _take(self, name: str, interval: float, now: datetime) -> bool:
        """Claim this run of ``name``: exactly one scheduler wins per due time."""
        nxt = now + timedelta(seconds=interval)
        async with self.rt.db.transaction() as session:
            exists = await session.scalar(select(SchedulerLease.name).where(SchedulerLease.name == name))
            if exists is None:
                try:
                    async with session.begin_nested():
                        session.add(SchedulerLease(name=name, holder=self.holder, next_run_at=nxt, last_run_at=now))
                    return True
                except IntegrityError:  # another process inserted it first: it runs this time
                    return False
            result = await session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == name, SchedulerLease.next_run_at <= now)
                .values(holder=self.holder, next_run_at=nxt, last_run_at=now)
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    async def tick(self) -> dict[str, int]:
        """Run every due job once; returns what each job that ran did."""
        done: dict[str, int] = {}
        leases = await self.rt.db.run_sync_read(_leases)
        upcoming: list[datetime] = []
        for name, interval, fn in self.jobs:
            now = self.rt.clock.now()
            due = leases.get(name)
            if due is not None and due > now:  # not due here, nor anywhere: leases only move forward
                upcoming.append(due)
                continue
            if not await self._take(name, interval, now):
                continue
            upcoming.append(now + timedelta(seconds=interval))
            try:
                done[name] = await fn(self.rt, now)
            except Exception:
                log.exception("job %s failed", name)
        self.next_run = min(upcoming, default=None)
        return done

    def _wait(self) -> float:
        """Seconds until the next tick: until the earliest next run time known, at most ``poll``."""
        if self.next_run is None:
            return self.poll
        until = (self.next_run - self.rt.clock.now()).total_seconds()
        return min(self.poll, max(MIN_WAIT, until))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # the database away for a moment: try again at the next poll
                self.next_run = None
                log.exception("scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._wait())
