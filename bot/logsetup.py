"""How the service logs: plain lines or JSON (``BOT_LOG_FORMAT=json``), with the request id of the
HTTP request being served and personal data masked.

Every HTTP request gets an id: the caller's ``X-Request-Id`` when it is a short token (nginx's
``$request_id``), else a new one; it is sent back in the response's ``X-Request-Id`` and put on
every log line written while the request is served (a context variable, so it follows the
request's tasks). JSON lines carry ``time``, ``level``, ``logger``, ``message``, ``request_id``,
``pid`` and, for an error, ``exc``. Whatever a line says passes :func:`bot.logmask.mask_line`
first: phone numbers and openids that a log call did not mask itself are masked here.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import random
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from bot.logmask import mask_line

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_GOOD_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
FORMATS = ("text", "json")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_line(record.getMessage()),
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
            "pid": os.getpid(),
        }
        if record.exc_info:
            entry["exc"] = mask_line(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_line(super().format(record))


def configure(level: str, fmt: str) -> None:
    """Replace the root logger's handlers with one on stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            MaskingFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] pid=%(process)d: %(message)s")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


@web.middleware
async def request_ids(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    # A label for log lines, not a secret: no system call for random bytes on every request.
    rid = given if _GOOD_ID.fullmatch(given) else f"{random.getrandbits(64):016x}"
    token = REQUEST_ID.set(rid)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers["X-Request-Id"] = rid
            raise
        if not response.prepared:
            response.headers["X-Request-Id"] = rid
        return response
    finally:
        REQUEST_ID.reset(token)
