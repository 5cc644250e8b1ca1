"""Who may open each console page: every console route is declared here with :func:`page` and the
roles that may use it, so none can exist unprotected (the security tests walk :data:`ROUTES`).

A request gets its session from the cookie (``console_sessions``); a page for someone not logged
in redirects to the login page (a GET) or is a 401; a wrong role is a 403 page; every method other
than GET must carry the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.orm import DeclarativeBase

from bot.appkeys import RUNTIME
from bot.services import accounts
from bot.services.accounts import SessionInfo, User

log = logging.getLogger("bot.web.console")

COOKIE = "csb_session"
LOGIN_CSRF_COOKIE = "csb_login_csrf"
STAFF = frozenset({"staff", "supervisor"})
CONVERSATIONS = frozenset({"staff", "supervisor", "operator"})  # reading conversations
# Operators read conversations; handling them (claim, reply, notes, release, canned replies) is staff's.
READ_ONLY_FOR_OPERATORS = "您的账号没有权限处理会话：接管、回复、备注、快捷回复和创建工单由工作人员负责，运营账号只能查看会话。"
MERCHANT = frozenset({"merchant"})
ADMIN_ONLY: frozenset[str] = frozenset()
ALL_ROLES = frozenset(accounts.ROLES)
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}
SESSION = web.RequestKey("console_session", SessionInfo)
FORM = web.RequestKey("console_form", dict[str, str])

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ConsoleRoute:
    method: str
    path: str
    roles: frozenset[str]  # admin is always allowed as well
    handler: Handler


ROUTES: list[ConsoleRoute] = []


def allowed(user: User, roles: frozenset[str]) -> bool:
    return user.role == "admin" or user.role in roles


async def current_session(request: web.Request) -> SessionInfo | None:
    raw = request.cookies.get(COOKIE, "")
    if not raw:
        return None
    rt = request.config_dict[RUNTIME]
    return await accounts.session_of(rt.db, raw, rt.clock.now())


def path_id(request: web.Request) -> int:
    """The page's ``{id}``: a number of at most nine digits, else a 404 (never a 500)."""
    raw = request.match_info.get("id", "")
    if not raw.isdigit() or len(raw) > 9:
        raise web.HTTPNotFound()
    return int(raw)


RowT = TypeVar("RowT", bound=DeclarativeBase)


async def row_of(request: web.Request, model: type[RowT]) -> RowT:
    """The ``model`` row the page's ``{id}`` names, else a 404."""
    async with request.config_dict[RUNTIME].db.session() as session:
        row = await session.get(model, path_id(request))
    if row is None:
        raise web.HTTPNotFound()
    return row


# Control characters other than tab and line breaks: invisible when pasted into a form, and a NUL
# is a text PostgreSQL cannot store (the JSON API refuses them; a console form drops them).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


async def form_of(request: web.Request) -> dict[str, str]:
    """The posted form (urlencoded or multipart text fields) without control characters, read once
    and kept on the request."""
    if FORM not in request:
        data = await request.post()
        request[FORM] = {CONTROL.sub("", k): CONTROL.sub("", v) for k, v in data.items() if isinstance(v, str)}
    return request[FORM]


def without_control_chars(request: web.Request) -> None:
    """A page's query with control characters (a filter pasted with a NUL) is asked for again
    without them."""
    if CONTROL.search(request.query_string) or any(CONTROL.search(v) for v in request.query.values()):
        query = urlencode([(CONTROL.sub("", k), CONTROL.sub("", v)) for k, v in request.query.items()])
        raise web.HTTPSeeOther(request.path + ("?" + query if query else ""))


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"status": status, "message": message}, status=status
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def wants_json(request: web.Request) -> bool:
    return request.headers.get("X-Requested-With") == "fetch" or "application/json" in request.headers.get(
        "Accept", ""
    )


def page(method: str, path: str, roles: frozenset[str], refused: str = "") -> Callable[[Handler], Handler]:
    """Declare a console route: the wrapped handler runs only for a logged-in user with one of
    ``roles`` (or admin), and, for anything but GET, with the session's CSRF token. ``refused``:
    what the 403 page tells another role (it must say 没有权限), instead of the general line."""

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if method == "GET":
                without_control_chars(request)
            info = await current_session(request)
            if info is None:
                if method == "GET" and not wants_json(request):
                    target = request.path_qs if request.path.startswith("/console") or request.path == "/merchant" else "/console"
                    raise web.HTTPSeeOther(f"/login?next={quote(target, safe='')}")
                return error_page(request, 401, "请先登录。")
            if not allowed(info.user, roles):
                log.info("console refused %s (role %s) %s %s", info.user.name, info.user.role, method, path)
                return error_page(request, 403, refused or "您的账号没有权限访问这个页面。")
            if method != "GET":
                token = request.headers.get("X-CSRF-Token") or (await form_of(request)).get("csrf")
                if not accounts.same_token(token, info.csrf):
                    log.info("console CSRF refused for %s %s %s", info.user.name, method, path)
                    return error_page(request, 403, "页面已过期或请求来源不明，请刷新页面后重试。")
            request[SESSION] = info
            response = await handler(request)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        ROUTES.append(ConsoleRoute(method, path, roles, guarded))
        return guarded

    return wrap


def user_of(request: web.Request) -> User:
    return request[SESSION].user


def base_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    info = request[SESSION]
    return {"me": info.user, "csrf": info.csrf, "path": request.path, **extra}


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, base_context(request, **context), status=status)
