"""Message types every layer may import (the bottom floor: it imports nothing of the package but
``bot.logmask``): what arrives from a resident (`Inbound`) and what goes back (`Out`, and what a
handler may return)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

_JSON = json.JSONEncoder(ensure_ascii=False)  # as bot.storage.db.json_dumps writes JSON columns


@dataclass(frozen=True)
class Inbound:
    """One message or event from WeChat, normalised. ``raw`` keeps every field WeChat sent."""

    openid: str
    account: str  # ToUserName: the 公众号's original id
    msg_type: str  # text, voice, image, video, shortvideo, location, link, event, …
    create_time: int
    msg_id: int | None = None
    event: str | None = None  # lower-case event name for msg_type == "event"
    event_key: str | None = None
    content: str | None = None  # text, or recognised voice text
    raw: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def key(self) -> str:
        """Exactly-once key (at most 160 characters): account + sender + MsgId for messages (a
        MsgId is not secret, so it alone must not find another resident's reply); sender +
        CreateTime + event (+ key) for events. (Asked for several times per message: made once.)"""
        return self._key(self.openid)

    @property
    def log_key(self) -> str:
        """The key for log lines: the openid masked."""
        from bot.logmask import mask_openid

        return self._key(mask_openid(self.openid))

    def _key(self, sender: str) -> str:
        if self.msg_type == "event" or not self.msg_id:
            # The event key too: two different menu clicks within one second are two events,
            # while WeChat's retries of one event repeat it unchanged.
            key = f":{self.event_key[:40]}" if self.event_key else ""
            return f"ev:{sender}:{self.create_time}:{(self.event or self.msg_type)[:32]}{key}"
        return f"msg:{self.account}:{sender}:{self.msg_id}"

    @property
    def created(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, UTC)

    @cached_property
    def text(self) -> str:
        """The content trimmed (every handler's filter asks for it: worked out once)."""
        return (self.content or "").strip()

    def get(self, name: str, default: str = "") -> str:
        value = self.raw.get(name)
        return value if isinstance(value, str) else default

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for a pending message kept so that it can be redone (``from_dict``)."""
        return {
            "openid": self.openid,
            "account": self.account,
            "msg_type": self.msg_type,
            "create_time": self.create_time,
            "msg_id": self.msg_id,
            "event": self.event,
            "event_key": self.event_key,
            "content": self.content,
            "raw": self.raw,
        }

    @cached_property
    def raw_json(self) -> str:
        """``raw`` as JSON text, as the storage writes JSON: made once for the two places it is
        stored (the pending message kept with its key, :meth:`to_json`, and the message log)."""
        return _JSON.encode(self.raw)

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text (the same text as encoding it), ``raw`` from :attr:`raw_json`."""
        head = _JSON.encode({k: v for k, v in self.to_dict().items() if k != "raw"})
        return f'{head[:-1]}, "raw": {self.raw_json}}}'

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Inbound:
        msg_id = data.get("msg_id")
        return cls(
            openid=str(data["openid"]),
            account=str(data.get("account") or ""),
            msg_type=str(data.get("msg_type") or "text"),
            create_time=int(data.get("create_time") or 0),
            msg_id=int(msg_id) if msg_id is not None else None,
            event=data.get("event"),
            event_key=data.get("event_key"),
            content=data.get("content"),
            raw=dict(data.get("raw") or {}),
        )


@dataclass(frozen=True)
class Out:
    """One outgoing message. ``kind``: text, image (media_id), news (articles), music …"""

    kind: str
    content: str = ""
    media_id: str = ""
    articles: tuple[dict[str, str], ...] = ()

    @classmethod
    def text(cls, content: str) -> Out:
        return cls(kind="text", content=content)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.content:
            data["content"] = self.content
        if self.media_id:
            data["media_id"] = self.media_id
        if self.articles:
            data["articles"] = list(self.articles)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Out:
        return cls(
            kind=str(data.get("kind", "text")),
            content=str(data.get("content", "")),
            media_id=str(data.get("media_id", "")),
            articles=tuple(data.get("articles", ())),
        )

    def to_custom_payload(self, openid: str) -> dict[str, Any]:
        """The JSON body of WeChat's ``message/custom/send`` for this message."""
        if self.kind == "text":
            return {"touser": openid, "msgtype": "text", "text": {"content": self.content}}
        if self.kind == "image":
            return {"touser": openid, "msgtype": "image", "image": {"media_id": self.media_id}}
        if self.kind == "news":
            return {"touser": openid, "msgtype": "news", "news": {"articles": list(self.articles[:1])}}
        raise ValueError(f"cannot send {self.kind!r} as a customer-service message")


# What a handler may return: a text, one message, several, or nothing (answer "success").
HandlerResult = str | Out | list[Out] | list[str] | None


def as_outs(result: HandlerResult) -> list[Out]:
    if result is None:
        return []
    if isinstance(result, str):
        return [Out.text(result)] if result else []
    if isinstance(result, Out):
        return [result]
    return [Out.text(r) if isinstance(r, str) else r for r in result]
