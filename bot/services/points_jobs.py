"""The points features' periodic jobs (listed in :data:`bot.services.jobs.JOBS`)."""

from __future__ import annotations

from datetime import datetime

from bot.runtime import Runtime
from bot.services import coupons, courses
from bot.services.scheduler import Job


async def course_reminders(rt: Runtime, now: datetime) -> int:
    """Remind residents of their bookings the day before (once per booking)."""
    return await courses.send_reminders(rt.db, now)


async def expire_coupons(rt: Runtime, now: datetime) -> int:
    """Mark unused coupons past their end expired (refunded only when the rules say so)."""
    return len(await coupons.expire(rt.db, now))


async def waitlist_housekeeping(rt: Runtime, now: datetime) -> int:
    """Promote waitlists where places are free; close the waitlists of sessions that started."""
    return await courses.housekeep_waitlists(rt.db, now)


POINTS_JOBS: list[Job] = [
    ("courses.remind", 600.0, course_reminders),
    ("coupons.expire", 1800.0, expire_coupons),
    ("courses.waitlists", 600.0, waitlist_housekeeping),
]
