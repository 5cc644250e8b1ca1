"""Staff notices (ticket reminders and escalations) for the caller: their role's and the ones
addressed to their name; newest first, optionally only unread; marking one read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.api.auth import ADMIN, STAFF_ROLES
from bot.api.errors import not_found
from bot.api.paging import CURSOR, LIMIT, decode_cursor, encode_cursor, page_of
from bot.api.registry import BIG_ID, Call, component, obj, route
from bot.services import staff_notices
from bot.storage.models import StaffNotification, Ticket

NSTR: dict[str, Any] = {"type": ["string", "null"]}
NOTICE_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "role": {**NSTR, "description": "addressed to every caller with this role"},
    "assignee": {**NSTR, "description": "addressed to the API token with this name"},
    "ticket_id": {"type": "integer"},
    "ticket_number": {"type": "string"},
    "kind": {"type": "string", "enum": list(staff_notices.KINDS)},
    "text": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "read_at": {"type": ["string", "null"], "format": "date-time"},
}
NOTICE = component(
    "StaffNotification", {"type": "object", "required": list(NOTICE_FIELDS), "properties": NOTICE_FIELDS}
)
NOTICE_PAGE = component("StaffNotificationPage", page_of(NOTICE))


def notice_json(n: StaffNotification, number: str) -> dict[str, Any]:
    data = {name: getattr(n, name) for name in NOTICE_FIELDS if name != "ticket_number"}
    data["ticket_number"] = number
    return data


def _visible(call: Call) -> Any:
    p = call.principal
    assert p is not None
    visible = staff_notices.visible_to(p.role, p.handler, p.role == ADMIN)
    if p.department:  # a department's notices (a reminder before anyone accepted), as in the console
        visible = visible | (StaffNotification.assignee == p.department)
    return visible


@route(
    "GET", "/notifications", roles=STAFF_ROLES, summary="My notifications",
    description=(
        "Ticket reminders and escalations for the caller: those addressed to the caller's role and "
        "those addressed to the token's name (an admin sees all), newest first."
    ),
    tags=("notifications",),
    query=obj({
        "unread": {"type": "boolean", "description": "only unread (true) or only read (false) notices"},
        "kind": {"type": "string", "enum": list(staff_notices.KINDS)},
        "limit": LIMIT,
        "cursor": CURSOR,
    }),
    response=NOTICE_PAGE,
)
async def list_notifications(call: Call) -> dict[str, Any]:
    q = call.query
    stmt = (
        select(StaffNotification, Ticket.number)
        .join(Ticket, Ticket.id == StaffNotification.ticket_id)
        .where(_visible(call))
        .order_by(StaffNotification.id.desc())
        .limit(q["limit"] + 1)
    )
    if "unread" in q:
        stmt = stmt.where(StaffNotification.read_at.is_(None) if q["unread"] else StaffNotification.read_at.is_not(None))
    if "kind" in q:
        stmt = stmt.where(StaffNotification.kind == q["kind"])
    if "cursor" in q:
        (before,) = decode_cursor(q["cursor"], "notifications", [int])
        stmt = stmt.where(StaffNotification.id < before)
    async with call.db.session() as session:
        rows = [(row[0], row[1]) for row in await session.execute(stmt)]
    more = len(rows) > q["limit"]
    rows = rows[: q["limit"]]
    cursor = encode_cursor("notifications", [rows[-1][0].id]) if more else None
    return {"items": [notice_json(n, number) for n, number in rows], "next_cursor": cursor}


@route(
    "POST", "/notifications/{id}/read", roles=STAFF_ROLES, summary="Mark a notification read",
    description="Marks one of the caller's notifications read (again: no change); 404 if it is not theirs.",
    tags=("notifications",),
    path_params={"id": BIG_ID},
    response=NOTICE,
)
async def read_notification(call: Call) -> dict[str, Any]:
    async with call.db.transaction() as session:
        notice = await staff_notices.mark_read(session, call.path["id"], _visible(call), call.now())
        if notice is None:
            raise not_found(f"no notification with id {call.path['id']}")
        number = await session.scalar(select(Ticket.number).where(Ticket.id == notice.ticket_id))
        return notice_json(notice, number or "")
