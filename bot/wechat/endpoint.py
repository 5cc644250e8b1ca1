"""``/wechat``: URL verification (GET) and messages in plaintext, compatible and safe mode (POST).

Every rejection is a clean 4xx with a short reason and a log line without secrets; anything we
read but do not handle is answered ``success`` so WeChat does not retry it.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from bot.appkeys import SETTINGS
from bot.handler.delivery import Delivery
from bot.logmask import mask_openid
from bot.wechat.crypto import Codec, CryptoError
from bot.wechat.parsing import BadMessage, parse_xml, to_inbound
from bot.wechat.replies import render

log = logging.getLogger("bot.wechat")

CODEC = web.AppKey("codec", Codec)
DELIVERY = web.AppKey("delivery", Delivery)
SUCCESS = "success"


def _reject(status: int, reason: str, request: web.Request) -> web.Response:
    log.warning("wechat %s refused (%d): %s from %s", request.method, status, reason, request.remote)
    return web.Response(status=status, text=reason)


async def verify_url(request: web.Request) -> web.Response:
    """Server URL verification from the 公众号 settings page: echo ``echostr`` if signed."""
    codec = request.app[CODEC]
    q = request.query
    if not codec.check(q.get("signature"), q.get("timestamp", ""), q.get("nonce", "")):
        return _reject(403, "bad signature", request)
    return web.Response(text=q.get("echostr", ""))


async def receive(request: web.Request) -> web.Response:
    codec = request.app[CODEC]
    settings = request.app[SETTINGS]
    q = request.query
    timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
    if not codec.check(q.get("signature"), timestamp, nonce):
        return _reject(403, "bad signature", request)
    try:
        sent_at = int(timestamp)
    except ValueError:
        return _reject(400, "bad timestamp", request)
    window = settings.timestamp_window
    if window and abs(time.time() - sent_at) > window:
        return _reject(403, "stale timestamp", request)

    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _reject(413, "body too large", request)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        return _reject(413, "body too large", request)

    encrypted = q.get("encrypt_type", "raw").lower() == "aes"
    key_index = 0
    try:
        data = parse_xml(body)
        if encrypted:
            encrypt = data.get("Encrypt")
            if not isinstance(encrypt, str) or not encrypt:
                raise BadMessage("missing field Encrypt")
            decrypted = codec.decrypt(encrypt, q.get("msg_signature"), timestamp, nonce)
            key_index = decrypted.key_index
            data = parse_xml(decrypted.xml)
        inbound = to_inbound(data)
    except BadMessage as exc:
        return _reject(400, str(exc), request)
    except CryptoError as exc:
        return _reject(403 if "signature" in str(exc) else 400, str(exc), request)

    outs = await request.app[DELIVERY].handle(inbound)
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
    app.router.add_get("/wechat", verify_url)
    app.router.add_post("/wechat", receive)
