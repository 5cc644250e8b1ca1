"""Login and logout. The login form is protected by a double-submit CSRF cookie; a successful
login always starts a new session (a new random id), whatever cookie the browser had."""

from __future__ import annotations

import logging
import math
import secrets
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from bot.appkeys import RUNTIME, SETTINGS
from bot.services import accounts
from bot.web.console.access import (
    ALL_ROLES,
    COOKIE,
    LOGIN_CSRF_COOKIE,
    SECURITY_HEADERS,
    form_of,
    page,
    user_of,
)

log = logging.getLogger("bot.web.console")

HOME = {"merchant": "/merchant", "operator": "/console/inbox"}


def home_of(role: str) -> str:
    return HOME.get(role, "/console/handoffs")


def safe_next(raw: str | None) -> str | None:
    """Only a path on this site (no scheme, no host, no '//' or backslash tricks)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return None
    parts = urlsplit(raw)
    return raw if not parts.scheme and not parts.netloc else None


def _login_page(request: web.Request, *, error: str = "", status: int = 200, name: str = "") -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = aiohttp_jinja2.render_template(
        "login.html", request,
        {"csrf": token, "error": error, "name": name, "next": safe_next(request.query.get("next")) or ""},
        status=status,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/login",
                        secure=request.config_dict[SETTINGS].console_secure_cookie)
    response.headers.update(SECURITY_HEADERS)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    return _login_page(request)


async def login(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not accounts.same_token(form.get("csrf"), cookie):
        return _login_page(request, error="页面已过期，请重新输入用户名和密码。", status=403)
    name, password = form.get("name", "").strip(), form.get("password", "")
    if not name or not password:
        return _login_page(request, error="请输入用户名和密码。", status=400, name=name[:64])
    rt = request.config_dict[RUNTIME]
    try:
        raw, info = await accounts.login(rt.db, name[:64], password, rt.clock.now())
    except accounts.LoginRefused as refused:
        if refused.wait.total_seconds() > 0:
            seconds = math.ceil(refused.wait.total_seconds())
            return _login_page(request, error=f"登录失败次数过多，请 {seconds} 秒后再试。", status=429,
                               name=name[:64])
        log.info("console login failed")
        return _login_page(request, error="用户名或密码不正确。", status=401, name=name[:64])
    log.info("console login: %s (%s)", info.user.name, info.user.role)
    target = safe_next(form.get("next")) or home_of(info.user.role)
    response = web.Response(status=303, headers={"Location": target, **SECURITY_HEADERS})
    response.set_cookie(COOKIE, raw, httponly=True, samesite="Strict", path="/",
                        secure=request.config_dict[SETTINGS].console_secure_cookie,
                        max_age=int(accounts.SESSION_TTL.total_seconds()))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@page("POST", "/logout", ALL_ROLES)
async def logout(request: web.Request) -> web.StreamResponse:
    from bot.web.console.access import SESSION

    await accounts.logout(request.config_dict[RUNTIME].db, request[SESSION].id_hash)
    log.info("console logout: %s", user_of(request).name)
    response = web.Response(status=303, headers={"Location": "/login"})
    response.del_cookie(COOKIE, path="/")
    return response


def setup(app: web.Application) -> None:
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
