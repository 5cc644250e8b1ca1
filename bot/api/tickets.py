"""Tickets for staff: list with filters, detail with the timeline, transitions, comments, assignment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from bot.api.auth import Principal
from bot.api.errors import ApiError, conflict, forbidden, not_found
from bot.api.paging import CURSOR, LIMIT, decode_cursor, encode_cursor, page_of
from bot.api.registry import ID, Call, component, obj, route
from bot.services import tickets as svc
from bot.services.dispatch import rules_for
from bot.storage.models import Ticket, TicketEvent

TICKET_ROLES = frozenset({"staff", "supervisor"})
# The console's role model (docs/console.md): tickets are staff's; operators read conversations and
# the dashboard's ticket figures, not tickets (a resident's report, phone and address).
NOT_FOR_OPERATORS = ("tickets are handled by staff and supervisors, as in the console; operators do not "
                     "read them (ticket figures: GET /api/v1/dashboard/tickets)")
SUPERVISOR_ACTIONS = frozenset({"reject", "close", "reopen", "escalate"})

STR = {"type": "string"}
NSTR: dict[str, Any] = {"type": ["string", "null"]}
NTIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
TICKET_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "number": {**STR, "description": "human-friendly number, e.g. GD20261122-0042"},
    "resident_id": {"type": ["integer", "null"]},
    "channel": STR,
    "text": STR,
    "attachments": {"type": "array", "items": {"type": "object"}},
    "location": {"type": ["object", "null"]},
    "community": NSTR,
    "building": NSTR,
    "unit": NSTR,
    "room": NSTR,
    "grid": NSTR,
    "category": NSTR,
    "category_confidence": {"type": ["number", "null"]},
    "department": NSTR,
    "assignee": NSTR,
    "urgency": {"type": "string", "enum": ["normal", "urgent"]},
    "status": {"type": "string", "enum": list(svc.STATUSES)},
    "deadline": NTIME,
    "overdue": {"type": "boolean"},
    "contact_phone": NSTR,
    "resolution": NSTR,
    "resolution_photos": {"type": "array", "items": STR},
    "reject_reason": NSTR,
    "rating": {"type": ["string", "null"], "enum": ["satisfied", "basic", "unsatisfied", None]},
    "rating_comment": NSTR,
    "duplicate_of_id": {"type": ["integer", "null"], "description": "possible duplicate of (linked, not merged)"},
    "duplicate_score": {"type": ["number", "null"]},
    "reopen_count": {"type": "integer"},
    "answered_at": NTIME,
    "closed_at": NTIME,
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
}
EVENT_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "at": {"type": "string", "format": "date-time"},
    "actor": STR,
    "action": STR,
    "from_status": NSTR,
    "to_status": NSTR,
    "note": {**NSTR, "description": ("the entry's text: an answer's resolution, a rejection's reason (what the "
                                     "resident was told), else the note; a note sent with answer or reject is "
                                     "`data.note`")},
    "public": {"type": "boolean", "description": "shown to the resident (false: staff note)"},
    "data": {"type": "object"},
}
TICKET = component("Ticket", {"type": "object", "required": list(TICKET_FIELDS), "properties": TICKET_FIELDS})
EVENT = component("TicketEvent", {"type": "object", "required": list(EVENT_FIELDS), "properties": EVENT_FIELDS})
TICKET_DETAIL = component(
    "TicketDetail",
    {
        "allOf": [
            TICKET,
            {
                "type": "object",
                "required": ["timeline", "duplicates"],
                "properties": {
                    "timeline": {"type": "array", "items": EVENT},
                    "duplicates": {"type": "array", "items": {"type": "object"},
                                   "description": "tickets linked as possible duplicates of this one"},
                },
            },
        ]
    },
)
TICKET_PAGE = component("TicketPage", page_of(TICKET))
SHORT = {"type": "string", "minLength": 1, "maxLength": 100}
DEPARTMENT = {"type": "string", "minLength": 1, "maxLength": 64}  # the column's width
NOTE = {"type": "string", "minLength": 1, "maxLength": 4000}


# ------------------------------------------------------------------------------ a staff token's scope
# As in the console (bot/web/console/tickets.py): staff see their department's tickets and those
# assigned to them, and send a ticket to another department only as supervisors do.
SCOPE_HELP = ("a staff token sees its department's tickets and those assigned to it, as staff do in the "
              "console; supervisors see all (tokens: python -m bot token create --role staff --department D, "
              "or --user NAME)")


def _scope_of(p: Principal | None) -> str:
    if p is None or not p.department:
        return f"no department: only the tickets assigned to {p.handler!r}" if p else "no department"
    return f"department {p.department!r}"


def scoped(p: Principal | None) -> bool:
    return p is not None and not p.sees_all_tickets


def scope_condition(p: Principal) -> Any:
    conditions = [Ticket.assignee == p.handler]
    if p.department:
        conditions.append(Ticket.department == p.department)
    return or_(*conditions)


def check_scope(call: Call, ticket: Ticket) -> None:
    """A 403 naming the reason when the caller's scope does not hold the ticket."""
    p = call.principal
    if not scoped(p):
        return
    assert p is not None
    if ticket.assignee == p.handler or (p.department and ticket.department == p.department):
        return
    raise forbidden(
        f"ticket {ticket.id} belongs to {'department ' + repr(ticket.department) if ticket.department else 'no department'}"
        f" and is not assigned to {p.handler!r}; this token's scope is {_scope_of(p)}: {SCOPE_HELP}",
        "out_of_scope",
        details={"ticket_department": ticket.department, "token_department": p.department},
    )


def check_department_change(call: Call, ticket: Ticket, department: str | None) -> None:
    """Staff do not send a ticket to another department (supervisors do), as in the console."""
    p = call.principal
    if not scoped(p) or not department or department == ticket.department:
        return
    assert p is not None
    if department != p.department:
        raise forbidden(
            f"only a supervisor may send a ticket to another department ({department!r}); "
            f"this token's scope is {_scope_of(p)}", "out_of_scope",
            details={"department": department, "token_department": p.department},
        )


def ticket_json(t: Ticket, now: Any) -> dict[str, Any]:
    data = {name: getattr(t, name) for name in TICKET_FIELDS if name != "overdue"}
    data["attachments"] = list(t.attachments or [])
    data["resolution_photos"] = list(t.resolution_photos or [])
    data["overdue"] = bool(t.deadline and t.deadline < now and t.status in svc.OPEN_STATUSES)
    return data


def event_json(e: TicketEvent) -> dict[str, Any]:
    return {name: getattr(e, name) for name in EVENT_FIELDS} | {"data": dict(e.data or {})}


def actor_of(call: Call) -> str:
    p = call.principal
    return f"{p.kind}:{p.name}" if p else "system"


@route(
    "GET", "/tickets", roles=TICKET_ROLES, refused=NOT_FOR_OPERATORS, summary="List tickets",
    description=("Tickets newest first, with filters; `triage=true` is the queue of unrouted tickets. A staff "
                 "token sees its department's tickets and those assigned to it (a `department` filter naming "
                 "another is a 403 `out_of_scope`); supervisors all."),
    tags=("tickets",),
    query=obj({
        "status": {"type": "string", "enum": list(svc.STATUSES)},
        "category": SHORT, "department": SHORT, "assignee": SHORT,
        "urgency": {"type": "string", "enum": ["normal", "urgent"]},
        "overdue": {"type": "boolean", "description": "open tickets past their deadline"},
        "triage": {"type": "boolean", "description": "submitted tickets without a department"},
        "resident_id": ID,
        "q": {**SHORT, "description": "text or number contains"},
        "limit": LIMIT, "cursor": CURSOR,
    }),
    response=TICKET_PAGE,
)
async def list_tickets(call: Call) -> dict[str, Any]:
    q, now = call.query, call.now()
    stmt = select(Ticket).order_by(Ticket.id.desc()).limit(q["limit"] + 1)
    p = call.principal
    if scoped(p):
        assert p is not None
        if "department" in q and q["department"] != p.department:
            raise forbidden(f"this token may not list department {q['department']!r}'s tickets: its scope is "
                            f"{_scope_of(p)}; {SCOPE_HELP}", "out_of_scope",
                            details={"department": q["department"], "token_department": p.department})
        stmt = stmt.where(scope_condition(p))
    for name in ("status", "category", "department", "assignee", "urgency", "resident_id"):
        if name in q:
            stmt = stmt.where(getattr(Ticket, name) == q[name])
    if q.get("overdue") is True:
        stmt = stmt.where(Ticket.deadline < now, Ticket.status.in_(svc.OPEN_STATUSES))
    if q.get("triage") is True:
        stmt = stmt.where(Ticket.status == "submitted", Ticket.department.is_(None), Ticket.assignee.is_(None))
    if "q" in q:
        stmt = stmt.where(or_(Ticket.text.contains(q["q"], autoescape=True),
                              Ticket.number.contains(q["q"], autoescape=True)))
    if "cursor" in q:
        (before,) = decode_cursor(q["cursor"], "tickets", [int], max_int=ID["maximum"])
        stmt = stmt.where(Ticket.id < before)
    async with call.db.session() as session:
        rows = list((await session.scalars(stmt)).all())
    more = len(rows) > q["limit"]
    rows = rows[: q["limit"]]
    return {"items": [ticket_json(t, now) for t in rows],
            "next_cursor": encode_cursor("tickets", [rows[-1].id]) if more else None}


async def _detail(call: Call, ticket_id: int) -> dict[str, Any]:
    async with call.db.session() as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise not_found(f"no ticket with id {ticket_id}")
        check_scope(call, ticket)
        events = (await session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id))).all()
        dups = (await session.scalars(
            select(Ticket).where(Ticket.duplicate_of_id == ticket_id).order_by(Ticket.id))).all()
    data = ticket_json(ticket, call.now())
    data["timeline"] = [event_json(e) for e in events]
    data["duplicates"] = [{"id": d.id, "number": d.number, "score": d.duplicate_score} for d in dups]
    return data


@route("GET", "/tickets/{id}", roles=TICKET_ROLES, refused=NOT_FOR_OPERATORS,
       summary="One ticket with its timeline", tags=("tickets",), path_params={"id": ID}, response=TICKET_DETAIL)
async def get_ticket(call: Call) -> dict[str, Any]:
    """The ticket, every timeline event (public and private) and tickets linked to it as duplicates."""
    return await _detail(call, call.path["id"])


def _refused(exc: svc.TicketError) -> ApiError:
    if exc.code == "illegal_transition":
        return conflict(exc.message, exc.code)
    return ApiError(400, exc.code, exc.message)


@route(
    "POST", "/tickets/{id}/transitions", roles=TICKET_ROLES, refused=NOT_FOR_OPERATORS,
    summary="Change a ticket's status",
    description=(
        "Actions: dispatch (department/assignee), accept, start, answer (resolution, photos), "
        "reject (reason), reopen, escalate, close. accept makes the caller (the token's name) the "
        "ticket's assignee, to whom the deadline's reminder goes. reject, close, reopen and escalate need "
        "the supervisor role. An action the current status does not allow is a 409 naming the allowed ones. "
        "The resident is notified of every change. A staff token may act on its department's tickets and "
        "those assigned to it (others: a 403 `out_of_scope` naming both departments) and dispatch within "
        "its department only."
    ),
    tags=("tickets",), path_params={"id": ID},
    body=obj({
        "action": {"type": "string", "enum": list(svc.TRANSITIONS)},
        "note": NOTE, "reason": NOTE, "resolution": NOTE,
        "photos": {"type": "array", "maxItems": 9, "items": {"type": "string", "maxLength": 500}},
        "department": DEPARTMENT, "assignee": SHORT,
    }, required=["action"]),
    response=TICKET_DETAIL,
)
async def transition_ticket(call: Call) -> dict[str, Any]:
    body, now = call.body, call.now()
    if body["action"] in SUPERVISOR_ACTIONS and call.principal and not call.principal.may({"supervisor"}):
        raise forbidden(f"{body['action']} needs the supervisor role")
    rules = rules_for(call.rt.settings.data_dir)
    # Accepting, the caller becomes the assignee (the handler); dispatching, the one named.
    acceptor = call.principal.handler if call.principal else None
    assignee = acceptor if body["action"] == "accept" else body.get("assignee")
    async with call.db.transaction() as session:
        ticket = await svc.load_for_update(session, call.path["id"])
        if ticket is None:
            raise not_found(f"no ticket with id {call.path['id']}")
        check_scope(call, ticket)
        check_department_change(call, ticket, body.get("department"))
        try:
            await svc.transition(
                session, ticket, body["action"], actor=actor_of(call), now=now, rules=rules,
                note=body.get("note"), reason=body.get("reason"), resolution=body.get("resolution"),
                photos=body.get("photos", []), department=body.get("department"), assignee=assignee,
            )
        except svc.TicketError as exc:
            raise _refused(exc) from None
    return await _detail(call, call.path["id"])


@route(
    "POST", "/tickets/{id}/comments", roles=TICKET_ROLES, refused=NOT_FOR_OPERATORS, summary="Comment on a ticket",
    description=(
        "A public comment is pushed to the resident; a private one is a staff note. A resident who "
        "unfollowed the account is sent nothing (WeChat would refuse it): the comment is recorded, its "
        "event's data says `undelivered: unsubscribed` (so does any public change's, `answer` too)."
    ),
    tags=("tickets",), path_params={"id": ID},
    body=obj({"text": NOTE, "public": {"type": "boolean", "default": False}}, required=["text"]),
    response=EVENT, status=201,
)
async def comment_ticket(call: Call) -> dict[str, Any]:
    async with call.db.transaction() as session:
        ticket = await svc.load_for_update(session, call.path["id"])
        if ticket is None:
            raise not_found(f"no ticket with id {call.path['id']}")
        check_scope(call, ticket)
        event = await svc.comment(session, ticket, actor=actor_of(call), text=call.body["text"],
                                  public=bool(call.body.get("public", False)), now=call.now())
        return event_json(event)


@route(
    "POST", "/tickets/{id}/assignment", roles=TICKET_ROLES, refused=NOT_FOR_OPERATORS, summary="Assign a ticket",
    description="Set the department and/or the assignee without changing the status.",
    tags=("tickets",), path_params={"id": ID},
    body=obj({"department": DEPARTMENT, "assignee": SHORT}),
    response=TICKET_DETAIL,
)
async def assign_ticket(call: Call) -> dict[str, Any]:
    async with call.db.transaction() as session:
        ticket = await svc.load_for_update(session, call.path["id"])
        if ticket is None:
            raise not_found(f"no ticket with id {call.path['id']}")
        check_scope(call, ticket)
        check_department_change(call, ticket, call.body.get("department"))
        try:
            await svc.assign(session, ticket, actor=actor_of(call), now=call.now(),
                             department=call.body.get("department"), assignee=call.body.get("assignee"))
        except svc.TicketError as exc:
            raise _refused(exc) from None
    return await _detail(call, call.path["id"])
