"""Periodic jobs, safe with several server processes.

Each job has a row in ``scheduler_leases`` holding its next run time. A process runs a job only
after moving that time forward with a conditional UPDATE (``WHERE next_run_at <= now``), so among
any number of schedulers one runs each due job per interval. The jobs themselves also change each
ticket with a conditional UPDATE, so even a job run twice acts once per ticket.

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

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.runtime import Runtime
from bot.storage.models import SchedulerLease

log = logging.getLogger(__name__)

JobFn = Callable[[Runtime, datetime], Awaitable[int]]
Job = tuple[str, float, JobFn]  # name, interval in seconds, async fn(rt, now) -> number of things done


class Scheduler:
    def __init__(self, rt: Runtime, jobs: Sequence[Job], *, poll: float = 5.0) -> None:
        self.rt = rt
        self.jobs = list(jobs)
        self.poll = poll
        self.holder = secrets.token_hex(8)

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
        for name, interval, fn in self.jobs:
            now = self.rt.clock.now()
            if not await self._take(name, interval, now):
                continue
            try:
                done[name] = await fn(self.rt, now)
            except Exception:
                log.exception("job %s failed", name)
        return done

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll)
