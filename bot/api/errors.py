"""JSON errors for the API: every failure is ``{"error": {"code": "...", "message": "..."}}``.

Handlers raise :class:`ApiError` (or one of the helpers below); :func:`error_middleware` turns it, and
aiohttp's own HTTP errors (unknown path, wrong method, body too large), into that shape. Anything else
is a bug: it is logged without its message (which could carry personal data from SQL parameters) and
answered with a JSON 500.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from aiohttp import web

log = logging.getLogger("bot.api")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code, e.g. `bad_param`."},
                "message": {"type": "string", "description": "What went wrong, for people."},
                "details": {"description": "Optional structured context (the offending field, allowed values)."},
            },
        }
    },
}


class ApiError(Exception):
    """An error answered as JSON with ``status``; ``code`` is stable, ``message`` is for people."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


def bad_request(message: str, code: str = "bad_request", details: Any = None) -> ApiError:
    return ApiError(400, code, message, details)


def not_found(message: str = "no such resource", details: Any = None) -> ApiError:
    return ApiError(404, "not_found", message, details)


def conflict(message: str, code: str = "conflict", details: Any = None) -> ApiError:
    return ApiError(409, code, message, details)


def unauthorized(message: str, code: str = "unauthorized") -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="api"'})


def forbidden(message: str, code: str = "forbidden", details: Any = None) -> ApiError:
    return ApiError(403, code, message, details)


def error_response(error: ApiError) -> web.Response:
    return web.Response(
        status=error.status,
        text=json.dumps(error.body(), ensure_ascii=False),
        content_type="application/json",
        headers=error.headers,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
}


def _from_http(exc: web.HTTPException) -> ApiError:
    status = exc.status
    code = _HTTP_CODES.get(status, "http_error")
    message = {
        404: "no such API route; see /api/v1/openapi.json",
        405: "method not allowed for this route",
        413: "request body too large",
    }.get(status, exc.reason or "request refused")
    headers = {}
    if "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    return ApiError(status, code, message, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http(exc))
    except Exception as exc:  # a bug: answer in JSON, log the place but not the (possibly personal) text
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("unhandled %s in %s %s\n%s", type(exc).__name__, request.method, _route_of(request), frames)
        return error_response(ApiError(500, "internal_error", "internal error; the server log has details"))


def _route_of(request: web.Request) -> str:
    """The matched route template (``/residents/{id}``), never the concrete path (it may hold ids)."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "?"
