"""The fake WeChat API server, over HTTP, as the bot and the demo use it."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.wechat.conftest import WX_APPID, WX_SECRET, FakeControl


async def post(http: aiohttp.ClientSession, url: str, body: Any, **params: str) -> dict[str, Any]:
    async with http.post(url, json=body, params=params) as resp:
        data: dict[str, Any] = await resp.json(content_type=None)
        return data


async def token(fake: FakeControl, force: bool = False) -> str:
    data = await post(
        fake.http, fake.base + "/cgi-bin/stable_token",
        {"grant_type": "client_credential", "appid": WX_APPID, "secret": WX_SECRET, "force_refresh": force},
    )
    assert data["expires_in"] > 0
    return str(data["access_token"])


def text(openid: str, content: str) -> dict[str, Any]:
    return {"touser": openid, "msgtype": "text", "text": {"content": content}}


async def send(fake: FakeControl, access_token: str, payload: dict[str, Any]) -> dict[str, Any]:
    return await post(fake.http, fake.base + "/cgi-bin/message/custom/send", payload, access_token=access_token)


@pytest.mark.parametrize(
    ("appid", "secret", "errcode"),
    [(WX_APPID, "wrong", 40125), ("wxsomeoneelse", WX_SECRET, 40013)],
)
async def test_stable_token_checks_credentials(wx_fake: FakeControl, appid: str, secret: str, errcode: int) -> None:
    data = await post(
        wx_fake.http, wx_fake.base + "/cgi-bin/stable_token",
        {"grant_type": "client_credential", "appid": appid, "secret": secret},
    )
    assert data["errcode"] == errcode
    assert "access_token" not in data


async def test_stable_token_is_stable_until_forced(wx_fake: FakeControl) -> None:
    first = await token(wx_fake)
    assert await token(wx_fake) == first
    forced = await token(wx_fake, force=True)
    assert forced != first
    assert (await send(wx_fake, first, text("oUser1", "hi")))["errcode"] == 40001
    assert (await send(wx_fake, forced, text("oUser1", "hi")))["errcode"] == 0
    assert await wx_fake.calls("/cgi-bin/stable_token") == 3


async def test_classic_token_endpoint(wx_fake: FakeControl) -> None:
    async with wx_fake.http.get(
        wx_fake.base + "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": WX_APPID, "secret": WX_SECRET},
    ) as resp:
        data = await resp.json()
    assert (await send(wx_fake, data["access_token"], text("oUser1", "hi")))["errcode"] == 0


async def test_custom_send_records_messages_with_seq(wx_fake: FakeControl) -> None:
    t = await token(wx_fake)
    assert (await send(wx_fake, "made-up-token", text("oA", "x")))["errcode"] == 40001
    for openid, content in [("oA", "一"), ("oB", "二"), ("oA", "三")]:
        assert (await send(wx_fake, t, text(openid, content)))["errcode"] == 0
    everything = await wx_fake.sent()
    assert [m["seq"] for m in everything] == [1, 2, 3]
    assert [m["payload"]["text"]["content"] for m in await wx_fake.sent("oA")] == ["一", "三"]
    newer = await wx_fake.sent(since=everything[0]["seq"])
    assert [m["payload"]["text"]["content"] for m in newer] == ["二", "三"]


async def test_custom_send_validates_payload(wx_fake: FakeControl) -> None:
    t = await token(wx_fake)
    assert (await send(wx_fake, t, {"msgtype": "text", "text": {"content": "x"}}))["errcode"] == 40003
    assert (await send(wx_fake, t, {"touser": "oA", "msgtype": "bogus"}))["errcode"] == 40008
    assert (await send(wx_fake, t, text("oA", "长" * 1000)))["errcode"] == 45002
    assert await wx_fake.sent() == []


async def test_expired_tokens_answer_42001(wx_fake: FakeControl) -> None:
    t = await token(wx_fake)
    await wx_fake.expire_tokens()
    assert (await send(wx_fake, t, text("oA", "x")))["errcode"] == 42001
    fresh = await token(wx_fake)
    assert fresh != t
    assert (await send(wx_fake, fresh, text("oA", "x")))["errcode"] == 0


async def test_injected_errors_apply_to_the_next_n_calls(wx_fake: FakeControl) -> None:
    t = await token(wx_fake)
    await wx_fake.inject("message/custom/send", count=2, errcode=45047)
    await wx_fake.inject("/cgi-bin/message/custom/send", count=1, status=503)
    codes = [(await send(wx_fake, t, text("oA", "x")))["errcode"] for _ in range(2)]
    assert codes == [45047, 45047]
    async with wx_fake.http.post(
        wx_fake.base + "/cgi-bin/message/custom/send", json=text("oA", "x"), params={"access_token": t}
    ) as resp:
        assert resp.status == 503
    assert (await send(wx_fake, t, text("oA", "ok")))["errcode"] == 0
    assert len(await wx_fake.sent()) == 1
    assert await wx_fake.calls("/cgi-bin/message/custom/send") == 4


async def test_bad_injection_request_is_refused(wx_fake: FakeControl) -> None:
    async with wx_fake.http.post(wx_fake.base + "/fake/errors", json={"endpoint": "x", "count": 0}) as resp:
        assert resp.status == 400
    async with wx_fake.http.post(wx_fake.base + "/fake/errors", data=b"not json") as resp:
        assert resp.status == 400


async def test_media_roundtrip_and_unknown_media(wx_fake: FakeControl) -> None:
    t = await token(wx_fake)
    media_id = await wx_fake.register_media(b"\xff\xd8jpegbytes", "image/jpeg", "p.jpg")
    async with wx_fake.http.get(
        wx_fake.base + "/cgi-bin/media/get", params={"access_token": t, "media_id": media_id}
    ) as resp:
        assert resp.content_type == "image/jpeg"
        assert await resp.read() == b"\xff\xd8jpegbytes"
    async with wx_fake.http.get(
        wx_fake.base + "/cgi-bin/media/get", params={"access_token": t, "media_id": "nope"}
    ) as resp:
        assert (await resp.json())["errcode"] == 40007


async def test_media_upload(wx_fake: FakeControl) -> None:
    t = await token(wx_fake)
    form = aiohttp.FormData()
    form.add_field("media", b"pngbytes", filename="a.png", content_type="image/png")
    async with wx_fake.http.post(
        wx_fake.base + "/cgi-bin/media/upload", data=form, params={"access_token": t, "type": "image"}
    ) as resp:
        media_id = (await resp.json())["media_id"]
    async with wx_fake.http.get(
        wx_fake.base + "/cgi-bin/media/get", params={"access_token": t, "media_id": media_id}
    ) as resp:
        assert await resp.read() == b"pngbytes"


async def test_menu_create_recorded_and_checked(wx_fake: FakeControl) -> None:
    t = await token(wx_fake)
    menu = {"button": [{"type": "click", "name": "办事指南", "key": "GUIDE"}]}
    url = wx_fake.base + "/cgi-bin/menu/create"
    too_many = {"button": [{"type": "click", "name": str(i), "key": f"K{i}"} for i in range(4)]}
    assert (await post(wx_fake.http, url, too_many, access_token=t))["errcode"] == 40016
    assert await wx_fake.menu() is None
    assert (await post(wx_fake.http, url, menu, access_token=t))["errcode"] == 0
    assert await wx_fake.menu() == menu


async def test_reset_forgets_everything(wx_fake: FakeControl) -> None:
    t = await token(wx_fake)
    await send(wx_fake, t, text("oA", "x"))
    await post(wx_fake.http, wx_fake.base + "/fake/reset", {})
    assert await wx_fake.sent() == []
    assert await wx_fake.calls("/cgi-bin/stable_token") == 0
    assert (await send(wx_fake, t, text("oA", "x")))["errcode"] == 40001
