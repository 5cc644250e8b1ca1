"""Media residents send (photos, voice, video), downloaded from WeChat and kept under ``media_dir``;
:class:`WeChatMedia` is the runtime's media source for the services (download into the store, upload images).

File names are generated here (kind / year-month / random hex + an extension chosen from the
content type); nothing from outside ever becomes part of a path. Downloads are size-capped.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot.services.attachments import SavedFile
from bot.wechat.api import DEFAULT_MEDIA_LIMIT, Media
from bot.wechat.errors import MediaTooLarge

__all__ = ["MediaAPI", "MediaDownloader", "MediaStore", "MediaTooLarge", "StoredMedia", "WeChatMedia"]

KINDS = frozenset({"image", "voice", "video", "shortvideo", "thumb", "file"})
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/speex": ".speex",
    "audio/x-speex": ".speex",
    "video/mp4": ".mp4",
    "video/mpeg4": ".mp4",
}
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")


class MediaDownloader(Protocol):
    async def download_media(self, media_id: str, *, max_bytes: int = ...) -> Media: ...


class MediaAPI(MediaDownloader, Protocol):
    async def upload_media(self, kind: str, content: bytes, filename: str, content_type: str) -> str: ...


@dataclass(frozen=True)
class StoredMedia:
    """A saved file. ``path`` is absolute; :meth:`MediaStore.relative` gives the stable name to store."""

    path: Path
    content_type: str
    size: int
    sha256: str


class MediaStore:
    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MEDIA_LIMIT) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    async def download(self, api: MediaDownloader, media_id: str, kind: str) -> StoredMedia:
        """Download ``media_id`` and save it; raises the API's errors and :class:`MediaTooLarge`."""
        if kind not in KINDS:
            raise ValueError(f"unknown media kind {kind!r}; expected one of {', '.join(sorted(KINDS))}")
        media = await api.download_media(media_id, max_bytes=self.max_bytes)
        return await self.save(media.content, media.content_type, kind)

    async def save(self, content: bytes, content_type: str, kind: str) -> StoredMedia:
        if kind not in KINDS:
            raise ValueError(f"unknown media kind {kind!r}")
        if len(content) > self.max_bytes:
            raise MediaTooLarge(f"media is {len(content)} bytes, limit {self.max_bytes}")
        ctype = content_type.split(";")[0].strip().lower()
        if not _CONTENT_TYPE.fullmatch(ctype):
            ctype = "application/octet-stream"
        name = secrets.token_hex(16) + EXTENSIONS.get(ctype, ".bin")
        folder = self.root / kind / datetime.now(UTC).strftime("%Y%m")
        path = folder / name
        await asyncio.to_thread(_write_atomically, path, content)
        return StoredMedia(
            path=path.resolve(), content_type=ctype, size=len(content), sha256=hashlib.sha256(content).hexdigest()
        )

    def relative(self, stored: StoredMedia) -> str:
        """The file's name relative to the store's root, e.g. ``image/202611/3f…a1.jpg``."""
        return stored.path.relative_to(self.root.resolve()).as_posix()


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "xb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class WeChatMedia:
    """The runtime's media source (``bot.services.attachments.MediaSource``): WeChat's media API and
    the local store."""

    def __init__(self, api: MediaAPI, store: MediaStore) -> None:
        self.api = api
        self.store = store

    async def fetch(self, media_id: str, kind: str) -> SavedFile:
        stored = await self.store.download(self.api, media_id, kind)
        return SavedFile(self.store.relative(stored), stored.content_type, stored.size)

    async def upload_image(self, content: bytes, filename: str, content_type: str) -> str:
        return await self.api.upload_media("image", content, filename, content_type)
