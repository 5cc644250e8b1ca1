"""The resident simulator: a phone-like chat page at ``/simulator`` and its JSON routes.

Messages go over the same wire real WeChat uses: the backend builds signed (and, in compatible and
safe mode, encrypted) XML with :class:`~bot.wechat.simulate.WeChatSender` and POSTs it to this
service's own ``/wechat``. Customer-service messages (deferred answers, pushes) are read back from
the fake WeChat API's record (``/fake/sent``).

The simulator signs its requests with the real token, so it sends them only to this server's own
address — the host and port it was told to listen on (a wildcard address becomes loopback), never
one taken from the request (a forged ``Host`` header would otherwise receive a validly signed
request to replay). And since its routes need no token, the service refuses to start with the
simulator on an address other than loopback unless ``BOT_SIMULATOR_PUBLIC=1`` says that this is a
demo exposed on purpose (:func:`exposure_problem`).

Routes (demo/simulator mode only, no API token):

* ``GET  /simulator``: the page; ``/simulator/static/…`` its script and style
* ``GET  /simulator/api/config``: modes, the custom menu, presets
* ``POST /simulator/api/send``: ``{"openid", "mode", "type", …}`` → the passive reply
* ``GET  /simulator/api/messages?openid=&since=``: customer-service messages from the fake API
* ``POST /simulator/api/media?filename=``: image bytes as the body → ``{"media_id"}``
* ``GET  /simulator/api/media/{media_id}``: an image the assistant sent (a coupon's QR code), fetched
  from the (fake) WeChat API through the service's client, so the page shows it instead of "[图片]"
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from yarl import URL

from bot.appkeys import RUNTIME, SETTINGS
from bot.config import WECHAT_API_BASE, Settings
from bot.logmask import mask_openid
from bot.wechat.crypto import CryptoError
from bot.wechat.parsing import BadMessage
from bot.wechat.simulate import MODES, WeChatSender, xml_of

log = logging.getLogger("bot.simulator")

STATIC = Path(__file__).resolve().parent / "static"
MENU_FILE = Path(__file__).resolve().parent.parent / "wechat" / "menu.yml"

OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_JSON_BYTES = 64 * 1024
MAX_TEXT_CHARS = 2000
MAX_LABEL_CHARS = 100
MAX_KEY_CHARS = 128
MAX_IMAGE_BYTES = 2 * 1024 * 1024
IMAGE_MAGIC = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
SEND_TYPES = ("text", "voice", "image", "location", "link", "click", "view", "subscribe", "unsubscribe", "scan")

PRESETS: dict[str, Any] = {
    "locations": [
        {"label": "山西省大同市平城区新建南路", "lat": 40.0768, "lng": 113.3001},
        {"label": "山西省大同市平城区魏都大道", "lat": 40.0912, "lng": 113.2968},
    ],
    "scenes": ["building:新建南社区/3号楼", "building:新建南社区/12号楼", "poster:spring-festival"],
}

HTTP = web.AppKey("simulator_http", aiohttp.ClientSession)


_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def is_loopback(host: str) -> bool:
    """``host`` (an address to listen on) is loopback only: 127.0.0.0/8, ::1 or localhost."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_problem(settings: Settings) -> str | None:
    """Why the simulator must not run with these settings (None: it may)."""
    if not settings.simulator or settings.simulator_public or is_loopback(settings.host):
        return None
    return (
        f"the resident simulator (BOT_SIMULATOR=1 or --demo) needs no token and must not listen on "
        f"{settings.host or 'every address'!s}: listen on loopback (--host 127.0.0.1, the default), or set "
        "BOT_SIMULATOR_PUBLIC=1 if this is a demo exposed on purpose"
    )


def own_wechat_url(request: web.Request, settings: Settings) -> str:
    """This server's own /wechat: the configured host (a wildcard → loopback) and port (when it
    is 0, the port of the socket this request came in on) — never the request's Host header."""
    host = settings.host.strip().strip("[]")
    host = _WILDCARDS.get(host, host)
    port = settings.port
    if not port:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = int(sockname[1]) if sockname else 0
    return str(URL.build(scheme="http", host=host, port=port, path="/wechat"))


class BadInput(ValueError):
    """The request cannot be used; the message (Chinese, for the tester) says why."""


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


# -- input checks -------------------------------------------------------------------------------


def _str(data: dict[str, Any], name: str, limit: int, *, required: bool = True, what: str = "") -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadInput(f"{what or name} 必须是文字")
    value = value.strip()
    if required and not value:
        raise BadInput(f"{what or name} 不能为空")
    if len(value) > limit:
        raise BadInput(f"{what or name} 太长了（最多 {limit} 个字）")
    return value


def _coordinate(data: dict[str, Any], name: str, bound: float, what: str) -> float:
    value = data.get(name)
    if isinstance(value, bool):
        raise BadInput(f"{what}必须是数字")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInput(f"{what}必须是数字，收到 {value!r}") from None
    if not -bound <= number <= bound or number != number:
        raise BadInput(f"{what}必须在 -{bound:g} 到 {bound:g} 之间")
    return round(number, 6)


def check_openid(value: Any) -> str:
    if not isinstance(value, str) or not OPENID.match(value.strip()):
        raise BadInput("openid 只能由字母、数字、_ 和 - 组成，最长 64 个字符")
    return value.strip()


def check_mode(value: Any, settings: Settings) -> str:
    mode = value if isinstance(value, str) and value else default_mode(settings)
    if mode not in MODES:
        raise BadInput(f"mode 必须是 {' / '.join(MODES)} 之一")
    if mode != "plain" and not settings.safe_mode_enabled:
        raise BadInput(f"{mode} 模式需要配置 BOT_WECHAT_AES_KEY")
    if mode == "plain" and not settings.accepts_plaintext:
        raise BadInput("配置了 BOT_WECHAT_AES_KEY 时 /wechat 只接受加密消息；明文模式需要 BOT_WECHAT_ALLOW_PLAINTEXT=1")
    return mode


def modes(settings: Settings) -> list[str]:
    """The modes /wechat accepts with these settings."""
    return [m for m in MODES if (m == "plain" and settings.accepts_plaintext) or (m != "plain" and settings.safe_mode_enabled)]


def default_mode(settings: Settings) -> str:
    return "safe" if settings.safe_mode_enabled else "plain"


class EventClock:
    """CreateTime for events: WeChat deduplicates events by sender + CreateTime + event, so two
    quick clicks by one tester within a second get distinct, increasing times (never in the past)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self.last: OrderedDict[str, int] = OrderedDict()

    def stamp(self, openid: str) -> int:
        now = int(time.time())
        stamp = max(now, self.last.pop(openid, 0) + 1)
        self.last[openid] = stamp
        while len(self.last) > self.capacity:
            self.last.popitem(last=False)
        return stamp


EVENT_CLOCK = EventClock()


def build_fields(sender: WeChatSender, openid: str, data: dict[str, Any]) -> dict[str, Any]:
    """The message WeChat would send for one simulator action; raises :class:`BadInput`."""
    fields = _build_fields(sender, openid, data)
    if fields.get("MsgType") == "event":
        fields["CreateTime"] = EVENT_CLOCK.stamp(openid)
    return fields


def _build_fields(sender: WeChatSender, openid: str, data: dict[str, Any]) -> dict[str, Any]:
    kind = data.get("type")
    if kind not in SEND_TYPES:
        raise BadInput(f"type 必须是 {', '.join(SEND_TYPES)} 之一")
    if kind == "text":
        return sender.text(openid, _str(data, "text", MAX_TEXT_CHARS, what="消息内容"))
    if kind == "voice":
        recognition = _str(data, "text", MAX_TEXT_CHARS, required=False, what="语音识别文字")
        return sender.voice(openid, recognition or None)
    if kind == "image":
        media_id = _str(data, "media_id", 128, what="media_id")
        if not MEDIA_ID.match(media_id):
            raise BadInput("media_id 格式不对，请先上传图片")
        return sender.image(openid, media_id)
    if kind == "location":
        lat = _coordinate(data, "lat", 90, "纬度")
        lng = _coordinate(data, "lng", 180, "经度")
        label = _str(data, "label", MAX_LABEL_CHARS, required=False, what="地点名称")
        return sender.location(openid, lat, lng, label)
    if kind == "link":
        url = _str(data, "url", 1024, what="链接地址")
        title = _str(data, "title", MAX_LABEL_CHARS, required=False, what="标题") or url
        return sender.link(openid, title, url)
    if kind == "click":
        return sender.event(openid, "CLICK", _str(data, "key", MAX_KEY_CHARS, what="菜单 key"))
    if kind == "view":
        return sender.event(openid, "VIEW", _str(data, "url", 1024, what="菜单链接"))
    if kind == "subscribe":
        scene = _str(data, "scene", MAX_KEY_CHARS, required=False, what="场景值")
        # A plain follow carries an empty EventKey; following through a QR code carries qrscene_<scene>.
        return sender.event(openid, "subscribe", f"qrscene_{scene}" if scene else "")
    if kind == "scan":
        return sender.event(openid, "SCAN", _str(data, "scene", MAX_KEY_CHARS, what="场景值"), Ticket="SIM")
    return sender.event(openid, "unsubscribe", "")


def describe_custom(message: dict[str, Any]) -> str:
    """A customer-service message (``message/custom/send`` body) as one readable text."""
    payload = message.get("payload") if isinstance(message.get("payload"), dict) else message
    assert isinstance(payload, dict)
    msgtype = str(payload.get("msgtype", message.get("msgtype", "")))
    body = payload.get(msgtype)
    if not isinstance(body, dict):
        return f"[{msgtype}]"
    if msgtype == "text":
        return str(body.get("content", ""))
    if msgtype == "news":
        articles = body.get("articles") or []
        titles = [str(a.get("title", "")) for a in articles if isinstance(a, dict)]
        return "[图文] " + "；".join(titles)
    if msgtype == "msgmenu":
        items = [str(i.get("content", "")) for i in body.get("list") or [] if isinstance(i, dict)]
        lines = [str(body.get("head_content", "")), *(f"· {i}" for i in items), str(body.get("tail_content", ""))]
        return "\n".join(line for line in lines if line)
    names = {"image": "图片", "voice": "语音", "video": "视频", "music": "音乐", "mpnews": "图文"}
    return f"[{names.get(msgtype, msgtype)}]"


def describe_reply(reply: dict[str, Any] | None) -> dict[str, Any] | None:
    """A passive reply's fields as JSON for the page."""
    if reply is None:
        return None
    kind = str(reply.get("MsgType", "text"))
    out: dict[str, Any] = {"type": kind}
    if kind == "text":
        out["content"] = str(reply.get("Content", ""))
    elif kind == "news":
        articles = reply.get("Articles", {})
        items = articles.get("item", []) if isinstance(articles, dict) else []
        items = items if isinstance(items, list) else [items]
        out["articles"] = [
            {"title": str(i.get("Title", "")), "description": str(i.get("Description", "")),
             "url": str(i.get("Url", ""))}
            for i in items if isinstance(i, dict)
        ]
        out["content"] = "[图文] " + "；".join(a["title"] for a in out["articles"])
    else:
        out["content"] = f"[{kind}]"
    return out


# -- routes -------------------------------------------------------------------------------------


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is over ``limit`` (the rest is drained so the client reads our answer)."""
    body = await request.content.read(limit + 1)
    if len(body) <= limit:
        return body
    drained = 0
    while drained < 64 * 1024 * 1024 and await request.content.read(256 * 1024):
        drained += 256 * 1024
    return None


async def page(request: web.Request) -> web.StreamResponse:
    response = web.FileResponse(STATIC / "simulator.html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/simulator")


def _menu() -> list[dict[str, Any]]:
    try:
        from bot.commands.menu import MenuError, load_menu
    except ImportError:  # pragma: no cover - the menu command is part of the package
        return []
    try:
        buttons = load_menu(MENU_FILE).get("button", [])
    except MenuError as exc:
        log.warning("simulator: menu file unusable: %s", exc)
        return []
    menu = []
    for button in buttons:
        subs = button.get("sub_button") or [button]
        menu.append(
            {
                "name": button.get("name", ""),
                "sub_button": [
                    {k: s[k] for k in ("type", "name", "key", "url") if k in s} for s in subs
                ],
            }
        )
    return menu


def _demo_openids() -> list[dict[str, str]]:
    """The demo residents (``python -m bot demo load``), offered as openids to pick."""
    try:
        data = yaml.safe_load((Path(__file__).resolve().parent / "demo_data.yml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    residents = data.get("residents") if isinstance(data, dict) else None
    out = []
    for resident in residents if isinstance(residents, list) else []:
        if isinstance(resident, dict) and isinstance(resident.get("openid"), str):
            where = "".join(str(resident.get(k) or "") for k in ("community", "building"))
            out.append({"openid": resident["openid"], "label": f"演示居民 {where}".strip()})
    return out


async def config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "modes": modes(settings),
            "default_mode": default_mode(settings),
            "menu": _menu(),
            "presets": PRESETS,
            "openids": _demo_openids(),
            "fake_api": settings.wechat_api_base != WECHAT_API_BASE,
            "max_image_bytes": MAX_IMAGE_BYTES,
        }
    )


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await _read_limited(request, MAX_JSON_BYTES)
    if raw is None:
        raise BadInput("请求太大")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadInput("请求不是有效的 JSON") from None
    if not isinstance(data, dict):
        raise BadInput("请求必须是 JSON 对象")
    return data


async def send(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    try:
        data = await _json(request)
        openid = check_openid(data.get("openid"))
        mode = check_mode(data.get("mode"), settings)
        wechat_url = own_wechat_url(request, settings)
        sender = WeChatSender(
            wechat_url, settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key, mode=mode
        )
        fields = build_fields(sender, openid, data)
    except BadInput as exc:
        return _bad(str(exc))
    try:
        sent = await sender.send(request.app[HTTP], fields)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("simulator: cannot reach %s: %s", wechat_url, type(exc).__name__)
        return web.json_response({"error": f"无法连接 /wechat：{type(exc).__name__}"}, status=502)
    except (CryptoError, BadMessage) as exc:
        return web.json_response({"error": f"回复无法解密或解析：{exc}"}, status=502)
    if sent.status != 200:
        return web.json_response(
            {"error": f"/wechat 拒绝了消息（HTTP {sent.status}）：{sent.body[:200]}"}, status=502
        )
    log.debug("simulator: %s %s via %s", mask_openid(openid), fields.get("MsgType"), mode)
    reply = describe_reply(sent.reply)
    return web.json_response(
        {
            "status": "replied" if reply else "deferred",
            "reply": reply,
            "mode": mode,
            "xml": xml_of(fields),
        }
    )


async def messages(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    try:
        openid = check_openid(request.query.get("openid"))
        since_raw = request.query.get("since", "0") or "0"
        if not since_raw.isdigit() or len(since_raw) > 18:
            raise BadInput("since 必须是非负整数")
    except BadInput as exc:
        return _bad(str(exc))
    if settings.wechat_api_base == WECHAT_API_BASE:
        return web.json_response(
            {"error": "没有模拟的微信接口：请用 python -m bot serve --demo 启动"}, status=409
        )
    url = f"{settings.wechat_api_base}/fake/sent"
    try:
        async with request.app[HTTP].get(url, params={"openid": openid, "since": since_raw}) as resp:
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return web.json_response({"error": f"无法连接模拟的微信接口：{type(exc).__name__}"}, status=502)
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        return web.json_response({"error": "模拟的微信接口回答格式不对"}, status=502)
    out = [
        {
            "seq": m.get("seq"),
            "msgtype": m.get("msgtype"),
            "text": describe_custom(m),
            "time": m.get("time"),
            **_image_of(m),
        }
        for m in data["messages"]
        if isinstance(m, dict)
    ]
    return web.json_response({"messages": out, "last_seq": data.get("last_seq", 0)})


def _image_of(message: dict[str, Any]) -> dict[str, str]:
    """For an image message: the URL the page loads it from."""
    payload = message.get("payload")
    image = payload.get("image") if isinstance(payload, dict) and message.get("msgtype") == "image" else None
    media_id = image.get("media_id") if isinstance(image, dict) else None
    if isinstance(media_id, str) and MEDIA_ID.match(media_id):
        return {"image": f"/simulator/api/media/{media_id}"}
    return {}


async def sent_image(request: web.Request) -> web.Response:
    media_id = request.match_info["media_id"]
    api = request.app[RUNTIME].api
    if not MEDIA_ID.match(media_id) or api is None:
        return web.json_response({"error": "没有这张图片"}, status=404)
    try:
        media = await api.download_media(media_id, max_bytes=MAX_IMAGE_BYTES)
    except Exception as exc:  # WeChat's refusal (expired id), too large, unreachable: no picture
        log.info("simulator: image %s not shown: %s", media_id[:12], type(exc).__name__)
        return web.json_response({"error": "图片已过期或无法获取"}, status=404)
    ctype = image_type(media.content)
    if ctype is None:
        return web.json_response({"error": "不是图片"}, status=404)
    return web.Response(body=media.content, content_type=ctype, headers={"Cache-Control": "private, max-age=3600"})


def image_type(content: bytes) -> str | None:
    for magic, ctype in IMAGE_MAGIC.items():
        if content.startswith(magic):
            return ctype
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


async def media(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.content_length is not None and request.content_length > MAX_IMAGE_BYTES:
        await _read_limited(request, 0)
        return _bad(f"图片太大了（最多 {MAX_IMAGE_BYTES // (1024 * 1024)} MB）")
    content = await _read_limited(request, MAX_IMAGE_BYTES)
    if content is None:
        return _bad(f"图片太大了（最多 {MAX_IMAGE_BYTES // (1024 * 1024)} MB）")
    if not content:
        return _bad("没有收到图片内容")
    ctype = image_type(content)
    if ctype is None:
        return _bad("只能发送 JPG、PNG、GIF 或 WebP 图片")
    if settings.wechat_api_base == WECHAT_API_BASE:
        return web.json_response(
            {"error": "没有模拟的微信接口：请用 python -m bot serve --demo 启动"}, status=409
        )
    filename = re.sub(r"[^\w.-]", "_", request.query.get("filename", "image"))[:80] or "image"
    try:
        async with request.app[HTTP].post(
            f"{settings.wechat_api_base}/fake/media",
            params={"filename": filename},
            data=content,
            headers={"Content-Type": ctype},
        ) as resp:
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return web.json_response({"error": f"无法连接模拟的微信接口：{type(exc).__name__}"}, status=502)
    media_id = data.get("media_id") if isinstance(data, dict) else None
    if not isinstance(media_id, str):
        return web.json_response({"error": "模拟的微信接口没有返回 media_id"}, status=502)
    return web.json_response({"media_id": media_id, "content_type": ctype, "bytes": len(content)})


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=15)
    app[HTTP] = aiohttp.ClientSession(timeout=timeout)
    yield
    with contextlib.suppress(Exception):
        await app[HTTP].close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_http_client)
    app.router.add_get("/", root)
    app.router.add_get("/simulator", page)
    app.router.add_static("/simulator/static", STATIC, show_index=False, follow_symlinks=False)
    app.router.add_get("/simulator/api/config", config)
    app.router.add_post("/simulator/api/send", send)
    app.router.add_get("/simulator/api/messages", messages)
    app.router.add_post("/simulator/api/media", media)
    app.router.add_get("/simulator/api/media/{media_id}", sent_image)
