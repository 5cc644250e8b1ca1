"""A fake WeChat API server on loopback for tests, the demo and ``python -m bot chat``.

It implements the endpoints the bot calls (``/cgi-bin/stable_token``, ``/cgi-bin/token``,
``/cgi-bin/message/custom/send``, ``/cgi-bin/message/template/send``, ``/cgi-bin/media/get``, ``/cgi-bin/media/upload``,
``/cgi-bin/menu/create``, ``/cgi-bin/menu/get``) with WeChat's error codes, records what it was sent,
and has control endpoints under ``/fake/``:

* ``GET /fake/sent?openid=&since=``: recorded customer and template messages (``msgtype``
  ``"template"``), each with an increasing ``seq``
* ``POST /fake/errors``: ``{"endpoint": "message/custom/send", "count": 3, "errcode": 45015}``
  (or ``"status": 503``, or ``"hang": 5.0`` seconds) makes the next calls fail that way; with
  ``"seconds": 60`` instead of a count, every call fails that way for that long (an outage)
* ``POST /fake/reset``, ``POST /fake/expire_tokens``, ``GET /fake/menu``, ``GET /fake/calls``
* ``POST /fake/media?filename=x.jpg`` with the bytes as body and their Content-Type: registers a
  media file and answers ``{"media_id": …}``

Run it by hand with ``python -m bot.wechat.fake_api --port 9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from bot.config import ConfigError, Settings

CUSTOM_MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle", "msgmenu", "wxcard",
     "miniprogrampage"}
)
TEXT_LIMIT_BYTES = 2048
TOKEN_TTL = 7200
MEDIA_TTL = 3 * 24 * 3600


@dataclass
class Injection:
    count: int
    errcode: int = 0
    errmsg: str = ""
    status: int = 0
    hang: float = 0.0
    until: float = 0.0  # with "seconds": every call fails this way until then (count is ignored)


@dataclass
class FakeState:
    credentials: dict[str, str]
    token_ttl: int = TOKEN_TTL
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (appid, expires)
    current: dict[str, str] = field(default_factory=dict)  # appid -> its stable token
    sent: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0
    media: dict[str, tuple[bytes, str, str, float]] = field(default_factory=dict)
    menu: dict[str, Any] | None = None
    calls: Counter[str] = field(default_factory=Counter)
    injections: dict[str, list[Injection]] = field(default_factory=dict)

    def reset(self) -> None:
        self.tokens.clear()
        self.current.clear()
        self.sent.clear()
        self.seq = 0
        self.media.clear()
        self.menu = None
        self.calls.clear()
        self.injections.clear()

    def issue_token(self, appid: str) -> tuple[str, int]:
        old = self.current.get(appid)
        if old:
            self.tokens.pop(old, None)
        token = "FAKE_" + secrets.token_urlsafe(24)
        self.tokens[token] = (appid, time.time() + self.token_ttl)
        self.current[appid] = token
        return token, self.token_ttl


STATE_KEY = web.AppKey("fake_state", FakeState)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _err(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


def _normalise_endpoint(name: str) -> str:
    name = name.strip().split("?")[0].strip("/")
    return "/" + (name if name.startswith(("cgi-bin/", "fake/")) else "cgi-bin/" + name)


@web.middleware
async def _count_and_inject(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    path = request.path
    if path.startswith("/fake/"):
        return await handler(request)
    state.calls[path] += 1
    queue = state.injections.get(path)
    while queue and queue[0].until and time.time() >= queue[0].until:
        queue.pop(0)  # an outage that is over
    if queue:
        rule = queue[0]
        if not rule.until:
            rule.count -= 1
            if rule.count <= 0:
                queue.pop(0)
        if rule.hang:
            await asyncio.sleep(rule.hang)
        if rule.status:
            return web.Response(status=rule.status, text=f"injected HTTP {rule.status}")
        if rule.errcode:
            return _err(rule.errcode, rule.errmsg or f"injected error {rule.errcode}")
    return await handler(request)


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _check_token(request: web.Request) -> web.Response | None:
    state = request.app[STATE_KEY]
    token = request.query.get("access_token", "")
    if not token:
        return _err(41001, "access_token missing")
    entry = state.tokens.get(token)
    if entry is None:
        return _err(40001, "invalid credential, access_token is invalid or not latest")
    if entry[1] <= time.time():
        return _err(42001, "access_token expired")
    return None


def _check_credentials(state: FakeState, appid: str, secret: str) -> web.Response | None:
    if appid not in state.credentials:
        return _err(40013, "invalid appid")
    if not secrets.compare_digest(state.credentials[appid].encode(), secret.encode()):
        return _err(40125, "invalid appsecret")
    return None


# -- WeChat endpoints ---------------------------------------------------------------------------


async def stable_token(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _json_body(request)
    if body is None:
        return _err(47001, "data format error")
    if body.get("grant_type") != "client_credential":
        return _err(40002, "invalid grant_type")
    refused = _check_credentials(state, str(body.get("appid", "")), str(body.get("secret", "")))
    if refused:
        return refused
    appid = str(body["appid"])
    current = state.current.get(appid)
    entry = state.tokens.get(current) if current else None
    if not body.get("force_refresh") and current and entry and entry[1] > time.time():
        return web.json_response({"access_token": current, "expires_in": int(entry[1] - time.time())})
    token, expires_in = state.issue_token(appid)
    return web.json_response({"access_token": token, "expires_in": expires_in})


async def classic_token(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if request.query.get("grant_type") != "client_credential":
        return _err(40002, "invalid grant_type")
    appid, secret = request.query.get("appid", ""), request.query.get("secret", "")
    refused = _check_credentials(state, appid, secret)
    if refused:
        return refused
    token, expires_in = state.issue_token(appid)
    return web.json_response({"access_token": token, "expires_in": expires_in})


async def custom_send(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    refused = _check_token(request)
    if refused:
        return refused
    body = await _json_body(request)
    if body is None:
        return _err(47001, "data format error")
    touser, msgtype = body.get("touser"), body.get("msgtype")
    if not isinstance(touser, str) or not touser:
        return _err(40003, "invalid openid")
    if msgtype not in CUSTOM_MSGTYPES or not isinstance(body.get(msgtype), dict):
        return _err(40008, "invalid message type")
    if msgtype == "text":
        content = body["text"].get("content")
        if not isinstance(content, str) or not content:
            return _err(44003, "empty content")
        if len(content.encode("utf-8")) > TEXT_LIMIT_BYTES:
            return _err(45002, "content size out of limit")
    state.seq += 1
    state.sent.append(
        {"seq": state.seq, "openid": touser, "msgtype": msgtype, "payload": body, "time": time.time()}
    )
    return _err(0, "ok")


async def template_send(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    refused = _check_token(request)
    if refused:
        return refused
    body = await _json_body(request)
    if body is None:
        return _err(47001, "data format error")
    touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
    if not isinstance(touser, str) or not touser:
        return _err(40003, "invalid openid")
    if not isinstance(template_id, str) or not template_id:
        return _err(40037, "invalid template_id")
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values()
    ):
        return _err(47001, "data format error")
    state.seq += 1
    state.sent.append(
        {"seq": state.seq, "openid": touser, "msgtype": "template", "payload": body, "time": time.time()}
    )
    return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": state.seq})


async def media_get(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    refused = _check_token(request)
    if refused:
        return refused
    entry = state.media.get(request.query.get("media_id", ""))
    if entry is None or entry[3] <= time.time():
        return _err(40007, "invalid media_id")
    content, content_type, filename, _ = entry
    return web.Response(
        body=content,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def media_upload(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    refused = _check_token(request)
    if refused:
        return refused
    kind = request.query.get("type", "")
    if kind not in ("image", "voice", "video", "thumb"):
        return _err(40004, "invalid media type")
    if not request.content_type.startswith("multipart/"):
        return _err(41005, "media data missing")
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == "media":
            content = await part.read()
            ctype = part.headers.get("Content-Type", "application/octet-stream")
            media_id = _register_media(state, bytes(content), ctype, part.filename or "media")
            return web.json_response({"type": kind, "media_id": media_id, "created_at": int(time.time())})
    return _err(41005, "media data missing")


async def menu_create(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    refused = _check_token(request)
    if refused:
        return refused
    body = await _json_body(request)
    if body is None:
        return _err(47001, "data format error")
    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return _err(40016, "invalid button size")
    for button in buttons:
        subs = button.get("sub_button") if isinstance(button, dict) else None
        if isinstance(subs, list) and len(subs) > 5:
            return _err(40023, "invalid sub button size")
    state.menu = body
    return _err(0, "ok")


async def menu_get(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    refused = _check_token(request)
    if refused:
        return refused
    if state.menu is None:
        return _err(46003, "menu no exist")
    return web.json_response({"menu": state.menu})


# -- control endpoints --------------------------------------------------------------------------


def _register_media(state: FakeState, content: bytes, content_type: str, filename: str) -> str:
    media_id = "FAKEMEDIA_" + secrets.token_urlsafe(18)
    state.media[media_id] = (content, content_type, filename, time.time() + MEDIA_TTL)
    return media_id


async def fake_sent(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    openid = request.query.get("openid")
    try:
        since = int(request.query.get("since", "0"))
    except ValueError:
        return web.json_response({"error": "since must be an integer"}, status=400)
    messages = [m for m in state.sent if m["seq"] > since and (not openid or m["openid"] == openid)]
    return web.json_response({"messages": messages, "last_seq": state.seq})


async def fake_errors(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _json_body(request)
    if body is None or not isinstance(body.get("endpoint"), str):
        return web.json_response({"error": "JSON body with 'endpoint' required"}, status=400)
    try:
        rule = Injection(
            count=int(body.get("count", 1)),
            errcode=int(body.get("errcode", 0)),
            errmsg=str(body.get("errmsg", "")),
            status=int(body.get("status", 0)),
            hang=float(body.get("hang", 0.0)),
            until=time.time() + float(body["seconds"]) if "seconds" in body else 0.0,
        )
    except (TypeError, ValueError):
        return web.json_response({"error": "count/errcode/status must be integers, hang a number"}, status=400)
    if rule.count < 1 or not (rule.errcode or rule.status or rule.hang):
        return web.json_response({"error": "need count >= 1 and one of errcode, status, hang"}, status=400)
    endpoint = _normalise_endpoint(body["endpoint"])
    state.injections.setdefault(endpoint, []).append(rule)
    return web.json_response({"ok": True, "endpoint": endpoint})


async def fake_reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return web.json_response({"ok": True})


async def fake_expire_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    for token, (appid, _) in list(state.tokens.items()):
        state.tokens[token] = (appid, 0.0)
    return web.json_response({"ok": True, "expired": len(state.tokens)})


async def fake_media(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    content = await request.read()
    if not content:
        return web.json_response({"error": "send the media bytes as the request body"}, status=400)
    filename = request.query.get("filename", "media.bin")
    media_id = _register_media(state, content, request.content_type or "application/octet-stream", filename)
    return web.json_response({"media_id": media_id})


async def fake_menu(request: web.Request) -> web.Response:
    return web.json_response({"menu": request.app[STATE_KEY].menu})


async def fake_calls(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app[STATE_KEY].calls))


def make_fake_app(credentials: Mapping[str, str] | None = None, *, token_ttl: int = TOKEN_TTL) -> web.Application:
    """The fake server; ``credentials`` maps appid → secret (default: the development settings)."""
    defaults = Settings()
    app = web.Application(middlewares=[_count_and_inject], client_max_size=20 * 1024 * 1024)
    app[STATE_KEY] = FakeState(
        credentials=dict(credentials or {defaults.wechat_appid: defaults.wechat_secret}), token_ttl=token_ttl
    )
    app.router.add_post("/cgi-bin/stable_token", stable_token)
    app.router.add_get("/cgi-bin/token", classic_token)
    app.router.add_post("/cgi-bin/message/custom/send", custom_send)
    app.router.add_post("/cgi-bin/message/template/send", template_send)
    app.router.add_get("/cgi-bin/media/get", media_get)
    app.router.add_post("/cgi-bin/media/upload", media_upload)
    app.router.add_post("/cgi-bin/menu/create", menu_create)
    app.router.add_get("/cgi-bin/menu/get", menu_get)
    app.router.add_get("/fake/sent", fake_sent)
    app.router.add_post("/fake/errors", fake_errors)
    app.router.add_post("/fake/reset", fake_reset)
    app.router.add_post("/fake/expire_tokens", fake_expire_tokens)
    app.router.add_post("/fake/media", fake_media)
    app.router.add_get("/fake/menu", fake_menu)
    app.router.add_get("/fake/calls", fake_calls)
    return app


@asynccontextmanager
async def run_fake_api(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    credentials: Mapping[str, str] | None = None,
    token_ttl: int = TOKEN_TTL,
) -> AsyncIterator[str]:
    """Serve the fake API on ``host:port`` (0: any free port) and yield its base URL."""
    # A short shutdown: requests held by an injected hang must not delay the end of a test.
    runner = web.AppRunner(make_fake_app(credentials, token_ttl=token_ttl), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        bound = runner.addresses[0]
        yield f"http://{host}:{bound[1]}"
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.wechat.fake_api", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--appid", help="appid to accept (default: BOT_WECHAT_APPID or the dev default)")
    parser.add_argument("--secret", help="its secret (default: BOT_WECHAT_SECRET or the dev default)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}")
        return 2
    credentials = {args.appid or settings.wechat_appid: args.secret or settings.wechat_secret}
    print(f"fake WeChat API on http://{args.host}:{args.port}", flush=True)
    web.run_app(make_fake_app(credentials), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
