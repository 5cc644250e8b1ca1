"""The scheduler's jobs: ``JOBS`` lists (name, interval in seconds, async fn(rt, now) -> count).
Other features append their own jobs to this list."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select

from bot.runtime import Runtime
from bot.services import dashboard_rollup, staff_notices, takeover
from bot.services import tickets as svc
from bot.services.dispatch import rules_for
from bot.services.points_jobs import POINTS_JOBS
from bot.services.scheduler import Job
from bot.storage.models import Ticket

BATCH = 200
REMINDABLE = svc.REMINDABLE


async def remind_assignees(rt: Runtime, now: datetime) -> int:
    """Once per ticket (and per reopening): a reminder when most of the time to the deadline has gone,
    as a staff notice to the assignee (or the department, or the staff role)."""
    rules = rules_for(rt.settings.data_dir)
    async with rt.db.session() as session:
        rows = (await session.execute(
            select(Ticket.id, Ticket.created_at, Ticket.deadline).where(
                Ticket.status.in_(REMINDABLE), Ticket.reminded_at.is_(None), Ticket.deadline.is_not(None),
                Ticket.deadline > now,
            ).limit(BATCH)
        )).all()
    done = 0
    for ticket_id, created, deadline in rows:
        if deadline is None or now < created + (deadline - created) * rules.remind_at_fraction:
            continue
        async with rt.db.transaction() as session:
            if not await svc.claim(session, ticket_id, "reminded_at", Ticket.reminded_at.is_(None), now):
                continue
            ticket = await session.get(Ticket, ticket_id)
            assert ticket is not None
            # To its handler now; a later handler is reminded when the ticket changes hands
            # (``tickets.remind_new_handler``).
            await svc.remind(session, ticket, now)
            done += 1
    return done


async def escalate_overdue(rt: Runtime, now: datetime) -> int:
    """Open tickets past their deadline become ``escalated`` and the supervisors are notified, once."""
    rules = rules_for(rt.settings.data_dir)
    open_not_escalated = tuple(s for s in svc.OPEN_STATUSES if s != "escalated")
    async with rt.db.session() as session:
        ids = (await session.scalars(
            select(Ticket.id).where(Ticket.status.in_(open_not_escalated), Ticket.deadline < now,
                                    Ticket.escalated_at.is_(None)).limit(BATCH)
        )).all()
    done = 0
    for ticket_id in ids:
        async with rt.db.transaction() as session:
            # The conditional UPDATE is the claim: one scheduler (or process) escalates each ticket.
            won = await svc.claim(
                session, ticket_id, "escalated_at",
                and_(Ticket.escalated_at.is_(None), Ticket.status.in_(open_not_escalated), Ticket.deadline < now),
                now,
            )
            if not won:
                continue
            ticket = await svc.load_for_update(session, ticket_id)
            assert ticket is not None
            await svc.transition(session, ticket, "escalate", actor="system", now=now, rules=rules,
                                 note="超过办理期限，上报督办")
            owner = ticket.assignee or ticket.department or "未分派"
            await staff_notices.add(session, ticket, "escalation",
                                    f"工单 {ticket.number} 超过办理期限未办结（{owner}），已上报督办。", now,
                                    role="supervisor")
            done += 1
    return done


async def auto_close(rt: Runtime, now: datetime) -> int:
    """Answered tickets the resident did not rate within the configured time are closed."""
    rules = rules_for(rt.settings.data_dir)
    cutoff = now - timedelta(hours=rules.auto_close_hours)
    async with rt.db.session() as session:
        ids = (await session.scalars(
            select(Ticket.id).where(Ticket.status == "answered", Ticket.answered_at < cutoff).limit(BATCH)
        )).all()
    done = 0
    for ticket_id in ids:
        async with rt.db.transaction() as session:
            won = await svc.claim(session, ticket_id, "closed_at",
                                  and_(Ticket.status == "answered", Ticket.closed_at.is_(None)), now)
            if not won:
                continue
            ticket = await svc.load_for_update(session, ticket_id)
            assert ticket is not None
            await svc.transition(session, ticket, "close", actor="system", now=now, rules=rules,
                                 note="居民未评价，自动办结")
            done += 1
    return done


JOBS: list[Job] = [
    ("tickets.remind", 60.0, remind_assignees),
    ("tickets.escalate", 60.0, escalate_overdue),
    ("tickets.auto_close", 300.0, auto_close),
    *POINTS_JOBS,
    ("takeover.release_idle", 30.0, takeover.release_idle_job),
    ("dashboard.rollup", dashboard_rollup.INTERVAL, dashboard_rollup.rollup_job),
]
