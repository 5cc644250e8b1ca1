"""Courses and activities for staff: the catalogue, sessions, bookings, cancelling for a resident."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.api.coupons import NULLABLE_STR, NULLABLE_TIME, TIME, items_of, parse_time, row_json
from bot.api.errors import bad_request, conflict, not_found
from bot.api.registry import BIG_ID, ID, Call, component, obj, route
from bot.services import courses
from bot.storage.models import Activity, ActivitySession, Booking

COURSE_ROLES = frozenset({"supervisor", "staff"})
READ_ROLES = frozenset({"supervisor", "staff", "operator"})
TEXT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 100}

ACTIVITY_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "title": {"type": "string"},
    "description": NULLABLE_STR,
    "kind": {"type": "string", "enum": ["course", "activity", "volunteer"]},
    "category": {"type": "string"},
    "organiser": NULLABLE_STR,
    "place": NULLABLE_STR,
    "audience": {**NULLABLE_STR, "description": "e.g. 60岁以上"},
    "points_cost": {"type": "integer", "minimum": 0},
    "reward_points": {
        "type": ["integer", "null"],
        "description": "check-in points; null: the rule's default",
    },
    "volunteer_hours": {"type": "number"},
    "active": {"type": "boolean"},
    "created_at": TIME,
}
ACTIVITY = component(
    "Activity", {"type": "object", "required": list(ACTIVITY_FIELDS), "properties": ACTIVITY_FIELDS}
)
SESSION_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "activity_id": {"type": "integer"},
    "starts_at": TIME,
    "ends_at": TIME,
    "capacity": {"type": "integer"},
    "booked": {"type": "integer"},
    "booking_opens_at": NULLABLE_TIME,
    "booking_closes_at": NULLABLE_TIME,
    "created_at": TIME,
}
SESSION = component(
    "ActivitySession", {"type": "object", "required": list(SESSION_FIELDS), "properties": SESSION_FIELDS}
)
BOOKING_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "session_id": {"type": "integer"},
    "resident_id": {"type": "integer"},
    "status": {"type": "string", "enum": ["booked", "waitlisted", "cancelled", "attended"]},
    "points_paid": {"type": "integer"},
    "queued_at": TIME,
    "booked_at": NULLABLE_TIME,
    "cancelled_at": NULLABLE_TIME,
    "reminded_at": NULLABLE_TIME,
}
BOOKING = component(
    "Booking", {"type": "object", "required": list(BOOKING_FIELDS), "properties": BOOKING_FIELDS}
)
ACTIVITY_LIST = component("ActivityList", items_of(ACTIVITY))
SESSION_LIST = component("ActivitySessionList", items_of(SESSION))
BOOKING_LIST = component("BookingList", items_of(BOOKING))

ACTIVITY_BODY: dict[str, Any] = {
    "title": TEXT,
    "description": {"type": "string", "maxLength": 2000},
    "kind": {"type": "string", "enum": ["course", "activity", "volunteer"]},
    "category": {"type": "string", "minLength": 1, "maxLength": 32},
    "organiser": {"type": "string", "maxLength": 100},
    "place": {"type": "string", "maxLength": 200},
    "audience": {"type": "string", "maxLength": 64},
    "points_cost": {"type": "integer", "minimum": 0, "maximum": 100000},
    "reward_points": {"type": "integer", "minimum": 0, "maximum": 100000},
    "volunteer_hours": {"type": "number", "minimum": 0, "maximum": 24},
    "active": {"type": "boolean"},
}
SESSION_BODY: dict[str, Any] = {
    "starts_at": TIME,
    "ends_at": TIME,
    "capacity": {"type": "integer", "minimum": 0, "maximum": 100000},
    "booking_opens_at": TIME,
    "booking_closes_at": TIME,
}


@route(
    "GET",
    "/activities",
    roles=READ_ROLES,
    summary="List courses and activities",
    tags=("courses",),
    query=obj({"category": {"type": "string", "minLength": 1, "maxLength": 32}}),
    response=ACTIVITY_LIST,
    description="The catalogue by id, optionally of one category.",
)
async def list_activities(call: Call) -> dict[str, Any]:
    stmt = select(Activity).order_by(Activity.id).limit(500)
    if "category" in call.query:
        stmt = stmt.where(Activity.category == call.query["category"])
    async with call.db.session() as session:
        rows = (await session.scalars(stmt)).all()
    return {"items": [row_json(a, ACTIVITY_FIELDS) for a in rows]}


@route(
    "POST",
    "/activities",
    roles=COURSE_ROLES,
    summary="Add a course or activity",
    tags=("courses",),
    body=obj(ACTIVITY_BODY, required=["title", "category"]),
    response=ACTIVITY,
    status=201,
    description="Its QR check-in scene key is activity:<id>.",
)
async def create_activity(call: Call) -> dict[str, Any]:
    async with call.db.transaction() as session:
        activity = Activity(created_at=call.now(), **call.body)
        session.add(activity)
        await session.flush()
        return row_json(activity, ACTIVITY_FIELDS)


@route(
    "PATCH",
    "/activities/{id}",
    roles=COURSE_ROLES,
    summary="Change a course or activity",
    tags=("courses",),
    path_params={"id": ID},
    body=obj(ACTIVITY_BODY),
    response=ACTIVITY,
    description="Fields given are changed.",
)
async def update_activity(call: Call) -> dict[str, Any]:
    async with call.db.transaction() as session:
        activity = await session.get(Activity, call.path["id"])
        if activity is None:
            raise not_found("no such activity")
        for key, value in call.body.items():
            setattr(activity, key, value)
        await session.flush()
        return row_json(activity, ACTIVITY_FIELDS)


def _session_values(body: dict[str, Any]) -> dict[str, Any]:
    values = dict(body)
    for name in ("starts_at", "ends_at", "booking_opens_at", "booking_closes_at"):
        if name in values:
            values[name] = parse_time(name, values[name])
    return values


def _check_session(s: ActivitySession) -> None:
    if s.ends_at <= s.starts_at:
        raise bad_request("ends_at must be after starts_at", "invalid_body")
    if s.booking_opens_at and s.booking_closes_at and s.booking_closes_at <= s.booking_opens_at:
        raise bad_request("booking_closes_at must be after booking_opens_at", "invalid_body")


@route(
    "GET",
    "/activities/{id}/sessions",
    roles=READ_ROLES,
    summary="Sessions of a course or activity",
    tags=("courses",),
    path_params={"id": ID},
    response=SESSION_LIST,
    description="Its dated sessions, soonest first.",
)
async def list_sessions(call: Call) -> dict[str, Any]:
    async with call.db.session() as session:
        rows = (
            await session.scalars(
                select(ActivitySession)
                .where(ActivitySession.activity_id == call.path["id"])
                .order_by(ActivitySession.starts_at)
                .limit(500)
            )
        ).all()
    return {"items": [row_json(s, SESSION_FIELDS) for s in rows]}


@route(
    "POST",
    "/activities/{id}/sessions",
    roles=COURSE_ROLES,
    summary="Add a session",
    tags=("courses",),
    path_params={"id": ID},
    body=obj(SESSION_BODY, required=["starts_at", "ends_at", "capacity"]),
    response=SESSION,
    status=201,
    description="A dated session with its capacity and booking window (default: until it starts).",
)
async def create_session(call: Call) -> dict[str, Any]:
    async with call.db.transaction() as session:
        if await session.get(Activity, call.path["id"]) is None:
            raise not_found("no such activity")
        sess = ActivitySession(
            activity_id=call.path["id"], booked=0, created_at=call.now(), **_session_values(call.body)
        )
        _check_session(sess)
        session.add(sess)
        await session.flush()
        return row_json(sess, SESSION_FIELDS)


@route(
    "PATCH",
    "/sessions/{id}",
    roles=COURSE_ROLES,
    summary="Change a session",
    tags=("courses",),
    path_params={"id": ID},
    body=obj(SESSION_BODY),
    response=SESSION,
    description="Fields given are changed. Capacity cannot go below the places booked (409); a raised "
    "capacity is offered to the waitlist at once.",
)
async def update_session(call: Call) -> dict[str, Any]:
    try:
        async with call.db.transaction() as session:
            sess = await session.get(ActivitySession, call.path["id"])
            if sess is None:
                raise not_found("no such session")
            for key, value in _session_values(call.body).items():
                setattr(sess, key, value)
            _check_session(sess)
            await session.flush()
            await courses.promote(session, sess.id, call.now())
            await session.refresh(sess)
            return row_json(sess, SESSION_FIELDS)
    except IntegrityError:
        raise conflict("capacity cannot be less than the places already booked", "capacity") from None


@route(
    "GET",
    "/sessions/{id}/bookings",
    roles=READ_ROLES,
    summary="Bookings of a session",
    tags=("courses",),
    path_params={"id": ID},
    query=obj({"status": {"type": "string", "enum": ["booked", "waitlisted", "cancelled", "attended"]}}),
    response=BOOKING_LIST,
    description="Bookings in waitlist order (queued_at, id).",
)
async def list_bookings(call: Call) -> dict[str, Any]:
    stmt = (
        select(Booking).where(Booking.session_id == call.path["id"]).order_by(Booking.queued_at, Booking.id)
    )
    if "status" in call.query:
        stmt = stmt.where(Booking.status == call.query["status"])
    async with call.db.session() as session:
        rows = (await session.scalars(stmt.limit(1000))).all()
    return {"items": [row_json(b, BOOKING_FIELDS) for b in rows]}


@route(
    "POST",
    "/bookings/{id}/cancel",
    roles=COURSE_ROLES,
    summary="Cancel a booking for the resident",
    tags=("courses",),
    path_params={"id": BIG_ID},
    response=BOOKING,
    description="As if the resident cancelled: refund before the cut-off, the next in line is booked and told.",
)
async def cancel_booking(call: Call) -> dict[str, Any]:
    try:
        result = await courses.cancel(call.db, resident_id=None, booking_id=call.path["id"], now=call.now())
    except courses.BookingError as exc:
        if exc.code == "not_found":
            raise not_found("no such booking") from None
        raise conflict(
            "this booking cannot be cancelled (already cancelled, or the session started)", exc.code
        ) from None
    return row_json(result.booking, BOOKING_FIELDS)
