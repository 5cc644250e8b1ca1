"""Attachments as records (:func:`attachment`: what a ticket stores of a photo, video, voice,
location or link), and links sent on their own. A photo, video or location sent on its own starts a
report (``flows/complaint.py``); voice is answered as text.)"""

from __future__ import annotations

from typing import Any

from bot.handler.context import Context
from bot.handler.router import MsgType, Router

router = Router("media")

TEXTS = {
    "link": "收到您分享的链接，工作人员需要时会查看。有什么需要帮忙的，直接告诉我就行。",
}

def attachment(ctx: Context) -> dict[str, Any]:
    """The message as an attachment record (what a ticket will store)."""
    raw = ctx.inbound.raw
    kind = ctx.inbound.msg_type
    item: dict[str, Any] = {"kind": kind, "msg_key": ctx.inbound.key, "at": ctx.inbound.create_time}
    if kind in ("image", "video", "shortvideo", "voice"):
        item["media_id"] = raw.get("MediaId", "")
        if kind == "image":
            item["pic_url"] = raw.get("PicUrl", "")
        elif kind == "voice":
            item["format"] = raw.get("Format", "")
            item["transcript"] = ctx.inbound.content or ""  # WeChat's recognition, when switched on
        else:
            item["thumb_media_id"] = raw.get("ThumbMediaId", "")
    elif kind == "location":
        item.update(
            latitude=_float(raw.get("Location_X")),
            longitude=_float(raw.get("Location_Y")),
            scale=raw.get("Scale", ""),
            label=raw.get("Label", ""),
        )
    elif kind == "link":
        item.update(
            title=raw.get("Title", ""), url=raw.get("Url", ""), description=raw.get("Description", "")
        )
    return item


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@router.message(MsgType("link"))
async def link(ctx: Context) -> str:
    return TEXTS["link"]  # the link itself is in the message log
