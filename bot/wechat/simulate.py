"""WeChat's side of the protocol: build and send signed (and encrypted) requests exactly as the
WeChat server does, and read the passive replies. Used by ``python -m bot chat``, the browser
simulator, the tests and the benchmarks.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.wechat.crypto import Codec, signature
from bot.wechat.parsing import parse_xml
from bot.wechat.replies import cdata_safe

MODES = ("plain", "compat", "safe")
_msg_ids = itertools.count(int(time.time() * 1000) * 1000 + secrets.randbelow(1000))


def next_msg_id() -> int:
    return next(_msg_ids)


def xml_of(fields: dict[str, Any]) -> str:
    parts = []
    for name, value in fields.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{cdata_safe(str(value))}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class SentReply:
    status: int
    body: str
    reply: dict[str, Any] | None  # the passive reply's fields (decrypted), None for "success"/errors

    @property
    def content(self) -> str | None:
        if self.reply is None:
            return None
        value = self.reply.get("Content")
        return value if isinstance(value, str) else None


class WeChatSender:
    """Signs and sends messages to a ``/wechat`` endpoint in one of the three modes."""

    def __init__(
        self,
        url: str,
        token: str,
        appid: str,
        aes_key: str = "",
        mode: str = "plain",
        account: str = "gh_community0001",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if mode != "plain" and not aes_key:
            raise ValueError(f"{mode} mode needs the EncodingAESKey")
        self.url = url
        self.mode = mode
        self.account = account
        self.codec = Codec(token, appid, aes_key)

    # Messages as WeChat sends them -------------------------------------------------------------
    def base(self, openid: str, msg_type: str, create_time: int | None = None) -> dict[str, Any]:
        return {
            "ToUserName": self.account,
            "FromUserName": openid,
            "CreateTime": create_time or int(time.time()),
            "MsgType": msg_type,
        }

    def text(self, openid: str, content: str, msg_id: int | None = None) -> dict[str, Any]:
        return {**self.base(openid, "text"), "Content": content, "MsgId": msg_id or next_msg_id()}

    def voice(
        self, openid: str, recognition: str | None = None, media_id: str = "voice-media"
    ) -> dict[str, Any]:
        fields = {**self.base(openid, "voice"), "MediaId": media_id, "Format": "amr", "MsgId": next_msg_id()}
        if recognition is not None:
            fields["Recognition"] = recognition
        return fields

    def image(
        self, openid: str, media_id: str, pic_url: str = "http://mmbiz.qpic.cn/demo.jpg"
    ) -> dict[str, Any]:
        return {**self.base(openid, "image"), "PicUrl": pic_url, "MediaId": media_id, "MsgId": next_msg_id()}

    def video(self, openid: str, media_id: str, short: bool = False) -> dict[str, Any]:
        kind = "shortvideo" if short else "video"
        return {
            **self.base(openid, kind),
            "MediaId": media_id,
            "ThumbMediaId": "thumb",
            "MsgId": next_msg_id(),
        }

    def location(self, openid: str, lat: float, lng: float, label: str, scale: int = 15) -> dict[str, Any]:
        return {
            **self.base(openid, "location"),
            "Location_X": lat,
            "Location_Y": lng,
            "Scale": scale,
            "Label": label,
            "MsgId": next_msg_id(),
        }

    def link(self, openid: str, title: str, url: str, description: str = "") -> dict[str, Any]:
        return {
            **self.base(openid, "link"),
            "Title": title,
            "Description": description,
            "Url": url,
            "MsgId": next_msg_id(),
        }

    def event(self, openid: str, event: str, key: str | None = None, **extra: Any) -> dict[str, Any]:
        fields = {**self.base(openid, "event"), "Event": event}
        if key is not None:
            fields["EventKey"] = key
        fields.update(extra)
        return fields

    # The wire ------------------------------------------------------------------------------------
    def build(
        self, fields: dict[str, Any] | str, timestamp: str | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], str]:
        """Query parameters and body for one POST, signed for this sender's mode."""
        xml = fields if isinstance(fields, str) else xml_of(fields)
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        query = {
            "signature": signature(self.codec.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        if self.mode == "plain":
            return query, xml
        envelope = parse_xml(self.codec.encrypt(xml, timestamp=timestamp, nonce=nonce))
        encrypt = str(envelope["Encrypt"])
        query.update(encrypt_type="aes", msg_signature=str(envelope["MsgSignature"]))
        query["openid"] = fields["FromUserName"] if isinstance(fields, dict) else ""
        if self.mode == "safe":
            to_user = fields["ToUserName"] if isinstance(fields, dict) else self.account
            body = f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        else:  # compatible: plaintext fields and the Encrypt field side by side
            body = xml[: -len("</xml>")] + f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        return query, body

    def read_reply(self, status: int, body: str) -> SentReply:
        if status != 200 or not body.strip().startswith("<xml"):
            return SentReply(status, body, None)
        data = parse_xml(body)
        if "Encrypt" in data:
            encrypt = str(data["Encrypt"])
            ts, nonce = str(data.get("TimeStamp", "")), str(data.get("Nonce", ""))
            decrypted = self.codec.decrypt(encrypt, str(data.get("MsgSignature", "")), ts, nonce)
            data = parse_xml(decrypted.xml)
        return SentReply(status, body, data)

    async def send(
        self,
        session: aiohttp.ClientSession,
        fields: dict[str, Any] | str,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> SentReply:
        query, body = self.build(fields, timestamp, nonce)
        async with session.post(
            self.url, params=query, data=body.encode("utf-8"), headers={"Content-Type": "text/xml"}
        ) as resp:
            return self.read_reply(resp.status, await resp.text())
