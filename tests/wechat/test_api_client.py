"""WeChatAPI against the fake WeChat API server: tokens, errors, media, menu, and what gets logged."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from bot.config import Settings
from bot.wechat.api import MediaTooLarge, WeChatAPI, WeChatAPIError, WeChatUnavailable
from bot.wechat.media import MediaStore
from tests.conftest import free_port
from tests.wechat.conftest import WX_SECRET, FakeControl, wx_make_settings

OPENID = "oUpdv0a1B2c3D4e5F6g7H8i9xyz"
STABLE = "/cgi-bin/stable_token"
SEND = "/cgi-bin/message/custom/send"


def text(content: str, openid: str = OPENID) -> dict[str, object]:
    return {"touser": openid, "msgtype": "text", "text": {"content": content}}


@pytest.fixture
async def api(wx_settings: Settings) -> WeChatAPI:
    client = WeChatAPI(wx_settings, timeout=5)
    yield client  # type: ignore[misc]
    await client.close()


async def test_token_is_fetched_once_and_reused(api: WeChatAPI, wx_fake: FakeControl) -> None:
    token = await api.access_token()
    assert token
    assert await api.access_token() == token
    await api.send_custom(text("你好"))
    assert await wx_fake.calls(STABLE) == 1


async def test_forced_token_is_new(api: WeChatAPI, wx_fake: FakeControl) -> None:
    first = await api.access_token()
    second = await api.access_token(force=True)
    assert second != first
    await api.send_custom(text("x"))
    assert await wx_fake.calls(STABLE) == 2


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_token_error_refreshes_once_and_retries(api: WeChatAPI, wx_fake: FakeControl, errcode: int) -> None:
    await api.access_token()
    await wx_fake.inject("message/custom/send", count=1, errcode=errcode)
    await api.send_custom(text("重试一次"))
    sent = await wx_fake.sent()
    assert [m["payload"]["text"]["content"] for m in sent] == ["重试一次"]
    assert await wx_fake.calls(STABLE) == 2
    assert await wx_fake.calls(SEND) == 2


async def test_expired_token_on_the_server_is_replaced(api: WeChatAPI, wx_fake: FakeControl) -> None:
    old = await api.access_token()
    await wx_fake.expire_tokens()
    await api.send_custom(text("x"))
    assert await api.access_token() != old
    assert len(await wx_fake.sent()) == 1


async def test_token_error_twice_gives_up(api: WeChatAPI, wx_fake: FakeControl) -> None:
    await wx_fake.inject("message/custom/send", count=2, errcode=40001)
    with pytest.raises(WeChatAPIError) as info:
        await api.send_custom(text("x"))
    assert info.value.is_token_error
    assert await wx_fake.calls(SEND) == 2


@pytest.mark.parametrize(
    ("errcode", "window", "quota"), [(45015, True, False), (45047, False, True), (45009, False, True)]
)
async def test_window_and_quota_errors_are_classified(
    api: WeChatAPI, wx_fake: FakeControl, errcode: int, window: bool, quota: bool
) -> None:
    await wx_fake.inject("message/custom/send", count=1, errcode=errcode)
    with pytest.raises(WeChatAPIError) as info:
        await api.send_custom(text("x"))
    assert info.value.errcode == errcode
    assert info.value.is_window_closed is window
    assert info.value.is_quota is quota
    assert not info.value.is_token_error


@pytest.mark.parametrize("rule", [{"status": 503}, {"status": 502}, {"errcode": -1}])
async def test_server_failures_are_unavailable(api: WeChatAPI, wx_fake: FakeControl, rule: dict[str, int]) -> None:
    await wx_fake.inject("message/custom/send", count=1, **rule)
    with pytest.raises(WeChatUnavailable):
        await api.send_custom(text("x"))
    assert await wx_fake.sent() == []


async def test_a_hanging_server_times_out(wx_settings: Settings, wx_fake: FakeControl) -> None:
    await wx_fake.inject("message/custom/send", count=1, hang=3)
    async with WeChatAPI(wx_settings, timeout=0.5) as api:
        await api.access_token()
        with pytest.raises(WeChatUnavailable):
            await api.send_custom(text("x"))


async def test_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    settings = wx_make_settings(f"http://127.0.0.1:{free_port()}", tmp_path)
    async with WeChatAPI(settings, timeout=2) as api:
        with pytest.raises(WeChatUnavailable):
            await api.send_custom(text("x"))


async def test_wrong_secret_is_an_api_error(wx_fake_base: str, tmp_path: Path) -> None:
    settings = wx_make_settings(wx_fake_base, tmp_path, BOT_WECHAT_SECRET="not-the-secret")
    async with WeChatAPI(settings) as api:
        with pytest.raises(WeChatAPIError) as info:
            await api.access_token()
    assert info.value.errcode == 40125


async def test_secret_token_and_openid_never_logged(
    api: WeChatAPI, wx_fake: FakeControl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await api.access_token()
    await wx_fake.inject("message/custom/send", count=1, errcode=40001)
    await api.send_custom(text("a"))
    await wx_fake.inject("message/custom/send", count=1, status=500)
    with pytest.raises(WeChatUnavailable) as unavailable:
        await api.send_custom(text("b"))
    await wx_fake.inject("message/custom/send", count=1, errcode=45015)
    with pytest.raises(WeChatAPIError) as refused:
        await api.send_custom(text("c"))
    new_token = await api.access_token()
    logged = caplog.text + str(unavailable.value) + str(refused.value)
    for secret in (WX_SECRET, token, new_token, OPENID):
        assert secret not in logged
    assert "oUpd…xyz" in caplog.text


async def test_create_menu(api: WeChatAPI, wx_fake: FakeControl) -> None:
    menu = {"button": [{"type": "click", "name": "转人工", "key": "HANDOFF"}]}
    await api.create_menu(menu)
    assert await wx_fake.menu() == menu
    assert (await api.get_menu())["menu"] == menu


async def test_call_is_generic(api: WeChatAPI, wx_fake: FakeControl) -> None:
    data = await api.call("POST", "/cgi-bin/message/custom/send", json=text("generic"))
    assert data["errcode"] == 0
    assert [m["payload"]["text"]["content"] for m in await wx_fake.sent()] == ["generic"]


async def test_download_media(api: WeChatAPI, wx_fake: FakeControl) -> None:
    media_id = await wx_fake.register_media(b"\x89PNG fake image", "image/png", "x.png")
    media = await api.download_media(media_id)
    assert media.content == b"\x89PNG fake image"
    assert media.content_type == "image/png"
    assert media.filename == "x.png"


async def test_download_unknown_media_is_an_error(api: WeChatAPI) -> None:
    with pytest.raises(WeChatAPIError) as info:
        await api.download_media("no-such-media")
    assert info.value.errcode == 40007


async def test_download_media_refreshes_token(api: WeChatAPI, wx_fake: FakeControl) -> None:
    media_id = await wx_fake.register_media(b"bytes", "image/jpeg")
    await api.access_token()
    await wx_fake.expire_tokens()
    assert (await api.download_media(media_id)).content == b"bytes"


async def test_media_store_saves_under_a_generated_name(
    api: WeChatAPI, wx_fake: FakeControl, wx_settings: Settings
) -> None:
    content = b"\xff\xd8\xff" + bytes(range(256)) * 10
    media_id = await wx_fake.register_media(content, "image/jpeg", "../../../etc/passwd")
    store = MediaStore(wx_settings.media_dir)
    stored = await store.download(api, media_id, "image")
    root = wx_settings.media_dir.resolve()
    assert stored.path.is_relative_to(root)
    assert stored.path.suffix == ".jpg"
    assert "passwd" not in str(stored.path)
    assert stored.path.read_bytes() == content
    assert stored.size == len(content)
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert stored.content_type == "image/jpeg"
    assert store.relative(stored).startswith("image/")
    again = await store.download(api, media_id, "image")
    assert again.path != stored.path


async def test_media_store_refuses_large_files_and_odd_types(
    api: WeChatAPI, wx_fake: FakeControl, wx_settings: Settings
) -> None:
    store = MediaStore(wx_settings.media_dir, max_bytes=1000)
    big = await wx_fake.register_media(b"x" * 5000, "image/jpeg")
    with pytest.raises(MediaTooLarge):
        await store.download(api, big, "image")
    assert not wx_settings.media_dir.exists() or not any(p.is_file() for p in wx_settings.media_dir.rglob("*"))
    weird = await wx_fake.register_media(b"data", "application/x-weird")
    stored = await store.download(api, weird, "file")
    assert stored.path.suffix == ".bin"
    with pytest.raises(ValueError):
        await store.download(api, weird, "../etc")
