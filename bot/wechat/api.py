"""Async client for WeChat's Official Account API (the calls the product needs), on aiohttp.

Errors come in two kinds: :class:`WeChatAPIError` (WeChat answered with an ``errcode``) and
:class:`WeChatUnavailable` (network error, timeout, HTTP 5xx, ``errcode -1`` "system busy"): the
second is always worth retrying later. A token error (40001/40014/42001) refreshes the shared access
token once and retries the call. Neither the AppSecret nor the access token ever reaches a log line
or an exception message; openids are masked.
"""

from __future__ import annotations

import json as jsonlib
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from bot.config import Settings
from bot.logmask import mask_openid
from bot.metrics import WECHAT_API_ERRORS
from bot.wechat.errors import (
    SYSTEM_BUSY,
    MediaTooLarge,
    WeChatAPIError,
    WeChatError,
    WeChatUnavailable,
    redact,
)
from bot.wechat.tokens import InMemoryTokenStore, TokenStore

# The errors the client raises are defined in bot/wechat/errors.py and importable from here too.
__all__ = [
    "DEFAULT_MEDIA_LIMIT",
    "Media",
    "MediaTooLarge",
    "WeChatAPI",
    "WeChatAPIError",
    "WeChatError",
    "WeChatUnavailable",
    "redact",
]

log = logging.getLogger(__name__)

DEFAULT_MEDIA_LIMIT = 10 * 1024 * 1024


@dataclass(frozen=True)
class Media:
    """A downloaded media file. ``filename`` is what WeChat suggested: never use it as a path."""

    content: bytes
    content_type: str
    filename: str | None = None


class WeChatAPI:
    """Client for ``settings.wechat_api_base``.

    ``token_store`` shares the access token between processes (see :mod:`bot.wechat.tokens`);
    without one the token lives in this object only. ``session`` may be given (and is then not
    closed here); otherwise one is created on first use and closed by :meth:`close`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        token_store: TokenStore | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        self.base = settings.wechat_api_base.rstrip("/")
        self.tokens: TokenStore = token_store or InMemoryTokenStore(settings.wechat_appid)
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> WeChatAPI:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    # -- access token ---------------------------------------------------------------------------

    async def fetch_stable_token(self, force_refresh: bool = False) -> tuple[str, int]:
        """Ask WeChat for the stable access token: ``(token, expires_in seconds)``. No caching."""
        body = {
            "grant_type": "client_credential",
            "appid": self.settings.wechat_appid,
            "secret": self.settings.wechat_secret,
            "force_refresh": force_refresh,
        }
        data = await self._request("POST", "/cgi-bin/stable_token", params={}, json=body)
        token = data.get("access_token")
        expires_in = data.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise WeChatUnavailable("stable_token answered without access_token/expires_in")
        log.info("wechat access token obtained (force_refresh=%s, expires_in=%ss)", force_refresh, expires_in)
        return token, expires_in

    async def access_token(self, force: bool = False) -> str:
        """The shared access token; ``force`` replaces the current one with a fresh one."""
        token = await self.tokens.get(self.fetch_stable_token)
        if force:
            token = await self.tokens.get(self.fetch_stable_token, stale=token)
        return token

    # -- calls ----------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Call an authenticated endpoint and return its JSON; a token error refreshes once and retries."""
        token = await self.tokens.get(self.fetch_stable_token)
        try:
            return await self._request(method, path, params={**(params or {}), "access_token": token}, json=json)
        except WeChatAPIError as exc:
            if not exc.is_token_error:
                raise
            log.warning("wechat %s %s: token error %s, refreshing the token once", method, path, exc.errcode)
        token = await self.tokens.get(self.fetch_stable_token, stale=token)
        return await self._request(method, path, params={**(params or {}), "access_token": token}, json=json)

    async def send_custom(self, payload: dict[str, Any]) -> None:
        """Send a customer-service message (``message/custom/send``)."""
        await self.call("POST", "/cgi-bin/message/custom/send", json=payload)
        log.info("wechat custom %s sent to %s", payload.get("msgtype"), mask_openid(payload.get("touser")))

    async def send_template(self, payload: dict[str, Any]) -> int | None:
        """Send a template message (``message/template/send``: touser, template_id, data); returns its msgid."""
        data = await self.call("POST", "/cgi-bin/message/template/send", json=payload)
        log.info("wechat template message sent to %s", mask_openid(payload.get("touser")))
        msgid = data.get("msgid")
        return msgid if isinstance(msgid, int) else None

    async def create_menu(self, menu: dict[str, Any]) -> None:
        await self.call("POST", "/cgi-bin/menu/create", json=menu)

    async def get_menu(self) -> dict[str, Any]:
        return await self.call("GET", "/cgi-bin/menu/get")

    async def download_media(self, media_id: str, *, max_bytes: int = DEFAULT_MEDIA_LIMIT) -> Media:
        """Download a temporary media file (``media/get``); a JSON answer is an error."""
        token = await self.tokens.get(self.fetch_stable_token)
        try:
            return await self._download(media_id, token, max_bytes)
        except WeChatAPIError as exc:
            if not exc.is_token_error:
                raise
        token = await self.tokens.get(self.fetch_stable_token, stale=token)
        return await self._download(media_id, token, max_bytes)

    async def upload_media(self, kind: str, content: bytes, filename: str, content_type: str) -> str:
        """Upload a temporary media file (``media/upload``, kept 3 days by WeChat); returns its media_id.

        ``kind`` is image, voice, video or thumb; the file goes in the multipart field ``media``.
        """
        token = await self.tokens.get(self.fetch_stable_token)
        try:
            return await self._upload(kind, content, filename, content_type, token)
        except WeChatAPIError as exc:
            if not exc.is_token_error:
                raise
            log.warning("wechat media/upload: token error %s, refreshing the token once", exc.errcode)
        token = await self.tokens.get(self.fetch_stable_token, stale=token)
        return await self._upload(kind, content, filename, content_type, token)

    async def _upload(self, kind: str, content: bytes, filename: str, content_type: str, token: str) -> str:
        path = "/cgi-bin/media/upload"
        form = aiohttp.FormData()  # built per attempt: a FormData is consumed by one request
        form.add_field("media", content, filename=filename, content_type=content_type)
        params = {"access_token": token, "type": kind}
        try:
            async with self._http().post(self.base + path, params=params, data=form, timeout=self._timeout()) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("wechat POST %s unreachable: %s", path, type(exc).__name__)
            raise WeChatUnavailable(f"POST {path}: {type(exc).__name__}") from None
        data = self._parse("POST", path, status, raw)
        media_id = data.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise WeChatUnavailable(f"POST {path}: answered without media_id")
        log.info("wechat media uploaded (%s, %s bytes)", kind, len(content))
        return media_id

    # -- transport ------------------------------------------------------------------------------

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.timeout)

    async def _request(
        self, method: str, path: str, *, params: dict[str, str], json: Any = None
    ) -> dict[str, Any]:
        try:
            return await self._request_once(method, path, params=params, json=json)
        except WeChatUnavailable:
            WECHAT_API_ERRORS.labels("unavailable").inc()
            raise
        except WeChatAPIError:
            WECHAT_API_ERRORS.labels("errcode").inc()
            raise

    async def _request_once(
        self, method: str, path: str, *, params: dict[str, str], json: Any = None
    ) -> dict[str, Any]:
        url = self.base + path
        body = None if json is None else jsonlib.dumps(json, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else {}
        try:
            async with self._http().request(
                method, url, params=params, data=body, headers=headers, timeout=self._timeout()
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("wechat %s %s unreachable: %s", method, path, type(exc).__name__)
            raise WeChatUnavailable(f"{method} {path}: {type(exc).__name__}") from None
        return self._parse(method, path, status, raw)

    def _parse(self, method: str, path: str, status: int, raw: bytes) -> dict[str, Any]:
        if status >= 500 or status == 429:
            log.warning("wechat %s %s answered HTTP %s", method, path, status)
            raise WeChatUnavailable(f"{method} {path}: HTTP {status}")
        try:
            data = jsonlib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            log.warning("wechat %s %s answered HTTP %s with a non-JSON body", method, path, status)
            raise WeChatUnavailable(f"{method} {path}: HTTP {status}, not JSON") from None
        if not isinstance(data, dict):
            raise WeChatUnavailable(f"{method} {path}: unexpected JSON")
        errcode = data.get("errcode", 0)
        if status >= 400 and not errcode:
            raise WeChatAPIError(-status, f"HTTP {status}")
        if errcode:
            code = int(errcode) if isinstance(errcode, int | str) and str(errcode).lstrip("-").isdigit() else -2
            errmsg = str(data.get("errmsg", ""))
            if code == SYSTEM_BUSY:
                log.warning("wechat %s %s: system busy", method, path)
                raise WeChatUnavailable(f"{method} {path}: system busy")
            log.warning("wechat %s %s: errcode %s %s", method, path, code, redact(errmsg))
            raise WeChatAPIError(code, errmsg)
        return data

    async def _download(self, media_id: str, token: str, max_bytes: int) -> Media:
        url = self.base + "/cgi-bin/media/get"
        params = {"access_token": token, "media_id": media_id}
        try:
            async with self._http().get(url, params=params, timeout=self._timeout()) as resp:
                content_type = resp.content_type or "application/octet-stream"
                if resp.status >= 500 or resp.status == 429 or content_type in ("application/json", "text/plain"):
                    raw = await resp.read()
                    return self._raise_for_json(resp.status, raw)
                if resp.status >= 400:
                    raise WeChatAPIError(-resp.status, f"HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise MediaTooLarge(f"media is {resp.content_length} bytes, limit {max_bytes}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge(f"media exceeds the limit of {max_bytes} bytes")
                    chunks.append(chunk)
                filename = resp.content_disposition.filename if resp.content_disposition else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("wechat media/get unreachable: %s", type(exc).__name__)
            raise WeChatUnavailable(f"GET /cgi-bin/media/get: {type(exc).__name__}") from None
        return Media(content=b"".join(chunks), content_type=content_type, filename=filename)

    def _raise_for_json(self, status: int, raw: bytes) -> Media:
        data = self._parse("GET", "/cgi-bin/media/get", status, raw)
        # A JSON body without errcode is a video's download URL; this client does not follow it.
        raise WeChatAPIError(-3, f"media/get answered JSON instead of a file: {sorted(data)}")
