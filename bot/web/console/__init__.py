"""The staff console: server-rendered pages (aiohttp-jinja2, one layout) with a small script for the
live parts; every asset from the package (``bot/web/static``). See docs/architecture.md, *Consoles*.

Every route is declared with :func:`bot.web.console.access.page` and its roles; the JSON API also
accepts a console session (CSRF header required for anything but GET)."""

from __future__ import annotations

import importlib
import logging
import traceback
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.api.auth import AUTHENTICATORS, Principal
from bot.api.errors import forbidden
from bot.appkeys import SETTINGS
from bot.logmask import mask_openid, mask_phones
from bot.services import accounts
from bot.web.console.access import ROUTES, Handler, current_session, error_page
from bot.web.console.labels import actor_name, duration, intent_name, message_kind

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE.parent / "templates"
STATIC = HERE.parent / "static"
MODULES = ("login", "conversations", "tickets", "merchants", "merchant_page", "dashboard", "tuning", "points")


async def session_login(request: web.Request) -> Principal | None:
    """The console's session cookie as an API credential; a state-changing call needs the CSRF header."""
    info = await current_session(request)
    if info is None:
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS") and not accounts.same_token(
        request.headers.get("X-CSRF-Token"), info.csrf
    ):
        raise forbidden("a console session needs the X-CSRF-Token header for this request", "csrf")
    u = info.user
    return Principal("session", u.id, u.name, u.role, merchant_id=u.merchant_id, department=u.department, user=u.name)


def _local_time(value: object, fmt: str = "%m-%d %H:%M") -> str:
    from datetime import datetime

    from bot.services.tickets import CHINA

    if not isinstance(value, datetime):
        return ""
    return value.astimezone(CHINA).strftime(fmt)


# The console's own paths: a missing page there is the console's page in Chinese, not aiohttp's
# plain "404: Not Found" (an old link, a ticket number typed into the address bar).
PATHS = ("/console", "/merchant", "/login", "/logout")
NOT_FOUND = "没有找到这个页面：链接可能有误，或者内容已经不存在了。"
BROKEN = "系统出错了，这次操作可能没有完成。请稍后刷新页面查看；如果一直这样，请联系管理员。"
HTTP_MESSAGES = {
    400: "请求的内容不完整或格式不对，请返回上一页重新填写。",
    401: "请先登录。",
    403: "您的账号没有权限访问这个页面。",
    405: "这个地址不能这样打开，请从页面上的链接或按钮进入。",
    413: "提交的内容太大了，请删减文字或换一张小一点的图片后重试。",
    429: "操作太频繁了，请稍等一会儿再试。",
}
log = logging.getLogger("bot.web.console")


@web.middleware
async def console_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(PATHS):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return error_page(request, 404, NOT_FOUND)
    except web.HTTPException as exc:  # aiohttp's own (a body too large, a bad form): its page is English
        if exc.status < 400:
            raise
        if exc.status >= 500:
            _log_bug(request, exc)
            return error_page(request, exc.status, BROKEN)
        return error_page(request, exc.status,
                          HTTP_MESSAGES.get(exc.status, f"请求没有完成（错误码 {exc.status}），请返回上一页重试。"))
    except ConnectionResetError:  # the browser left; nobody to answer
        raise
    except Exception as exc:  # a bug, or the database gone: the console's page, never aiohttp's English one
        _log_bug(request, exc)
        return error_page(request, 500, BROKEN)


def _log_bug(request: web.Request, exc: BaseException) -> None:
    """The place (route template, frames), not the message: it may hold personal data from SQL parameters."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    resource = request.match_info.route.resource
    log.error("unhandled %s in %s %s\n%s", type(exc).__name__, request.method,
              resource.canonical if resource is not None else "?", frames)


def setup(app: web.Application, api: web.Application | None) -> None:
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["phones"] = mask_phones
    env.filters["openid"] = mask_openid
    env.filters["local"] = _local_time
    env.filters["intent"] = intent_name
    env.filters["actor"] = actor_name
    env.globals["message_kind"] = message_kind
    env.globals["duration"] = duration
    env.globals["secure_cookie"] = app[SETTINGS].console_secure_cookie
    app.router.add_static("/static", STATIC, show_index=False, follow_symlinks=False)
    app.middlewares.append(console_errors)
    for name in MODULES:
        module = importlib.import_module(f"bot.web.console.{name}")
        if hasattr(module, "setup"):
            module.setup(app)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    if api is not None:
        api[AUTHENTICATORS].append(session_login)
