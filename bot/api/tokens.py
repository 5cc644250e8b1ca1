"""API tokens: created once (the secret is shown only then), stored as a SHA-256 hash, revocable.

A token looks like ``csb_`` followed by 43 URL-safe characters (256 random bits). The first 12
characters are kept in clear as its ``prefix`` so people can tell tokens apart and revoke one.
A random 256-bit secret needs no slow password hash: SHA-256 cannot be searched backwards.

A staff token has a scope, as a staff member has in the console: a department (``--department``)
or the console user it was issued for (``--user NAME``: that user's role, department and name, read
at every use; refused once the user is disabled). It sees that department's tickets and those
assigned to its name; a staff token with neither sees only the latter.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from bot.storage.db import Database
from bot.storage.models import ApiToken, ConsoleUser, Merchant, MerchantAccount

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
DEPARTMENT_MAX = 64  # the column's width, as a console user's
SCOPED_ROLES = frozenset({"staff"})  # roles whose tokens see one department's tickets


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
    department: str | None = None  # a staff token's department (its user's, when issued for one)
    user: str | None = None  # the console user it was issued for: the name it handles tickets as
    user_id: int | None = None

    @classmethod
    def of(cls, row: ApiToken, user: ConsoleUser | None = None) -> TokenInfo:
        """The token as it acts now: issued for a console user, with that user's role and department."""
        role, department = (user.role, user.department) if user is not None else (row.role, row.department)
        return cls(row.id, row.name, role, row.prefix, row.created_at, row.revoked_at, row.last_used_at,
                   department=department, user=user.name if user is not None else None, user_id=row.user_id)

    @property
    def handler(self) -> str:
        """The name it takes tickets as (接单: the assignee), as its user does in the console."""
        return self.user or self.name

    def scope(self) -> str:
        """What it sees of the tickets, said in a line (``token list``)."""
        if self.role not in SCOPED_ROLES:
            return "-"
        return f"department {self.department}" if self.department else f"assigned to {self.handler} only"


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


def check_department(role: str, department: str | None) -> str | None:
    if department is None:
        return None
    department = department.strip()
    if role not in SCOPED_ROLES:
        raise TokenError(f"a department scopes a staff token only; a {role} token sees "
                         + ("every department's tickets" if role in ("admin", "supervisor") else "no tickets"))
    if not 0 < len(department) <= DEPARTMENT_MAX or any(ord(c) < 32 or ord(c) == 127 for c in department):
        raise TokenError(f"the department must be 1 to {DEPARTMENT_MAX} characters without control characters")
    return department


async def create_token(
    db: Database, name: str, role: str, now: datetime, *, department: str | None = None
) -> tuple[str, TokenInfo]:
    """Store a new token; returns the secret (shown once) and its description. ``department``: a
    staff token's scope (the tickets of that department and those assigned to the token's name)."""
    name, role = check_name(name), check_role(role)
    department = check_department(role, department)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        role=role,
        department=department,
        token_hash=hash_token(secret),
        prefix=secret[:PREFIX_LENGTH],
        created_at=now,
    )
    async with db.transaction() as session:
        session.add(row)
        await session.flush()
        info = TokenInfo.of(row)
    return secret, info


async def create_user_token(
    db: Database, user_name: str, now: datetime, *, name: str | None = None, role: str | None = None,
    department: str | None = None,
) -> tuple[str, TokenInfo]:
    """A token issued for the console user ``user_name``: it acts with that user's role, department
    and name (read at every use, so a move to another department moves the token too, and a
    disabled user's token is refused). ``role``/``department``, when given, must be the user's."""
    async with db.transaction() as session:
        user = await session.scalar(select(ConsoleUser).where(ConsoleUser.name == user_name.strip()))
        if user is None:
            raise TokenError(f"no console user named {user_name!r}; `python -m bot user list` shows them")
        if user.disabled_at is not None:
            raise TokenError(f"the console user {user.name!r} is disabled")
        if user.role == "merchant":
            raise TokenError("a merchant's token names its merchant: --role merchant --merchant ID")
        if role is not None and role != user.role:
            raise TokenError(f"{user.name!r} is a {user.role}: a token issued for them has their role, not {role!r}")
        if department is not None and department.strip() != (user.department or ""):
            raise TokenError(f"a token issued for {user.name!r} has their department "
                             f"({user.department or 'none'}), not {department.strip()!r}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(
            name=check_name(name or user.name), role=user.role, department=user.department, user_id=user.id,
            token_hash=hash_token(secret), prefix=secret[:PREFIX_LENGTH], created_at=now,
        )
        session.add(row)
        await session.flush()
        return secret, TokenInfo.of(row, user)


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
        query = (select(ApiToken, ConsoleUser).outerjoin(ConsoleUser, ConsoleUser.id == ApiToken.user_id)
                 .order_by(ApiToken.id))
        if not include_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        return [TokenInfo.of(row, user) for row, user in (await session.execute(query)).all()]


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
    """The unrevoked token with this secret, or ``None`` (also when it was issued for a console
    user who is disabled or gone). One statement: the user, if any, is joined."""
    async with db.session() as session:
        found = (await session.execute(
            select(ApiToken, ConsoleUser).outerjoin(ConsoleUser, ConsoleUser.id == ApiToken.user_id)
            .where(ApiToken.token_hash == hash_token(secret))
        )).first()
        if found is None:
            return None
        row, user = found
        if row.revoked_at is not None or (row.user_id is not None and (user is None or user.disabled_at is not None)):
            return None
        return TokenInfo.of(row, user)


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
