"""Images, videos, locations and links: kept on the conversation for the flow that needs them.
(Voice is answered as text elsewhere; a flow that keeps voice builds its record with :func:`attachment`.)"""

from __future__ import annotations

from typing import Any

from bot.handler.context import Context
from bot.handler.router import MsgType, Router

router = Router("media")

TEXTS = {
    "image": "收到您的图片了。如果是要反映问题，请再用文字说说是什么情况、在哪个位置。",
    "video": "收到您的视频了。如果是要反映问题，请再用文字说说是什么情况、在哪个位置。",
    "location": "收到您的位置：{label}。如果是要反映这里的问题，请用文字说说情况。",
    "link": "收到您分享的链接，工作人员需要时会查看。有什么需要帮忙的，直接告诉我就行。",
}

MAX_KEPT = 9  # attachments kept on the conversation until a flow takes them


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


async def keep(ctx: Context) -> dict[str, Any]:
    item = attachment(ctx)
    kept = [a for a in ctx.fsm.data.get("attachments", []) if a.get("msg_key") != item["msg_key"]]
    await ctx.fsm.update(attachments=[*kept, item][-MAX_KEPT:])
    return item


@router.message(MsgType("image"))
async def image(ctx: Context) -> str:
    await keep(ctx)
    return TEXTS["image"]


@router.message(MsgType("video", "shortvideo"))
async def video(ctx: Context) -> str:
    await keep(ctx)
    return TEXTS["video"]


@router.message(MsgType("location"))
async def location(ctx: Context) -> str:
    item = await keep(ctx)
    return TEXTS["location"].format(label=item.get("label") or "已记录")


@router.message(MsgType("link"))
async def link(ctx: Context) -> str:
    await keep(ctx)
    return TEXTS["link"]
