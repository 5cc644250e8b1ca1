"""Points for staff: a resident's balance and ledger, audited manual adjustments, and the
per-unit service record of in-service party members (双报到)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.errors import bad_request, conflict, not_found
from bot.api.registry import DATETIME, ID, Call, component, json_response, obj, route
from bot.services import courses, points
from bot.storage.models import PointsEntry, Resident

POINTS_ROLES = frozenset({"supervisor", "staff"})
MAX_BALANCE = 2**31 - 1
READ_ROLES = frozenset({"supervisor", "staff", "operator"})
NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}

ENTRY_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "resident_id": {"type": "integer"},
    "amount": {"type": "integer", "description": "points added (+) or taken (−)"},
    "balance_after": {"type": "integer"},
    "reason": {
        "type": "string",
        "description": "registration, activity, valid_report, coupon, course, refund, adjust …",
    },
    "ref_type": {"type": "string"},
    "ref_id": {"type": "string"},
    "actor": {**NULLABLE_STR, "description": "staff member of a manual adjustment"},
    "note": NULLABLE_STR,
    "reason_for_resident": {**NULLABLE_STR, "description": "a staff adjustment's reason as the resident "
                            "was told it, shown in their 积分明细 in WeChat"},
    "created_at": {"type": "string", "format": "date-time"},
}
ENTRY = component(
    "PointsEntry", {"type": "object", "required": list(ENTRY_FIELDS), "properties": ENTRY_FIELDS}
)
ACCOUNT = component(
    "PointsAccount",
    {
        "type": "object",
        "required": ["resident_id", "balance", "entries"],
        "properties": {
            "resident_id": {"type": "integer"},
            "balance": {"type": "integer", "minimum": 0},
            "entries": {"type": "array", "items": ENTRY, "description": "newest first"},
        },
    },
)
SERVICE_RECORD = component(
    "ServiceRecord",
    {
        "type": "object",
        "required": ["work_unit", "items", "total_hours"],
        "properties": {
            "work_unit": {"type": "string"},
            "total_hours": {"type": "number"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["day", "resident_id", "name", "activity", "hours", "points"],
                    "properties": {
                        "day": {"type": "string", "description": "local date YYYY-MM-DD"},
                        "resident_id": {"type": "integer"},
                        "name": NULLABLE_STR,
                        "activity": {"type": "string"},
                        "hours": {"type": "number"},
                        "points": {"type": "integer"},
                    },
                },
            },
        },
    },
)


def entry_json(e: PointsEntry) -> dict[str, Any]:
    return {name: getattr(e, name) for name in ENTRY_FIELDS}


@route(
    "GET",
    "/points/residents/{id}",
    roles=READ_ROLES,
    summary="A resident's points balance and ledger",
    description="The balance and the newest ledger entries (append-only; the balance is their sum).",
    tags=("points",),
    path_params={"id": ID},
    query=obj({"limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}),
    response=ACCOUNT,
)
async def account(call: Call) -> dict[str, Any]:
    rid = call.path["id"]
    async with call.db.session() as session:
        if await session.get(Resident, rid) is None:
            raise not_found("no such resident")
        balance = await points.balance_of(session, rid)
        entries = await points.history(session, rid, limit=call.query.get("limit", 50))
    return {"resident_id": rid, "balance": balance, "entries": [entry_json(e) for e in entries]}


@route(
    "POST",
    "/points/adjustments",
    roles=POINTS_ROLES,
    summary="Adjust a resident's points by hand (audited)",
    description=(
        "Adds (amount > 0) or takes (amount < 0) points with a note; the ledger records the caller's "
        "name as the actor. A balance never goes below zero: taking more than the balance is a 409. "
        "request_key makes the request idempotent for the calling token: repeating it with the same "
        "resident_id, amount and note (also concurrently) changes nothing and answers the stored "
        "entry with 201 again (header Idempotent-Replayed: true); the same key with another body is a "
        "409 (code request_key_reused). The resident is sent a WeChat message (a customer-service "
        "message through the outbox) with the points added or taken, reason_for_resident when given, "
        "and the balance after it; the note is the staff's own record and is never sent. notify: false "
        "sends nothing (bulk seeding, corrections the resident need not hear of). A resident who no "
        "longer follows the account is not sent anything; one whose 48-hour window has closed sees the "
        "message before the answer to their next message."
    ),
    tags=("points",),
    body=obj(
        {
            "resident_id": ID,
            "amount": {"type": "integer", "minimum": -100000, "maximum": 100000, "not": {"const": 0}},
            "note": {"type": "string", "minLength": 1, "maxLength": 500},
            "request_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": 60,
                "description": "idempotency key",
            },
            "reason_for_resident": {
                "type": "string",
                "minLength": 1,
                "maxLength": points.MAX_TOLD_REASON,
                "description": "why, in words for the resident (参加楼道清扫志愿服务); told in the message",
            },
            "notify": {"type": "boolean", "default": True, "description": "tell the resident in WeChat"},
        },
        required=["resident_id", "amount", "note"],
    ),
    response=ENTRY,
    status=201,
)
async def adjust(call: Call) -> Any:
    assert call.principal is not None
    body = call.body
    note = body["note"].strip()
    if not note:
        raise bad_request("note must not be blank", "bad_body", {"path": ["note"]})
    told = body.get("reason_for_resident")
    if told is not None and not points.told_reason(told):
        raise bad_request("reason_for_resident must not be blank", "bad_body", {"path": ["reason_for_resident"]})
    # The actor column holds 100 characters: a long token name is cut, its id always kept.
    suffix = f"#{call.principal.id}"
    actor = call.principal.name[: 100 - len(suffix)] + suffix
    given = body.get("request_key")
    key = f"adjust:{call.principal.id}:{given or secrets.token_hex(12)}"
    asked = (body["resident_id"], body["amount"], note)
    for attempt in range(2):
        try:
            async with call.db.transaction() as session:
                entry = await _stored(session, key)
                created = entry is None
                if entry is None:
                    entry, created = await _adjust_once(session, call, actor, note, key)
                got = _fields(entry)
                data = entry_json(entry)
            break
        except IntegrityError:
            # A concurrent request with the same key committed its ledger row (which holds the
            # unique key) first: the second attempt finds that entry and compares it.
            if attempt or given is None:
                raise
        except points.InsufficientPoints as exc:
            raise conflict(
                f"the balance is {exc.balance}; cannot take {exc.needed}",
                "insufficient_points",
                {"balance": exc.balance},
            ) from None
    if not created and got != asked:
        raise conflict(
            "request_key was already used for another adjustment (another resident_id, amount or "
            "note); send a new request_key for a new adjustment",
            "request_key_reused",
            {"field": "request_key", "entry_id": data["id"]},
        )
    response = json_response(data, 201)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _fields(entry: PointsEntry) -> tuple[int, int, str | None]:
    return entry.resident_id, entry.amount, entry.note


async def _stored(session: AsyncSession, key: str) -> PointsEntry | None:
    found: PointsEntry | None = await session.scalar(
        select(PointsEntry).where(PointsEntry.idempotency_key == key)
    )
    return found


async def _adjust_once(
    session: AsyncSession, call: Call, actor: str, note: str, key: str
) -> tuple[PointsEntry, bool]:
    """A new adjustment under ``key`` (True) — or, when a concurrent request with the key committed
    while this one waited, that request's entry (False)."""
    resident_id = call.body["resident_id"]
    if await session.get(Resident, resident_id) is None:
        raise not_found("no such resident")
    # Concurrent adjustments of one resident queue here (PostgreSQL: FOR UPDATE); a repeat of a
    # request that committed meanwhile then finds its entry instead of writing a second one.
    balance = await points.lock_account(session, resident_id, call.now())
    stored = await _stored(session, key)
    if stored is not None:
        return stored, False
    if balance + call.body["amount"] > MAX_BALANCE:  # the balance column's range (INTEGER)
        raise conflict(
            f"the balance is {balance}; adding {call.body['amount']} would pass the largest balance {MAX_BALANCE}",
            "balance_limit",
            {"balance": balance, "field": "amount"},
        )
    entry = await points.adjust(
        session,
        resident_id=resident_id,
        amount=call.body["amount"],
        actor=actor,
        note=note,
        request_key=key.removeprefix("adjust:"),
        now=call.now(),
        tell=call.body.get("notify", True),
        reason=call.body.get("reason_for_resident"),
    )
    # points.adjust finds an entry that a concurrent request (of another resident, so not queued
    # behind the same row) committed under this key after the look-up above: not ours.
    mine = (entry.resident_id, entry.amount, entry.note) == (resident_id, call.body["amount"], note)
    return entry, mine


@route(
    "GET",
    "/points/service-records",
    roles=READ_ROLES,
    summary="Service record of a work unit's in-service party members (双报到)",
    description="Check-ins at community activities of residents registered with this work unit.",
    tags=("points",),
    query=obj(
        {
            "unit": {"type": "string", "minLength": 1, "maxLength": 100, "description": "work unit, exact"},
            "since": {**DATETIME, "description": "check-ins at or after"},
            "until": {**DATETIME, "description": "check-ins before"},
        },
        required=["unit"],
    ),
    response=SERVICE_RECORD,
)
async def service_records(call: Call) -> dict[str, Any]:
    q = call.query
    since: datetime | None = q.get("since")
    until: datetime | None = q.get("until")
    async with call.db.session() as session:
        rows = await courses.service_record(session, q["unit"], since, until)
    items = [
        {
            "day": r.day,
            "resident_id": r.resident_id,
            "name": r.name,
            "activity": r.activity,
            "hours": r.hours,
            "points": r.points,
        }
        for r in rows
    ]
    return {"work_unit": q["unit"], "items": items, "total_hours": sum(r.hours for r in rows)}
