"""Keyset paging for list routes: ``?limit=&cursor=`` in, ``{"items": [...], "next_cursor": ...}`` out.

A cursor is opaque to clients (URL-safe base64 of a small JSON array tagged with the list it
belongs to); a cursor that was tampered with or belongs to another list is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.api.errors import bad_request
from bot.api.registry import Schema

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

LIMIT: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_LIMIT,
    "default": DEFAULT_LIMIT,
    "description": f"page size (1–{MAX_LIMIT}, default {DEFAULT_LIMIT})",
}
CURSOR: Schema = {
    "type": "string",
    "maxLength": 200,
    "description": "`next_cursor` from the previous page; omit for the first page",
}


def page_of(item: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "pass as `cursor` for the next page; null on the last page",
            },
        },
    }


def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    raw = json.dumps([kind, *(v.isoformat() if isinstance(v, datetime) else v for v in values)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, types: Sequence[type], max_int: int = 2**63 - 1) -> list[Any]:
    """The values of a cursor made by :func:`encode_cursor` with ``kind``; ``types`` are int (0 to
    ``max_int``: the column's range), datetime (aware, UTC) or str."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, list) or len(data) != len(types) + 1 or data[0] != kind:
            raise ValueError("wrong shape")
        values: list[Any] = []
        for value, kind_ in zip(data[1:], types, strict=True):
            if kind_ is int:
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= max_int:
                    raise ValueError("bad int")
                values.append(value)
            elif kind_ is datetime:
                parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
                if parsed is None or parsed.tzinfo is None:
                    raise ValueError("bad datetime")
                values.append(parsed.astimezone(UTC))
            else:
                if not isinstance(value, str) or "\x00" in value:
                    raise ValueError("bad str")
                values.append(value)
        return values
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise bad_request(
            "cursor is not a cursor of this list; pass next_cursor from the previous page unchanged",
            "bad_cursor",
            {"param": "cursor"},
        ) from None
