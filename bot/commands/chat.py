"""``python -m bot chat``: talk to the running server as a resident, from the terminal.

Every line is sent to the server's ``/wechat`` as WeChat would send it: signed with the Token and,
in compatible and safe mode, encrypted with the EncodingAESKey (both from the same settings as the
server: ``BOT_WECHAT_TOKEN``, ``BOT_WECHAT_APPID``, ``BOT_WECHAT_AES_KEY``). The passive reply is
printed; customer-service messages (deferred answers, status pushes) are read back from the server's
``/simulator/api/messages`` (demo mode), or from the fake WeChat API at ``BOT_WECHAT_API_BASE``.

Works with piped input too: it exits at end of input after printing the messages still on their way.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.config import WECHAT_API_BASE, Settings
from bot.wechat.simulate import MODES, WeChatSender

HELP = """\
Type a message and press Enter to send it as text. Commands:
  /image PATH              send a picture (JPG, PNG, GIF or WebP, at most 2 MB)
  /location LAT LNG LABEL  send a location, e.g. /location 40.0768 113.3001 平城区新建南路
  /click KEY               click a menu button, e.g. /click REPORT (keys in bot/wechat/menu.yml)
  /subscribe [SCENE]       follow the account, optionally through a QR code,
                           e.g. /subscribe building:新建南社区/3号楼
  /scan SCENE              scan a QR code while following
  /unsubscribe             unfollow
  /voice TEXT              a voice message whose speech recognition gave TEXT
  /help                    this help
  /quit                    leave (end of input does the same)
Start a line with // to send text that begins with /."""

LINE_EOF = None
CUSTOM_LABEL = "助手[客服消息]："
REPLY_LABEL = "助手："


class ServerGone(Exception):
    """The server stopped answering; the message says where and why."""


@dataclass
class Source:
    """Where customer-service messages are read: the server's simulator route or the fake API."""

    url: str
    kind: str  # "server" | "fake"
    since: int = 0


@dataclass
class Chat:
    http: aiohttp.ClientSession
    server: str
    sender: WeChatSender
    openid: str
    source: Source | None
    pending: int = 0  # deferred replies still expected through the customer-service API
    failures: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # -- customer-service messages ---------------------------------------------------------------
    async def poll(self) -> int:
        """Print new customer-service messages; returns how many."""
        if self.source is None:
            return 0
        async with self.lock:
            try:
                async with self.http.get(
                    self.source.url, params={"openid": self.openid, "since": str(self.source.since)}
                ) as resp:
                    if resp.status != 200:
                        return 0
                    data = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return 0
            if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
                return 0
            if int(data.get("last_seq") or 0) < self.source.since:
                self.source.since = 0  # the fake API restarted and numbers from 1 again
                return 0
            from bot.web.simulator import describe_custom

            shown = 0
            for message in data["messages"]:
                if not isinstance(message, dict):
                    continue
                text = message["text"] if self.source.kind == "server" else describe_custom(message)
                show(CUSTOM_LABEL, str(text))
                self.source.since = max(self.source.since, int(message.get("seq") or 0))
                shown += 1
            self.pending = max(0, self.pending - shown)
            return shown

    async def poll_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.poll()

    async def drain(self, wait: float) -> None:
        """At the end of input: wait for deferred replies (up to ``wait`` s), then a short grace."""
        if self.source is None:
            return
        deadline = time.monotonic() + wait
        if self.pending:
            print(f"(waiting up to {wait:g}s for {self.pending} deferred reply…)", file=sys.stderr, flush=True)
        while self.pending and time.monotonic() < deadline:
            await self.poll()
            await asyncio.sleep(0.3)
        for _ in range(3):  # later parts of a long answer, status pushes
            await asyncio.sleep(0.4)
            await self.poll()

    # -- sending ----------------------------------------------------------------------------------
    async def send(self, data: dict[str, Any]) -> None:
        from bot.web.simulator import BadInput, build_fields, describe_reply

        try:
            fields = build_fields(self.sender, self.openid, data)
        except BadInput as exc:
            error(str(exc))
            return
        try:
            sent = await self.sender.send(self.http, fields)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ServerGone(f"lost the server at {self.server}: {describe_error(exc)}") from None
        except Exception as exc:  # an unreadable reply: report it, keep chatting
            self.failures += 1
            error(f"could not read the reply: {type(exc).__name__}: {exc}")
            return
        if sent.status != 200:
            self.failures += 1
            hint = ""
            if sent.status == 403 and "plaintext" in sent.body:
                hint = " (the server has an EncodingAESKey: leave out --mode plain, or use --mode safe)"
            elif sent.status == 403:
                hint = (" (are BOT_WECHAT_TOKEN, BOT_WECHAT_APPID and BOT_WECHAT_AES_KEY the same as the"
                        " server's?)")
            error(f"the server refused the message: HTTP {sent.status} {sent.body.strip()[:200]}{hint}")
            return
        reply = describe_reply(sent.reply)
        if reply is not None:
            show(REPLY_LABEL, str(reply.get("content", "")))
        elif data["type"] not in ("unsubscribe", "view"):
            self.pending += 1
            note("received; the answer will come as a customer-service message")
        await self.poll()

    async def upload(self, path_text: str) -> str | None:
        image = read_image(path_text)
        if image is None:
            return None
        path, content, ctype = image
        if self.source is None:
            error("sending an image needs the server in demo mode (python -m bot serve --demo)")
            return None
        if self.source.kind == "server":
            url = f"{self.server}/simulator/api/media"
        else:
            url = self.source.url.rsplit("/fake/", 1)[0] + "/fake/media"
        try:
            async with self.http.post(
                url,
                params={"filename": path.name},
                data=content,
                headers={"Content-Type": ctype},
            ) as resp:
                data = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error(f"could not upload {path}: {describe_error(exc)}")
            return None
        media_id = data.get("media_id") if isinstance(data, dict) else None
        if status != 200 or not isinstance(media_id, str):
            reason = data.get("error") if isinstance(data, dict) else None
            error(f"{path}: upload refused: {reason or f'HTTP {status}'}")
            return None
        return media_id

    async def handle(self, line: str) -> bool:
        """One input line; False to stop."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return True
        if line.startswith("//"):
            await self.send({"type": "text", "text": line[1:]})
            return True
        if not line.startswith("/"):
            await self.send({"type": "text", "text": line})
            return True
        command, _, rest = line[1:].partition(" ")
        command, rest = command.lower(), rest.strip()
        if command in ("quit", "exit", "q"):
            return False
        if command in ("help", "h", "?"):
            print(HELP, flush=True)
        elif command == "image":
            if not rest:
                error("usage: /image PATH")
            else:
                media_id = await self.upload(rest)
                if media_id:
                    await self.send({"type": "image", "media_id": media_id})
        elif command == "location":
            parts = rest.split(None, 2)
            if len(parts) < 2:
                error("usage: /location LAT LNG LABEL")
            else:
                label = parts[2] if len(parts) > 2 else ""
                await self.send({"type": "location", "lat": parts[0], "lng": parts[1], "label": label})
        elif command == "click":
            if not rest:
                error("usage: /click KEY (for example /click REPORT)")
            else:
                await self.send({"type": "click", "key": rest})
        elif command == "subscribe":
            await self.send({"type": "subscribe", "scene": rest})
        elif command == "scan":
            if not rest:
                error("usage: /scan SCENE")
            else:
                await self.send({"type": "scan", "scene": rest})
        elif command == "unsubscribe":
            await self.send({"type": "unsubscribe"})
        elif command == "voice":
            await self.send({"type": "voice", "text": rest})
        else:
            error(f"unknown command /{command}; /help lists the commands")
        return True


def read_image(path_text: str) -> tuple[Path, bytes, str] | None:
    """The picture at ``path_text`` with its content type, or None after printing why not."""
    from bot.web.simulator import MAX_IMAGE_BYTES, image_type

    path = Path(path_text).expanduser()
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            error(f"{path}: {size} bytes; images can be at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
            return None
        content = path.read_bytes()
    except OSError as exc:
        error(f"{path}: cannot read: {exc.strerror or exc}")
        return None
    ctype = image_type(content)
    if ctype is None:
        error(f"{path}: not a JPG, PNG, GIF or WebP image")
        return None
    return path, content, ctype


def show(label: str, text: str) -> None:
    lines = text.splitlines() or [""]
    pad = " " * 4
    print(label + lines[0], *(pad + line for line in lines[1:]), sep="\n", flush=True)


def note(text: str) -> None:
    print(f"({text})", flush=True)


def error(text: str) -> None:
    print(f"error: {text}", file=sys.stderr, flush=True)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection refused ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    return f"{type(exc).__name__}: {exc}"


def default_url(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _stdin_reader(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Reads stdin in a daemon thread (an interrupted chat must not wait for Enter)."""
    try:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    loop.call_soon_threadsafe(queue.put_nowait, LINE_EOF)


async def _find_source(http: aiohttp.ClientSession, server: str, openid: str, settings: Settings) -> Source | None:
    url = f"{server}/simulator/api/messages"
    try:
        async with http.get(url, params={"openid": openid}) as resp:
            if resp.status == 200:
                data = await resp.json(content_type=None)
                return Source(url, "server", int(data.get("last_seq") or 0))
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError):
        pass
    if settings.wechat_api_base != WECHAT_API_BASE:
        url = f"{settings.wechat_api_base}/fake/sent"
        try:
            async with http.get(url, params={"openid": openid}) as resp:
                if resp.status == 200:
                    data = await resp.json(content_type=None)
                    return Source(url, "fake", int(data.get("last_seq") or 0))
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError):
            pass
    return None


async def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    server = (args.url or default_url(settings)).rstrip("/")
    if not server.startswith(("http://", "https://")):
        error(f"--url must be an http(s) URL, got {server!r}")
        return 2
    mode = args.mode or ("safe" if settings.safe_mode_enabled else "plain")
    if mode != "plain" and not settings.safe_mode_enabled:
        error(f"{mode} mode needs BOT_WECHAT_AES_KEY (the server's EncodingAESKey)")
        return 2
    openid = args.openid or "o_cli_" + secrets.token_hex(6)
    from bot.web.simulator import OPENID

    if not OPENID.match(openid):
        error("--openid may use letters, digits, _ and -, at most 64 characters")
        return 2
    sender = WeChatSender(
        f"{server}/wechat", settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key, mode=mode
    )
    timeout = aiohttp.ClientTimeout(total=15, connect=5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        try:
            async with http.get(f"{server}/healthz") as resp:
                healthy = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            error(
                f"cannot reach the server at {server}: {describe_error(exc)}. "
                "Start it with `make run` (or `python -m bot serve --demo`), or pass --url."
            )
            return 1
        if healthy != 200:
            error(f"the server at {server} is not healthy (/healthz answered HTTP {healthy})")
            return 1
        source = await _find_source(http, server, openid, settings)
        chat = Chat(http, server, sender, openid, source)
        interactive = sys.stdin.isatty()
        if interactive:
            print(f"Chatting with {server} as {openid} ({mode} mode). /help lists commands, /quit leaves.")
            if source is None:
                print("(customer-service messages are not shown: the server is not in demo mode)")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=_stdin_reader, args=(loop, queue), daemon=True).start()
        poller = asyncio.create_task(chat.poll_forever(args.poll))
        try:
            while True:
                line = await queue.get()
                if line is LINE_EOF or not await chat.handle(line):
                    break
            await chat.drain(args.wait)
        except ServerGone as exc:
            error(str(exc))
            return 1
        finally:
            poller.cancel()
    return 1 if chat.failures else 0


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    p = sub.add_parser(
        "chat",
        help="talk to the running server as a resident (signed XML, exactly as WeChat sends it)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=HELP,
    )
    p.add_argument("--url", help="the server (default http://BOT_HOST:BOT_PORT, i.e. http://127.0.0.1:8080)")
    p.add_argument("--openid", help="the resident's openid (default: a new random o_cli_…)")
    p.add_argument(
        "--mode",
        choices=MODES,
        help="plain, compat or safe (default: safe when BOT_WECHAT_AES_KEY is set, else plain)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="at end of input, seconds to wait for deferred replies (default 10)",
    )
    p.add_argument("--poll", type=float, default=1.0, help="seconds between checks for customer-service messages")
    p.set_defaults(func=run)
