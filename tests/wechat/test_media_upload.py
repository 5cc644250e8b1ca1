"""WeChatAPI.upload_media against the fake WeChat API: multipart upload, media_id, errors, token refresh."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.config import Settings
from bot.qrcodes import PNG_SIGNATURE, png
from bot.wechat.api import WeChatAPI, WeChatAPIError, WeChatUnavailable
from tests.wechat.conftest import FakeControl

UPLOAD = "/cgi-bin/media/upload"


@pytest.fixture
async def api(wx_settings: Settings) -> AsyncIterator[WeChatAPI]:
    client = WeChatAPI(wx_settings, timeout=5)
    yield client
    await client.close()


async def test_upload_returns_a_media_id_that_can_be_downloaded(api: WeChatAPI, wx_fake: FakeControl) -> None:
    content = png("ABCDEFGH23")
    media_id = await api.upload_media("image", content, "code.png", "image/png")
    assert media_id
    media = await api.download_media(media_id)
    assert media.content == content and media.content.startswith(PNG_SIGNATURE)
    assert media.content_type == "image/png" and media.filename == "code.png"


async def test_upload_refreshes_an_expired_token_once(api: WeChatAPI, wx_fake: FakeControl) -> None:
    await api.access_token()
    await wx_fake.expire_tokens()
    media_id = await api.upload_media("image", b"\x89PNG\r\n\x1a\nx", "a.png", "image/png")
    assert (await api.download_media(media_id)).content == b"\x89PNG\r\n\x1a\nx"
    assert await wx_fake.calls(UPLOAD) == 2


async def test_upload_errors(api: WeChatAPI, wx_fake: FakeControl) -> None:
    with pytest.raises(WeChatAPIError) as info:
        await api.upload_media("document", b"x", "a.txt", "text/plain")
    assert info.value.errcode == 40004
    await wx_fake.inject("media/upload", status=503)
    with pytest.raises(WeChatUnavailable):
        await api.upload_media("image", b"x", "a.png", "image/png")
