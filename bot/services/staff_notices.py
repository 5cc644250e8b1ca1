"""Notices to staff about tickets (reminders before the deadline, escalations to the supervisors):
written in the caller's transaction, read and marked read through the JSON API.

A notice is addressed to a role (every caller with that role sees it) or to a name (the API
token's name: an assignee, a grid worker or a department). Marking it read marks it for everyone
it is addressed to: it is a shared queue, like the triage queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import StaffNotification, Ticket

KINDS = ("reminder", "escalation")


async def add(
    session: AsyncSession,
    ticket: Ticket,
    kind: str,
    text: str,
    now: datetime,
    *,
    role: str | None = None,
    assignee: str | None = None,
) -> StaffNotification:
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    if not role and not assignee:
        raise ValueError("a notice needs a role or an assignee")
    notice = StaffNotification(
        role=role, assignee=(assignee or None) and assignee[:100], ticket_id=ticket.id, kind=kind,
        text=text, created_at=now,
    )
    session.add(notice)
    await session.flush()
    return notice


def visible_to(role: str, name: str, admin: bool) -> Any:
    """The condition selecting the notices a caller sees (an admin sees all)."""
    if admin:
        return StaffNotification.id.is_not(None)
    return or_(StaffNotification.role == role, StaffNotification.assignee == name)


async def mark_read(session: AsyncSession, notice_id: int, condition: Any, now: datetime) -> StaffNotification | None:
    """Mark a visible notice read (the first reading time stays); ``None`` if not visible."""
    notice = await session.scalar(select(StaffNotification).where(StaffNotification.id == notice_id, condition))
    if notice is None:
        return None
    await session.execute(
        update(StaffNotification)
        .where(StaffNotification.id == notice_id, StaffNotification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(notice)
    return notice
