"""Periodic jobs run by the scheduler: (name, interval, ``async fn(rt, now) -> int`` work done)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.services import coupons, courses

if TYPE_CHECKING:
    from bot.runtime import Runtime

Job = Callable[["Runtime", datetime], Awaitable[int]]


async def course_reminders(rt: Runtime, now: datetime) -> int:
    """Remind residents of their bookings the day before."""
    return await courses.send_reminders(rt.db, now)


async def expire_coupons(rt: Runtime, now: datetime) -> int:
    """Mark unused coupons past their end expired (refunded only when the rules say so)."""
    return len(await coupons.expire(rt.db, now))


async def waitlist_housekeeping(rt: Runtime, now: datetime) -> int:
    """Promote waitlists where places are free; close the waitlists of sessions that started."""
    return await courses.housekeep_waitlists(rt.db, now)


JOBS: list[tuple[str, timedelta, Job]] = [
    ("course_reminders", timedelta(minutes=10), course_reminders),
    ("expire_coupons", timedelta(minutes=30), expire_coupons),
    ("waitlist_housekeeping", timedelta(minutes=10), waitlist_housekeeping),
]
