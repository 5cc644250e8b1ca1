"""Console accounts: users with argon2 password hashes, login sessions kept in the database, and a
growing wait after repeated failed logins.

A session's cookie value is 32 random bytes; only its SHA-256 is stored (``console_sessions``),
with the CSRF token every state-changing request must carry. Sessions live in the database so every
server process shares them, and logout, a password change or disabling a user ends them at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update

from bot.storage.db import Database
from bot.storage.models import ConsoleLoginFailure, ConsoleSession, ConsoleUser, Merchant

ROLES = ("staff", "supervisor", "operator", "merchant", "admin")
ROLE_LABELS = {
    "staff": "工作人员",
    "supervisor": "主管",
    "operator": "运营",
    "merchant": "商户",
    "admin": "管理员",
}
NAME = re.compile(r"[\w.\-@\u4e00-\u9fff]{2,64}")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
SESSION_TTL = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)
FREE_FAILURES = 3  # failures before the wait starts
MAX_WAIT = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verified against when the name is unknown, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(Exception):
    """A refused account change; the message is for people (English, the CLI prints it)."""


class LoginRefused(Exception):
    """Wrong name or password (``wait`` = 0), or too many failures: try again after ``wait``."""

    def __init__(self, wait: timedelta) -> None:
        super().__init__("login refused")
        self.wait = wait


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    department: str | None
    merchant_id: int | None

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


@dataclass(frozen=True)
class SessionInfo:
    user: User
    csrf: str
    id_hash: str


def _user(row: ConsoleUser) -> User:
    return User(row.id, row.name, row.role, row.department, row.merchant_id)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password must have at most {MAX_PASSWORD} characters")
    return password


async def add_user(
    db: Database,
    name: str,
    role: str,
    password: str,
    now: datetime,
    *,
    department: str | None = None,
    merchant_id: int | None = None,
) -> User:
    name = name.strip()
    if not NAME.fullmatch(name):
        raise AccountError("the name must be 2 to 64 letters, digits, Chinese characters or . - _ @")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if role == "merchant" and merchant_id is None:
        raise AccountError("a merchant account needs its merchant (--merchant ID)")
    if role != "merchant" and merchant_id is not None:
        raise AccountError("only a merchant account belongs to a merchant")
    if department is not None and not (0 < len(department.strip()) <= 64):
        raise AccountError("the department must be 1 to 64 characters")
    check_password(password)
    hashed = _hasher.hash(password)
    async with db.transaction() as session:
        if await session.scalar(select(ConsoleUser.id).where(ConsoleUser.name == name)) is not None:
            raise AccountError(f"a user named {name!r} exists")
        if merchant_id is not None and await session.get(Merchant, merchant_id) is None:
            raise AccountError(f"no merchant with id {merchant_id}")
        row = ConsoleUser(
            name=name, role=role, department=department.strip() if department else None,
            merchant_id=merchant_id, password_hash=hashed, created_at=now, updated_at=now,
        )
        session.add(row)
        await session.flush()
        return _user(row)


async def _by_name(db: Database, name: str) -> ConsoleUser:
    async with db.session() as session:
        row = await session.scalar(select(ConsoleUser).where(ConsoleUser.name == name.strip()))
    if row is None:
        raise AccountError(f"no user named {name!r}")
    return row


async def set_password(db: Database, name: str, password: str, now: datetime) -> None:
    """A new password; every session of the user ends."""
    check_password(password)
    row = await _by_name(db, name)
    hashed = _hasher.hash(password)
    async with db.transaction() as session:
        await session.execute(
            update(ConsoleUser).where(ConsoleUser.id == row.id).values(password_hash=hashed, updated_at=now)
        )
        await session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == row.id))


async def disable(db: Database, name: str, now: datetime) -> None:
    """The user can no longer log in; their sessions end now."""
    row = await _by_name(db, name)
    async with db.transaction() as session:
        await session.execute(
            update(ConsoleUser).where(ConsoleUser.id == row.id).values(disabled_at=now, updated_at=now)
        )
        await session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == row.id))


async def list_users(db: Database) -> list[ConsoleUser]:
    async with db.session() as session:
        return list((await session.scalars(select(ConsoleUser).order_by(ConsoleUser.id))).all())


def wait_after(failures: int) -> timedelta:
    """How long the next attempt waits after ``failures`` failures in a row: none for the first
    few, then 2, 4, 8 … seconds, at most 15 minutes."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(MAX_WAIT, timedelta(seconds=2 ** (failures - FREE_FAILURES + 1)))


async def login(db: Database, name: str, password: str, now: datetime) -> tuple[str, SessionInfo]:
    """Check the name and password; a new session (cookie value, session) or :class:`LoginRefused`."""
    key = name.strip().lower()[:64]
    async with db.session() as session:
        failure = await session.get(ConsoleLoginFailure, key)
        if failure is not None and failure.blocked_until is not None and failure.blocked_until > now:
            raise LoginRefused(failure.blocked_until - now)
        row = await session.scalar(select(ConsoleUser).where(ConsoleUser.name == name.strip()))
    ok = False
    try:
        ok = _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        ok = False
    if row is None or row.disabled_at is not None or not ok:
        await _failed(db, key, now)
        raise LoginRefused(timedelta(0))
    raw = secrets.token_urlsafe(32)
    info = SessionInfo(_user(row), secrets.token_urlsafe(32), digest(raw))
    async with db.transaction() as session:
        await session.execute(delete(ConsoleLoginFailure).where(ConsoleLoginFailure.name == key))
        await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        session.add(ConsoleSession(
            id_hash=info.id_hash, user_id=row.id, csrf=info.csrf,
            created_at=now, last_seen_at=now, expires_at=now + SESSION_TTL,
        ))
        values: dict[str, object] = {"last_login_at": now}
        if _hasher.check_needs_rehash(row.password_hash):
            values["password_hash"] = _hasher.hash(password)
        await session.execute(update(ConsoleUser).where(ConsoleUser.id == row.id).values(**values))
    return raw, info


async def _failed(db: Database, key: str, now: datetime) -> None:
    async with db.transaction() as session:
        row = await session.get(ConsoleLoginFailure, key, with_for_update=True)
        if row is None:
            row = ConsoleLoginFailure(name=key, failures=0, last_at=now)
            session.add(row)
        row.failures += 1
        row.last_at = now
        wait = wait_after(row.failures)
        row.blocked_until = now + wait if wait else None


async def session_of(db: Database, raw: str, now: datetime) -> SessionInfo | None:
    """The live session of a cookie value (sliding expiry), or None."""
    if not raw or len(raw) > 100:
        return None
    id_hash = digest(raw)
    async with db.session() as session:
        found = (await session.execute(
            select(ConsoleSession, ConsoleUser)
            .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
            .where(ConsoleSession.id_hash == id_hash)
        )).first()
    if found is None:
        return None
    sess, user = found
    if sess.expires_at <= now or user.disabled_at is not None:
        return None
    if now - sess.last_seen_at >= TOUCH_EVERY:
        async with db.transaction() as session:
            await session.execute(
                update(ConsoleSession).where(ConsoleSession.id_hash == id_hash)
                .values(last_seen_at=now, expires_at=now + SESSION_TTL)
            )
    return SessionInfo(_user(user), sess.csrf, id_hash)


async def logout(db: Database, id_hash: str) -> None:
    async with db.transaction() as session:
        await session.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == id_hash))


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


DEMO_USERS = (
    ("admin", "admin", None),
    ("zhuguan", "supervisor", None),
    ("wuye", "staff", "物业服务中心"),
    ("yunying", "operator", None),
    ("shanghu", "merchant", None),
)


async def demo_users(db: Database, now: datetime) -> list[tuple[str, str, str]]:
    """Demo accounts (``make run``): each gets a fresh random password, returned to be printed;
    the merchant account belongs to the first merchant (none without merchants)."""
    async with db.session() as session:
        merchant_id = await session.scalar(select(Merchant.id).order_by(Merchant.id).limit(1))
    made: list[tuple[str, str, str]] = []
    for name, role, department in DEMO_USERS:
        if role == "merchant" and merchant_id is None:
            continue
        password = secrets.token_urlsafe(9)
        try:
            await add_user(db, name, role, password, now, department=department,
                           merchant_id=merchant_id if role == "merchant" else None)
        except AccountError:  # there already: a new password, so the printed one works
            await set_password(db, name, password, now)
        made.append((name, role, password))
    return made
