"""The points mall for staff (merchants, their accounts, coupons, issued coupons) and the
verification (核销) route a merchant account calls from the verification page."""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.api.errors import ApiError, bad_request, conflict, forbidden, not_found
from bot.api.registry import ID, Call, component, obj, route
from bot.api.tokens import TokenError, create_merchant_token
from bot.services import coupons, ratelimit
from bot.services.points import rules
from bot.storage.models import Coupon, IssuedCoupon, Merchant, MerchantAccount

MALL_ROLES = frozenset({"supervisor", "staff"})
ACCOUNT_ROLES = frozenset({"supervisor"})  # who may mint merchant tokens (admin is implied)
# Failed verifications (unknown codes) per merchant account before a 429: codes cannot be guessed.
VERIFY_FAILURES = ratelimit.Limit(attempts=10, window=timedelta(minutes=10))
READ_ROLES = frozenset({"supervisor", "staff", "operator"})
NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
NULLABLE_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
TEXT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 100}
CATEGORY: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 16,
    "description": "餐饮, 理发, 超市, 交通 …",
}

MERCHANT_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "name": {"type": "string"},
    "category": {"type": "string"},
    "address": NULLABLE_STR,
    "phone": NULLABLE_STR,
    "active": {"type": "boolean"},
    "created_at": TIME,
}
MERCHANT = component(
    "Merchant", {"type": "object", "required": list(MERCHANT_FIELDS), "properties": MERCHANT_FIELDS}
)
COUPON_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "merchant_id": {"type": "integer"},
    "title": {"type": "string"},
    "category": {"type": "string"},
    "price": {"type": "integer", "description": "points"},
    "stock": {"type": "integer", "minimum": 0},
    "per_resident_limit": {"type": "integer"},
    "valid_from": TIME,
    "valid_until": TIME,
    "terms": NULLABLE_STR,
    "active": {"type": "boolean"},
    "created_at": TIME,
}
COUPON = component("Coupon", {"type": "object", "required": list(COUPON_FIELDS), "properties": COUPON_FIELDS})
ISSUED_FIELDS: dict[str, Any] = {
    "id": {"type": "integer"},
    "coupon_id": {"type": "integer"},
    "resident_id": {"type": "integer"},
    "code": {"type": "string"},
    "status": {"type": "string", "enum": ["issued", "used", "expired"]},
    "points": {"type": "integer"},
    "issued_at": TIME,
    "expires_at": TIME,
    "used_at": NULLABLE_TIME,
    "used_by": NULLABLE_STR,
}
ISSUED = component(
    "IssuedCoupon", {"type": "object", "required": list(ISSUED_FIELDS), "properties": ISSUED_FIELDS}
)
VERIFICATION = component(
    "Verification",
    {
        "type": "object",
        "required": ["status", "message"],
        "properties": {
            "status": {
                "type": "string",
                "enum": ["used", "already_used", "expired", "not_found"],
                "description": (
                    "used: verified now; already_used: verified before (see used_at); not_found: no such "
                    "code among this merchant's coupons (another merchant's code answers the same)"
                ),
            },
            "message": {"type": "string", "description": "what to tell the merchant (Chinese)"},
            "title": {"type": "string"},
            "code": {"type": "string"},
            "used_at": NULLABLE_TIME,
        },
    },
)
ACCOUNT = component(
    "MerchantAccountToken",
    {
        "type": "object",
        "required": ["merchant_id", "token", "name"],
        "properties": {
            "merchant_id": {"type": "integer"},
            "name": {"type": "string"},
            "token": {"type": "string", "description": "the API token (role merchant), shown only once"},
        },
    },
)


def items_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": schema}},
    }


MERCHANT_LIST = component("MerchantList", items_of(MERCHANT))
COUPON_LIST = component("CouponList", items_of(COUPON))
ISSUED_LIST = component("IssuedCouponList", items_of(ISSUED))


def parse_time(name: str, raw: str) -> datetime:
    """An ISO 8601 date-time with a zone from a JSON body, or a 400 naming the field."""
    try:
        value = datetime.fromisoformat(raw.strip())
        if value.tzinfo is None:
            raise ValueError
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_request(
            f"{name} must be an ISO 8601 date-time with a time zone, e.g. 2026-12-01T08:00:00+08:00",
            "invalid_body",
        ) from None


def row_json(row: Any, fields: dict[str, Any]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in fields}


MERCHANT_BODY: dict[str, Any] = {
    "name": TEXT,
    "category": CATEGORY,
    "address": {"type": "string", "maxLength": 200},
    "phone": {"type": "string", "maxLength": 32},
    "active": {"type": "boolean"},
}


@route(
    "GET",
    "/merchants",
    roles=READ_ROLES,
    summary="List merchants",
    tags=("mall",),
    response=MERCHANT_LIST,
    description="Every merchant of the points mall, by id.",
)
async def list_merchants(call: Call) -> dict[str, Any]:
    async with call.db.session() as session:
        rows = (await session.scalars(select(Merchant).order_by(Merchant.id).limit(500))).all()
    return {"items": [row_json(m, MERCHANT_FIELDS) for m in rows]}


@route(
    "POST",
    "/merchants",
    roles=MALL_ROLES,
    summary="Add a merchant",
    tags=("mall",),
    body=obj(MERCHANT_BODY, required=["name", "category"]),
    response=MERCHANT,
    status=201,
    description="A merchant whose coupons residents can buy with points; names are unique (409).",
)
async def create_merchant(call: Call) -> dict[str, Any]:
    try:
        async with call.db.transaction() as session:
            merchant = Merchant(created_at=call.now(), **{k: v for k, v in call.body.items()})
            session.add(merchant)
            await session.flush()
            return row_json(merchant, MERCHANT_FIELDS)
    except IntegrityError:
        raise conflict("a merchant with this name exists", "duplicate") from None


@route(
    "PATCH",
    "/merchants/{id}",
    roles=MALL_ROLES,
    summary="Change a merchant",
    tags=("mall",),
    path_params={"id": ID},
    body=obj(MERCHANT_BODY),
    response=MERCHANT,
    description="Fields given are changed; active=false hides its coupons.",
)
async def update_merchant(call: Call) -> dict[str, Any]:
    try:
        async with call.db.transaction() as session:
            merchant = await session.get(Merchant, call.path["id"])
            if merchant is None:
                raise not_found("no such merchant")
            for key, value in call.body.items():
                setattr(merchant, key, value)
            await session.flush()
            return row_json(merchant, MERCHANT_FIELDS)
    except IntegrityError:
        raise conflict("a merchant with this name exists", "duplicate") from None


@route(
    "POST",
    "/merchants/{id}/accounts",
    roles=ACCOUNT_ROLES,
    summary="Create a merchant account (API token)",
    tags=("mall",),
    path_params={"id": ID},
    body=obj({"name": TEXT}, required=["name"]),
    response=ACCOUNT,
    status=201,
    description=(
        "A token with role merchant that may verify this merchant's coupons only; shown once. Minting "
        "credentials is for supervisors (and admins), not staff. The CLI does the same: "
        "`python -m bot token create --role merchant --merchant ID --name NAME`."
    ),
)
async def create_account(call: Call) -> dict[str, Any]:
    async with call.db.session() as session:
        if await session.get(Merchant, call.path["id"]) is None:
            raise not_found("no such merchant")
    name = call.body["name"].strip()
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise bad_request("name must be a plain, non-empty text", "invalid_body", {"path": ["name"]})
    try:
        secret, info = await create_merchant_token(call.db, name, call.path["id"], call.now())
    except TokenError:  # the merchant was deleted meanwhile
        raise not_found("no such merchant") from None
    return {"merchant_id": call.path["id"], "name": info.name, "token": secret}


COUPON_BODY: dict[str, Any] = {
    "merchant_id": ID,
    "title": TEXT,
    "category": CATEGORY,
    "price": {"type": "integer", "minimum": 0, "maximum": 1000000},
    "stock": {"type": "integer", "minimum": 0, "maximum": 1000000},
    "per_resident_limit": {"type": "integer", "minimum": 1, "maximum": 100},
    "valid_from": TIME,
    "valid_until": TIME,
    "terms": {"type": "string", "maxLength": 1000},
    "active": {"type": "boolean"},
}


@route(
    "GET",
    "/coupons",
    roles=READ_ROLES,
    summary="List coupons",
    tags=("mall",),
    response=COUPON_LIST,
    query=obj({"merchant_id": ID, "category": CATEGORY}),
    description="Coupons by id, optionally of one merchant or category.",
)
async def list_coupons(call: Call) -> dict[str, Any]:
    stmt = select(Coupon).order_by(Coupon.id).limit(500)
    if "merchant_id" in call.query:
        stmt = stmt.where(Coupon.merchant_id == call.query["merchant_id"])
    if "category" in call.query:
        stmt = stmt.where(Coupon.category == call.query["category"])
    async with call.db.session() as session:
        rows = (await session.scalars(stmt)).all()
    return {"items": [row_json(c, COUPON_FIELDS) for c in rows]}


def _coupon_values(body: dict[str, Any]) -> dict[str, Any]:
    values = dict(body)
    for name in ("valid_from", "valid_until"):
        if name in values:
            values[name] = parse_time(name, values[name])
    return values


@route(
    "POST",
    "/coupons",
    roles=MALL_ROLES,
    summary="Add a coupon",
    tags=("mall",),
    body=obj(
        COUPON_BODY,
        required=["merchant_id", "title", "category", "price", "stock", "valid_from", "valid_until"],
    ),
    response=COUPON,
    status=201,
    description="A coupon of a merchant: price in points, stock, validity, terms.",
)
async def create_coupon(call: Call) -> dict[str, Any]:
    values = _coupon_values(call.body)
    if values["valid_until"] <= values["valid_from"]:
        raise bad_request("valid_until must be after valid_from", "invalid_body")
    async with call.db.transaction() as session:
        if await session.get(Merchant, values["merchant_id"]) is None:
            raise not_found("no such merchant")
        coupon = Coupon(created_at=call.now(), **values)
        session.add(coupon)
        await session.flush()
        return row_json(coupon, COUPON_FIELDS)


@route(
    "PATCH",
    "/coupons/{id}",
    roles=MALL_ROLES,
    summary="Change a coupon",
    tags=("mall",),
    path_params={"id": ID},
    body=obj({k: v for k, v in COUPON_BODY.items() if k != "merchant_id"}),
    response=COUPON,
    description="Fields given are changed (e.g. restock, withdraw with active=false). Issued coupons keep their terms.",
)
async def update_coupon(call: Call) -> dict[str, Any]:
    values = _coupon_values(call.body)
    async with call.db.transaction() as session:
        coupon = await session.get(Coupon, call.path["id"])
        if coupon is None:
            raise not_found("no such coupon")
        for key, value in values.items():
            setattr(coupon, key, value)
        if coupon.valid_until <= coupon.valid_from:
            raise bad_request("valid_until must be after valid_from", "invalid_body")
        await session.flush()
        return row_json(coupon, COUPON_FIELDS)


@route(
    "GET",
    "/coupons/{id}/issued",
    roles=READ_ROLES,
    summary="Coupons issued of one kind",
    tags=("mall",),
    path_params={"id": ID},
    query=obj({"status": {"type": "string", "enum": ["issued", "used", "expired"]}}),
    response=ISSUED_LIST,
    description="Redemptions of this coupon, newest first (at most 500).",
)
async def list_issued(call: Call) -> dict[str, Any]:
    stmt = (
        select(IssuedCoupon)
        .where(IssuedCoupon.coupon_id == call.path["id"])
        .order_by(IssuedCoupon.id.desc())
        .limit(500)
    )
    if "status" in call.query:
        stmt = stmt.where(IssuedCoupon.status == call.query["status"])
    async with call.db.session() as session:
        rows = (await session.scalars(stmt)).all()
    return {"items": [row_json(i, ISSUED_FIELDS) for i in rows]}


VERIFY_TEXTS = {
    "used": "核销成功：{title}（券码 {code}）",
    "already_used": "这张券已经在{used_at}核销过了，不能重复使用。",
    "expired": "这张券已过期，不能使用。",
    "not_found": "本店没有这个券码：请核对券码，并看券上写的是不是本店。",
}
TOO_MANY_FAILURES = "券码输错次数太多，请在{retry}之后再试。"


@route(
    "POST",
    "/mall/verify",
    roles=frozenset({"merchant"}),
    summary="Verify (核销) a coupon code",
    tags=("mall",),
    body=obj({"code": {"type": "string", "minLength": 4, "maxLength": 32}}, required=["code"]),
    response=VERIFICATION,
    description=(
        "A merchant account marks a resident's coupon used: exactly once, with time and merchant. A second "
        "attempt answers already_used with when. A code that is not one of this merchant's coupons — "
        "unknown, or another merchant's — answers not_found, identically. "
        f"After {VERIFY_FAILURES.attempts} not_found answers within "
        f"{int(VERIFY_FAILURES.window.total_seconds() // 60)} minutes the account gets 429 "
        "(code too_many_failures, header Retry-After in seconds, details.retry_at) until the oldest of them "
        "is that old; the count is shared by every process (database, or Redis when configured)."
    ),
)
async def verify(call: Call) -> dict[str, Any]:
    assert call.principal is not None
    if call.principal.kind == "session":  # a console merchant account (the /merchant page)
        merchant_id = call.principal.merchant_id
    else:
        async with call.db.session() as session:
            merchant_id = await session.scalar(
                select(MerchantAccount.merchant_id).where(MerchantAccount.token_id == call.principal.id)
            )
    if merchant_id is None:
        raise forbidden("this account is not linked to a merchant", "not_a_merchant")
    limiter = ratelimit.limiter(call.db, call.rt.redis)
    account = str(call.principal.id) if call.principal.kind == "token" else f"{call.principal.kind}:{call.principal.id}"
    key, now = f"verify:{account}", call.now()
    try:
        slot = await limiter.take(key, VERIFY_FAILURES, now)
    except ratelimit.Blocked as blocked:
        raise _too_many(blocked.retry_at, now) from None
    # NFKC: a code typed in a Chinese input method's full-width mode (７ＮＧＨ…, －) is the same code
    code = unicodedata.normalize("NFKC", call.body["code"])
    result = await coupons.verify(call.db, code=code, merchant_id=merchant_id, actor=call.principal.name, now=now)
    status = "not_found" if result.status == "other_merchant" else result.status
    if status != "not_found":
        await limiter.give_back(key, slot)
    data: dict[str, Any] = {"status": status}
    used_at = result.issued.used_at if result.issued is not None else None
    if status != "not_found" and result.issued is not None and result.coupon is not None:
        data.update(title=result.coupon.title, code=result.issued.code, used_at=used_at)
    shown = _local(used_at) if used_at else ""
    data["message"] = VERIFY_TEXTS[status].format(title=data.get("title", ""), code=data.get("code", ""), used_at=shown)
    return data


def _local(when: datetime) -> str:
    return when.astimezone(rules().tz).strftime("%Y-%m-%d %H:%M")


def _too_many(retry_at: datetime, now: datetime) -> ApiError:
    seconds = max(1, math.ceil((retry_at - now).total_seconds()))
    return ApiError(
        429,
        "too_many_failures",
        TOO_MANY_FAILURES.format(retry=_local(retry_at + timedelta(seconds=59))),
        {"retry_at": retry_at.isoformat(), "retry_after": seconds, "limit": VERIFY_FAILURES.attempts},
        headers={"Retry-After": str(seconds)},
    )
