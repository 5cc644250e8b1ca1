"""Residents and their message history, and the message query behind the operators' review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from bot.api.auth import STAFF_ROLES
from bot.api.errors import bad_request, not_found
from bot.api.paging import CURSOR, LIMIT, decode_cursor, encode_cursor, page_of
from bot.api.registry import DATETIME, ID, Call, component, obj, route
from bot.storage.models import Message, Resident

NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}
NULLABLE_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}

RESIDENT_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "openid": {"type": "string", "description": "the resident's openid for this 公众号"},
    "subscribed": {"type": "boolean"},
    "subscribed_at": NULLABLE_TIME,
    "unsubscribed_at": NULLABLE_TIME,
    "community": NULLABLE_STR,
    "building": NULLABLE_STR,
    "scene": {**NULLABLE_STR, "description": "QR scene key the resident subscribed or scanned with"},
    "takeover_by": {**NULLABLE_STR, "description": "staff member handling the chat, if any"},
    "last_inbound_at": NULLABLE_TIME,
    "created_at": TIME,
    "updated_at": TIME,
}
RESIDENT = component(
    "Resident", {"type": "object", "required": list(RESIDENT_FIELDS), "properties": RESIDENT_FIELDS}
)
RESIDENT_DETAIL = component(
    "ResidentDetail",
    {
        "allOf": [
            RESIDENT,
            {
                "type": "object",
                "required": ["message_count", "last_message_at"],
                "properties": {"message_count": {"type": "integer"}, "last_message_at": NULLABLE_TIME},
            },
        ]
    },
)
MESSAGE_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "resident_id": {"type": "integer"},
    "openid": {"type": "string"},
    "direction": {"type": "string", "enum": ["in", "out"]},
    "msg_type": {"type": "string", "description": "text, voice, image, event, … (outbound: text, news, …)"},
    "event": NULLABLE_STR,
    "content": NULLABLE_STR,
    "intent": {**NULLABLE_STR, "description": "understood intent of an inbound message, when known"},
    "confidence": {"type": ["number", "null"], "description": "the intent's confidence (0–1), when known"},
    "via": {**NULLABLE_STR, "description": "outbound: passive reply or customer-service message"},
    "payload": {"type": "object", "description": "the message's fields as WeChat sent them"},
    "created_at": TIME,
}
MESSAGE = component("Message", {"type": "object", "required": list(MESSAGE_FIELDS), "properties": MESSAGE_FIELDS})
RESIDENT_PAGE = component("ResidentPage", page_of(RESIDENT))
MESSAGE_PAGE = component("MessagePage", page_of(MESSAGE))

DIRECTION = {"type": "string", "enum": ["in", "out"], "description": "only inbound or only outbound"}
SHORT = {"type": "string", "minLength": 1, "maxLength": 64}


def resident_json(r: Resident) -> dict[str, Any]:
    return {name: getattr(r, name) for name in RESIDENT_FIELDS}


def message_json(m: Message, openid: str) -> dict[str, Any]:
    data = {name: getattr(m, name) for name in MESSAGE_FIELDS if name != "openid"}
    data["openid"] = openid
    data["payload"] = m.payload if isinstance(m.payload, dict) else {}
    return data


@route(
    "GET",
    "/residents",
    roles=STAFF_ROLES,
    summary="List residents",
    description="Residents by id, oldest first, with optional filters.",
    tags=("residents",),
    query=obj(
        {
            "subscribed": {"type": "boolean", "description": "only (un)subscribed residents"},
            "community": {**SHORT, "description": "bound community, exact"},
            "building": {**SHORT, "description": "bound building, exact"},
            "q": {**SHORT, "description": "openid prefix (case-sensitive)"},
            "limit": LIMIT,
            "cursor": CURSOR,
        }
    ),
    response=RESIDENT_PAGE,
)
async def list_residents(call: Call) -> dict[str, Any]:
    q = call.query
    stmt = select(Resident).order_by(Resident.id).limit(q["limit"] + 1)
    if "subscribed" in q:
        stmt = stmt.where(Resident.subscribed.is_(q["subscribed"]))
    if "community" in q:
        stmt = stmt.where(Resident.community == q["community"])
    if "building" in q:
        stmt = stmt.where(Resident.building == q["building"])
    if "q" in q:
        prefix = q["q"]
        # LIKE for the index, substr for exactness (SQLite's LIKE ignores ASCII case).
        stmt = stmt.where(
            Resident.openid.startswith(prefix, autoescape=True),
            func.substr(Resident.openid, 1, len(prefix)) == prefix,
        )
    if "cursor" in q:
        (after,) = decode_cursor(q["cursor"], "residents", [int], max_int=ID["maximum"])
        stmt = stmt.where(Resident.id > after)
    async with call.db.session() as session:
        rows = list((await session.scalars(stmt)).all())
    more = len(rows) > q["limit"]
    rows = rows[: q["limit"]]
    cursor = encode_cursor("residents", [rows[-1].id]) if more else None
    return {"items": [resident_json(r) for r in rows], "next_cursor": cursor}


@route(
    "GET",
    "/residents/{id}",
    roles=STAFF_ROLES,
    summary="One resident",
    description="A resident with the number of stored messages and the time of the latest one.",
    tags=("residents",),
    path_params={"id": ID},
    response=RESIDENT_DETAIL,
)
async def get_resident(call: Call) -> dict[str, Any]:
    async with call.db.session() as session:
        resident = await session.get(Resident, call.path["id"])
        if resident is None:
            raise not_found(f"no resident with id {call.path['id']}")
        count, last = (
            await session.execute(
                select(func.count(Message.id), func.max(Message.created_at)).where(
                    Message.resident_id == resident.id
                )
            )
        ).one()
    data = resident_json(resident)
    data["message_count"] = int(count or 0)
    data["last_message_at"] = last
    return data


def _newest_first(stmt: Select, cursor: str | None) -> Select:
    stmt = stmt.order_by(Message.created_at.desc(), Message.id.desc())
    if cursor is not None:
        at, before = decode_cursor(cursor, "messages", [datetime, int])
        stmt = stmt.where(
            or_(Message.created_at < at, and_(Message.created_at == at, Message.id < before))
        )
    return stmt


async def _message_page(call: Call, stmt: Select) -> dict[str, Any]:
    limit = call.query["limit"]
    stmt = _newest_first(stmt, call.query.get("cursor")).limit(limit + 1)
    async with call.db.session() as session:
        rows: list[tuple[Message, str]] = [(row[0], row[1]) for row in await session.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    items = [message_json(m, openid) for m, openid in rows]
    last = rows[-1][0] if rows else None
    cursor = encode_cursor("messages", [last.created_at, last.id]) if more and last else None
    return {"items": items, "next_cursor": cursor}


@route(
    "GET",
    "/residents/{id}/messages",
    roles=STAFF_ROLES,
    summary="A resident's message history",
    description="Inbound and outbound messages of one resident, newest first, with intent and confidence.",
    tags=("residents", "messages"),
    path_params={"id": ID},
    query=obj({"direction": DIRECTION, "limit": LIMIT, "cursor": CURSOR}),
    response=MESSAGE_PAGE,
)
async def resident_messages(call: Call) -> dict[str, Any]:
    async with call.db.session() as session:
        resident = await session.get(Resident, call.path["id"])
    if resident is None:
        raise not_found(f"no resident with id {call.path['id']}")
    stmt = select(Message, Resident.openid).join(Resident, Resident.id == Message.resident_id)
    stmt = stmt.where(Message.resident_id == resident.id)
    if "direction" in call.query:
        stmt = stmt.where(Message.direction == call.query["direction"])
    return await _message_page(call, stmt)


@route(
    "GET",
    "/messages",
    roles=STAFF_ROLES,
    summary="Search messages (review queue)",
    description=(
        "Messages of all residents, newest first. `max_confidence` selects messages whose intent "
        "confidence is at most that value (messages without a confidence are left out); with "
        "`direction=in` and `intent=fallback` or a low `max_confidence` this is the operators' review "
        "queue of messages the assistant did not understand well."
    ),
    tags=("messages",),
    query=obj(
        {
            "intent": {"type": "string", "minLength": 1, "maxLength": 32, "description": "exact intent"},
            "max_confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "since": {**DATETIME, "description": "created at or after (ISO 8601 with time zone)"},
            "until": {**DATETIME, "description": "created before (ISO 8601 with time zone)"},
            "direction": DIRECTION,
            "msg_type": {"type": "string", "minLength": 1, "maxLength": 32},
            "limit": LIMIT,
            "cursor": CURSOR,
        }
    ),
    response=MESSAGE_PAGE,
)
async def search_messages(call: Call) -> dict[str, Any]:
    q = call.query
    stmt = select(Message, Resident.openid).join(Resident, Resident.id == Message.resident_id)
    if "intent" in q:
        stmt = stmt.where(Message.intent == q["intent"])
    if "max_confidence" in q:
        stmt = stmt.where(Message.confidence.is_not(None), Message.confidence <= q["max_confidence"])
    if "since" in q and "until" in q and q["since"] >= q["until"]:
        raise bad_request("since must be before until", "bad_param", {"param": "since"})
    if "since" in q:
        stmt = stmt.where(Message.created_at >= q["since"])
    if "until" in q:
        stmt = stmt.where(Message.created_at < q["until"])
    if "direction" in q:
        stmt = stmt.where(Message.direction == q["direction"])
    if "msg_type" in q:
        stmt = stmt.where(Message.msg_type == q["msg_type"])
    return await _message_page(call, stmt)
