"""``/wechat``: URL verification (GET) and messages in plaintext, compatible and safe mode (POST).

Every rejection is a clean 4xx with a short reason and a log line without secrets; anything we
read but do not handle is answered ``success`` so WeChat does not retry it.

The checks, in order (each one cheap before the next costs more): the signature (constant time),
the timestamp's form and freshness, the nonce's form; with an EncodingAESKey, only encrypted
messages (unless ``BOT_WECHAT_ALLOW_PLAINTEXT``); the whole body, however it arrives, up to
``BOT_MAX_BODY_BYTES``; safe parsing (no DTDs, capped depth and element count); decryption and
``msg_signature``; then, for a plaintext message, the (timestamp, nonce) pair must not have come
with another body (replay).

Why only plaintext: ``signature`` covers the Token, timestamp and nonce but not the body, so a
plaintext body can be swapped under a captured query; an encrypted body is covered by
``msg_signature`` (Token, timestamp, nonce and the ciphertext), so it cannot, and an exact replay
of an encrypted request is a retry of its message, answered from the stored reply by the
exactly-once delivery. Remembering pairs costs a write transaction per batch of requests, about a
quarter more CPU per message in safe mode (docs/benchmarks.md), for no added protection there.
URL verifications (GET) are remembered too: their query must not carry a plaintext message.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.appkeys import RUNTIME, SETTINGS
from bot.handler.delivery import Delivery
from bot.logmask import mask_openid
from bot.messages import Out
from bot.wechat.crypto import Codec, CryptoError
from bot.wechat.fairness import TOO_FAST, ResidentLimits
from bot.wechat.parsing import BadMessage, encrypted_field, parse_xml, to_inbound
from bot.wechat.replay import ReplayGuard, Use, digest, expiry, replay_guard
from bot.wechat.replies import render

log = logging.getLogger("bot.wechat")

CODEC = web.AppKey("codec", Codec)
DELIVERY = web.AppKey("delivery", Delivery)
REPLAYS = web.AppKey("replays", ReplayGuard)
LIMITS = web.AppKey("resident_limits", ResidentLimits)
SUCCESS = "success"
TIMESTAMP = re.compile(r"[0-9]{1,11}")  # Unix seconds (ASCII digits only: int() takes others too)
NONCE = re.compile(r"[\x21-\x7e]{1,64}")  # WeChat's are digits; printable ASCII, as stored
BODY_TIMEOUT = 10.0  # seconds for the whole body to arrive (WeChat gives up after 5)


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _reject(status: int, reason: str, request: web.Request) -> web.Response:
    log.warning("wechat %s refused (%d): %s from %s", request.method, status, reason, request.remote)
    response = web.Response(status=status, text=reason)
    if status in (408, 413):  # the rest of the body is not read: the connection cannot go on
        response.force_close()
    return response


def _checked_query(request: web.Request) -> tuple[int, str, str]:
    """Signature, timestamp (form and freshness) and nonce form; (seconds, timestamp, nonce) if
    all hold (the timestamp as sent: signatures are over the text)."""
    q = request.query
    timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
    if not request.app[CODEC].check(q.get("signature"), timestamp, nonce):
        raise Refused(403, "bad signature")
    if not TIMESTAMP.fullmatch(timestamp):
        raise Refused(400, "bad timestamp: expected Unix time in seconds (1-11 digits)")
    if not NONCE.fullmatch(nonce):
        raise Refused(400, "bad nonce: expected 1-64 printable ASCII characters")
    sent_at = int(timestamp)
    window = request.app[SETTINGS].timestamp_window
    if window and abs(time.time() - sent_at) > window:
        raise Refused(403, "stale timestamp")
    return sent_at, timestamp, nonce


async def _first_use(request: web.Request, sent_at: int, nonce: str, body_digest: str) -> None:
    window = request.app[SETTINGS].timestamp_window
    use = Use(sent_at, nonce, body_digest, expiry(sent_at, window, time.time()))
    if not await request.app[REPLAYS].first_use(use):
        raise Refused(403, "replayed nonce: this timestamp and nonce came with another body")


async def verify_url(request: web.Request) -> web.Response:
    """Server URL verification from the 公众号 settings page: echo ``echostr`` if signed and fresh."""
    echostr = request.query.get("echostr", "")
    try:
        sent_at, _, nonce = _checked_query(request)
        await _first_use(request, sent_at, nonce, digest(b"GET", echostr.encode("utf-8", "surrogatepass")))
    except Refused as exc:
        return _reject(exc.status, exc.reason, request)
    return web.Response(text=echostr)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, however it arrives (in pieces, chunked), refused past ``limit`` bytes
    without reading further."""
    if request.content_length is not None and request.content_length > limit:
        raise Refused(413, "body too large")
    content = request.content
    if content.is_eof():
        # The whole body came with the headers (nearly always: WeChat's are small): it is taken
        # from the buffer as it is, with no timer to set and cancel.
        try:
            body = content.read_nowait(limit + 1)
        except (HttpProcessingError, ConnectionError) as exc:
            raise Refused(400, f"body not received whole ({type(exc).__name__})") from None
        if len(body) > limit:
            raise Refused(413, "body too large")
        return body
    pieces: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            while True:
                piece = await content.read(limit + 1 - size)
                if not piece:
                    break
                size += len(piece)
                if size > limit:
                    raise Refused(413, "body too large")
                pieces.append(piece)
    except TimeoutError:
        raise Refused(408, "body not received in time") from None
    except (HttpProcessingError, ConnectionError, asyncio.IncompleteReadError) as exc:
        raise Refused(400, f"body not received whole ({type(exc).__name__})") from None
    return b"".join(pieces)


async def receive(request: web.Request) -> web.Response:
    codec = request.app[CODEC]
    settings = request.app[SETTINGS]
    q = request.query
    encrypted = q.get("encrypt_type", "raw").lower() == "aes"
    try:
        sent_at, timestamp, nonce = _checked_query(request)
        if not encrypted and not settings.accepts_plaintext:
            raise Refused(403, "plaintext message refused: only encrypted messages (encrypt_type=aes) are accepted")
        body = await read_body(request, settings.max_body_bytes)
        key_index = 0
        if encrypted:  # the envelope's one field read by its shape (parsing.encrypted_field)
            decrypted = codec.decrypt(encrypted_field(body), q.get("msg_signature"), timestamp, nonce)
            key_index = decrypted.key_index
            data = parse_xml(decrypted.xml)
        else:
            data = parse_xml(body)
        inbound = to_inbound(data)
        if not encrypted:  # msg_signature covers an encrypted body: only plaintext can be swapped
            await _first_use(request, sent_at, nonce, digest(b"POST", body))
    except Refused as exc:
        return _reject(exc.status, exc.reason, request)
    except BadMessage as exc:
        return _reject(400, str(exc), request)
    except CryptoError as exc:
        return _reject(403 if "signature" in str(exc) else 400, str(exc), request)

    verdict = await request.app[LIMITS].check(inbound.openid)
    if verdict == "ok":
        outs = await request.app[DELIVERY].handle(inbound)
    else:  # one resident flooding: told once per window, then answered with nothing
        log.warning("resident %s over the message rate limit (%s)", mask_openid(inbound.openid), verdict)
        outs = [Out.text(TOO_FAST)] if verdict == "tell" else []
    if not outs:
        return web.Response(text=SUCCESS)
    xml = render(outs[0], to_user=inbound.openid, from_user=inbound.account)
    if encrypted:
        xml = codec.encrypt(xml, key_index=key_index, nonce=nonce)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("passive reply to %s", mask_openid(inbound.openid))
    return web.Response(text=xml, content_type="application/xml")


def setup(app: web.Application, codec: Codec, delivery: Delivery) -> None:
    app[CODEC] = codec
    app[DELIVERY] = delivery
    rt = app[RUNTIME]
    app[REPLAYS] = replay_guard(rt.db, rt.redis)
    settings = app[SETTINGS]
    app[LIMITS] = ResidentLimits(settings.resident_rate, redis=rt.redis, share=settings.workers)
    app.router.add_get("/wechat", verify_url)
    app.router.add_post("/wechat", receive)
