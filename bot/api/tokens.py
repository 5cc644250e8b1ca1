"""API tokens: created once (the secret is shown only then), stored as a SHA-256 hash, revocable.

A token looks like ``csb_`` followed by 43 URL-safe characters (256 random bits). The first 12
characters are kept in clear as its ``prefix`` so people can tell tokens apart and revoke one.
A random 256-bit secret needs no slow password hash: SHA-256 cannot be searched backwards.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from bot.storage.db import Database
from bot.storage.models import ApiToken, Merchant, MerchantAccount

TOKEN_PREFIX = "csb_"
PREFIX_LENGTH = 12
NAME_MAX = 100
ROLES = ("admin", "supervisor", "staff", "operator", "merchant")
ROLE_HELP = {
    "admin": "everything, including what later roles add",
    "supervisor": "staff work plus oversight (escalations, reports)",
    "staff": "service-centre staff: residents, their messages, tickets",
    "operator": "reviews the assistant's conversations and low-confidence messages",
    "merchant": "a points-mall merchant: only its own coupons",
}
TOUCH_INTERVAL = timedelta(minutes=1)


class TokenError(ValueError):
    """A token operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenInfo:
        return cls(row.id, row.name, row.role, row.prefix, row.created_at, row.revoked_at, row.last_used_at)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and len(value) > PREFIX_LENGTH


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise TokenError("the token name must not be empty")
    if len(name) > NAME_MAX:
        raise TokenError(f"the token name is {len(name)} characters; at most {NAME_MAX} are allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise TokenError("the token name must not contain control characters")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


async def create_token(db: Database, name: str, role: str, now: datetime) -> tuple[str, TokenInfo]:
    """Store a new token; returns the secret (shown once) and its description."""
    name, role = check_name(name), check_role(role)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        role=role,
        token_hash=hash_token(secret),
        prefix=secret[:PREFIX_LENGTH],
        created_at=now,
    )
    async with db.transaction() as session:
        session.add(row)
        await session.flush()
        info = TokenInfo.of(row)
    return secret, info


async def create_merchant_token(
    db: Database, name: str, merchant_id: int, now: datetime
) -> tuple[str, TokenInfo]:
    """A token with role ``merchant`` linked to the merchant ``merchant_id`` (it may verify that
    merchant's coupons only), both in one transaction; raises :class:`TokenError` for an unknown
    merchant."""
    name = check_name(name)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name, role="merchant", token_hash=hash_token(secret), prefix=secret[:PREFIX_LENGTH], created_at=now
    )
    async with db.transaction() as session:
        if not 0 < merchant_id < 2**31 or await session.get(Merchant, merchant_id) is None:
            raise TokenError(f"no merchant with id {merchant_id}; GET /api/v1/merchants lists them")
        session.add(row)
        await session.flush()
        session.add(MerchantAccount(token_id=row.id, merchant_id=merchant_id, created_at=now))
        info = TokenInfo.of(row)
    return secret, info


async def list_tokens(db: Database, include_revoked: bool = True) -> list[TokenInfo]:
    async with db.session() as session:
        query = select(ApiToken).order_by(ApiToken.id)
        if not include_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        return [TokenInfo.of(row) for row in (await session.scalars(query)).all()]


async def revoke_token(db: Database, which: str, now: datetime) -> tuple[TokenInfo, bool]:
    """Revoke by id, prefix or the full secret. Returns the token and whether this call revoked it
    (``False``: it was already revoked)."""
    which = which.strip()
    if which.isdigit():
        where = ApiToken.id == int(which) if int(which) < 2**31 else ApiToken.id == -1
    elif looks_like_token(which):
        where = ApiToken.token_hash == hash_token(which)
    elif which:
        where = ApiToken.prefix == which
    else:
        raise TokenError("give a token id or prefix")
    async with db.transaction() as session:
        rows = (await session.scalars(select(ApiToken).where(where))).all()
        if not rows:
            raise TokenError(f"no token with id or prefix {which!r}; `token list` shows them")
        if len(rows) > 1:
            ids = ", ".join(str(r.id) for r in rows)
            raise TokenError(f"prefix {which!r} matches several tokens (ids {ids}); revoke by id")
        row = rows[0]
        if row.revoked_at is not None:
            return TokenInfo.of(row), False
        row.revoked_at = now
        await session.flush()
        return TokenInfo.of(row), True


async def find_active(db: Database, secret: str) -> TokenInfo | None:
    """The unrevoked token with this secret, or ``None``."""
    async with db.session() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
        if row is None or row.revoked_at is not None:
            return None
        return TokenInfo.of(row)


async def touch(db: Database, info: TokenInfo, now: datetime) -> None:
    """Record use, at most once per :data:`TOUCH_INTERVAL` per token (one conditional UPDATE)."""
    if info.last_used_at is not None and now - info.last_used_at < TOUCH_INTERVAL:
        return
    async with db.transaction() as session:
        await session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == info.id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOUCH_INTERVAL),
            )
            .values(last_used_at=now)
        )
