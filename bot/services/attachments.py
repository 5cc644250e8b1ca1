"""Media residents send with a report (photos, voice, video): kept in the media store.

Services never talk to WeChat: the WeChat edge gives the runtime a :class:`MediaSource`
(``bot/wechat/media.py:WeChatMedia``) that downloads a media id into the store and uploads images;
flows hand attachments to :func:`keep` and never see where the bytes come from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

MEDIA_KINDS = frozenset({"image", "video", "shortvideo", "voice"})
MAX_KEPT = 9  # attachments kept on a conversation until a ticket takes them


@dataclass(frozen=True)
class SavedFile:
    file: str  # relative to the media store's root, e.g. image/202611/3f…a1.jpg
    content_type: str
    size: int


class MediaSource(Protocol):
    async def fetch(self, media_id: str, kind: str) -> SavedFile:
        """Download ``media_id`` into the media store; raises on any failure."""
        ...

    async def upload_image(self, content: bytes, filename: str, content_type: str) -> str:
        """Upload an image as temporary media; returns its media id."""
        ...


async def keep(source: MediaSource | None, item: dict[str, Any]) -> dict[str, Any]:
    """The attachment with its media saved (``file``, ``content_type``, ``size``), once; a failed
    download keeps the media id and notes ``download_error`` (the kind of error only)."""
    if item.get("kind") not in MEDIA_KINDS or item.get("file") or not item.get("media_id") or source is None:
        return item
    try:
        saved = await source.fetch(str(item["media_id"]), str(item["kind"]))
    except Exception as exc:  # WeChat errors, too large, disk: keep the id, tell the log the kind only
        log.warning("media download failed: %s", type(exc).__name__)
        return {**item, "download_error": type(exc).__name__}
    return {**item, "file": saved.file, "content_type": saved.content_type, "size": saved.size}


def added(items: list[dict[str, Any]], item: dict[str, Any]) -> list[dict[str, Any]]:
    """``items`` with ``item`` (replacing one of the same message), the newest :data:`MAX_KEPT`."""
    kept = [a for a in items if a.get("msg_key") != item.get("msg_key")]
    return [*kept, item][-MAX_KEPT:]
