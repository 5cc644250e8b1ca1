"""Masking of personal data and secrets before anything reaches a log line."""

from __future__ import annotations

import hashlib
import logging
import re

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_ROOM = re.compile(r"(\d+)\s*(号楼|栋|幢|单元|室|号)")


def mask_openid(openid: str | None) -> str:
    """``oABC…xyz``: enough to tell residents apart in a log or the console, not enough to identify
    one. An id too short to keep seven of its characters hidden (test and demo ids: ``o_a1``) shows
    its first character and four hex digits of its digest instead (``o…#3fa2``): two residents still
    look different, and nothing of the rest of the id is shown."""
    if not openid:
        return "-"
    if len(openid) < 16:
        return f"{openid[0]}…#{hashlib.blake2s(openid.encode(), digest_size=2).hexdigest()}"
    return f"{openid[:4]}…{openid[-3:]}"


def mask_phones(text: str | None) -> str:
    """Mobile numbers masked (``138****5678``), nothing else: what the console shows staff."""
    return _PHONE.sub(r"\1****\2", text) if text else ""


def mask_text(text: str | None, keep: int = 0) -> str:
    """Free text with phone numbers and house numbers masked; cut to ``keep`` characters if given."""
    if not text:
        return ""
    masked = _PHONE.sub(r"\1****\2", text)
    masked = _ROOM.sub(lambda m: "*" + m.group(2), masked)
    if keep and len(masked) > keep:
        masked = masked[:keep] + "…"
    return masked


# WeChat openids: 28 characters, "o" then letters, digits, "-" and "_" (test ids are shorter).
_OPENID = re.compile(r"(?<![A-Za-z0-9_-])(o[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{18,30}([A-Za-z0-9_-]{3})(?![A-Za-z0-9_-])")


def mask_line(text: str) -> str:
    """A whole log line: phone numbers and openid-shaped tokens masked (a safety net under the log
    calls, which mask what they pass; house numbers are left, a line needs its places)."""
    if not text:
        return text
    return _OPENID.sub(r"\1…\2", _PHONE.sub(r"\1****\2", text))


# Libraries whose debug or info output carries SQL, query parameters or payloads (openids, phone
# numbers, message texts), or just noise (alembic's plugin set-up). They log warnings and errors only,
# whatever BOT_LOG_LEVEL says (at INFO SQLAlchemy would echo every statement).
CHATTY_LIBRARIES = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "aiohttp.access",
    "redis",
    "alembic",
)


def quiet_chatty_libraries() -> None:
    for name in CHATTY_LIBRARIES:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
