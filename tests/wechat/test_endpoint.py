"""The /wechat endpoint over HTTP: official vectors, every type in every mode, exactly-once."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from bot.handler.router import Router, Text
from bot.storage.db import Database
from bot.storage.models import InboundKey, Message, Resident
from tests.conftest import AES_KEY, APPID, TOKEN

MODES = ["plain", "compat", "safe"]

TENCENT_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2"
    "LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux"
    "5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpX"
    "gCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9"
    "GhglF2PE="
)


async def count(url: str, model, *where) -> int:
    db = Database(url)
    try:
        async with db.session() as s:
            return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    finally:
        await db.dispose()


async def test_url_verification_official_vector(service_factory, sqlite_url):
    # Tencent's vector is from 2024: the freshness check is off for it (tests/wechat/test_hardening.py
    # checks that a stale verification is refused).
    svc = await service_factory(sqlite_url, BOT_WECHAT_TOKEN="AAAAA", BOT_TIMESTAMP_WINDOW=0)
    params = {
        "signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78",
        "timestamp": "1714037059",
        "nonce": "486452656",
        "echostr": "hello-echo",
    }
    async with svc.http.get(svc.wechat_url, params=params) as resp:
        assert resp.status == 200
        assert await resp.text() == "hello-echo"
    async with svc.http.get(svc.wechat_url, params={**params, "signature": "0" * 40}) as resp:
        assert resp.status == 403
    async with svc.http.get(svc.wechat_url, params={"echostr": "x"}) as resp:
        assert resp.status == 403


async def test_tencent_sample_decrypts_to_abcdtet(service_factory, sqlite_url):
    """Tencent's sample message (compatible mode) is accepted and decrypted to its text."""
    svc = await service_factory(sqlite_url, BOT_TIMESTAMP_WINDOW=0)
    body = (
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
        f"<Encrypt><![CDATA[{TENCENT_ENCRYPT}]]></Encrypt></xml>"
    )
    from bot.wechat.crypto import signature

    params = {
        "signature": signature(TOKEN, "1409735669", "1320562132"),
        "timestamp": "1409735669",
        "nonce": "1320562132",
        "encrypt_type": "aes",
        "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    }
    async with svc.http.post(svc.wechat_url, params=params, data=body) as resp:
        assert resp.status == 200
        reply_xml = await resp.text()
    reply = svc.sender("safe").read_reply(200, reply_xml)
    assert reply.reply is not None and reply.reply["ToUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    db = Database(sqlite_url)
    async with db.session() as s:
        content = await s.scalar(select(Message.content).where(Message.direction == "in"))
    await db.dispose()
    assert content == "abcdteT"


def without_key_for_plain(mode: str) -> dict[str, str]:
    """Plaintext is 明文模式: no EncodingAESKey (with one, the service takes only encrypted messages)."""
    return {"BOT_WECHAT_AES_KEY": ""} if mode == "plain" else {}


@pytest.mark.parametrize("mode", MODES)
async def test_every_type_in_every_mode(service_factory, database_url, fake_api, mode):
    service = await service_factory(database_url, fake_api, **without_key_for_plain(mode))
    s = service.sender(mode)
    oid = f"o_types_{mode}"
    cases = [
        (s.text(oid, "你好"), "社区服务小助手"),
        (s.voice(oid, recognition="你好啊"), "社区服务小助手"),
        (s.voice(oid, recognition=None), "打字"),
        (s.image(oid, media_id="img-1"), "图片"),
        (s.video(oid, media_id="vid-1"), "视频"),
        (s.video(oid, media_id="vid-2", short=True), "视频"),
        (s.location(oid, 40.08, 113.3, "平城区新建南路"), "平城区新建南路"),
        (s.link(oid, "通知", "https://example.org/a"), "链接"),
        (s.event(oid, "subscribe"), "欢迎关注"),
        (s.event(oid, "SCAN", "building:新建南社区/3号楼", Ticket="t"), "3号楼"),
        (s.event(oid, "CLICK", "REPORT"), "遇到了什么问题"),
        (s.event(oid, "CLICK", "NO_SUCH_KEY"), None),
        (s.event(oid, "VIEW", "https://example.org"), None),
        (s.event(oid, "LOCATION", Latitude="40.1", Longitude="113.3", Precision="30"), None),
        (s.event(oid, "TEMPLATESENDJOBFINISH", Status="success", MsgID="1"), None),
        (s.event(oid, "some_future_event"), None),
        (s.event(oid, "unsubscribe"), None),
    ]
    for i, (fields, expected) in enumerate(cases):
        fields["CreateTime"] = int(time.time()) + i  # events need distinct keys
        reply = await s.send(service.http, fields)
        assert reply.status == 200, (fields, reply.body)
        if expected is None:
            assert reply.body == "success", fields
        else:
            assert reply.content is not None and expected in reply.content, (fields, reply.content)
            if mode != "plain":
                assert "<Encrypt>" in reply.body and expected not in reply.body
    url = service.settings.database_url
    assert await count(url, Message, Message.direction == "in") == len(cases)
    db = Database(url)
    async with db.session() as sess:
        r = await sess.scalar(select(Resident).where(Resident.openid == oid))
    await db.dispose()
    assert r is not None and r.building == "3号楼" and r.community == "新建南社区" and r.subscribed is False


async def test_subscribe_with_scene_binds_building(service):
    s = service.sender("safe")
    reply = await s.send(service.http, s.event("o_scene", "subscribe", "qrscene_building:新建南社区/5号楼"))
    assert "欢迎关注" in reply.content and "5号楼" in reply.content


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_retry_gets_same_reply_and_one_record(service_factory, database_url, fake_api, mode):
    service = await service_factory(database_url, fake_api, **without_key_for_plain(mode))
    s = service.sender(mode)
    fields = s.text("o_retry", "你好")
    first = await s.send(service.http, fields)
    again = [await s.send(service.http, fields) for _ in range(3)]
    assert all(r.content == first.content for r in again)
    url = service.settings.database_url
    assert await count(url, Message, Message.direction == "in") == 1
    assert await count(url, InboundKey) == 1
    # Events have MsgId 0 in wechatpy: their own key is sender + CreateTime + event.
    ev = s.event("o_retry", "subscribe")
    r1, r2 = await s.send(service.http, ev), await s.send(service.http, ev)
    assert r1.content == r2.content
    assert await count(url, Message, Message.direction == "in", Message.event == "subscribe") == 1


async def test_concurrent_retries_are_processed_once(service):
    s = service.sender("safe")
    fields = s.text("o_race", "你好")
    replies = await asyncio.gather(*(s.send(service.http, fields) for _ in range(4)))
    assert {r.status for r in replies} == {200}
    assert len({r.content for r in replies if r.content}) == 1
    assert await count(service.settings.database_url, Message, Message.direction == "in") == 1


async def test_a_burst_of_new_residents_with_retries_is_processed_once_each(service):
    """Claims and replies of concurrent requests share transactions (group commit): a burst from
    residents writing for the first time, each message also retried at once, still gives one
    resident, one key, one inbound and one outbound log row per message, and the same reply to a
    message and its retry."""
    s = service.sender("safe")
    messages = [s.text(f"o_burst_{i:02d}", "你好") for i in range(20)]
    replies = await asyncio.gather(*(s.send(service.http, m) for m in messages + messages))
    assert {r.status for r in replies} == {200}
    first, again = replies[:20], replies[20:]
    assert all(a.content and a.content == b.content for a, b in zip(first, again, strict=True))
    url = service.settings.database_url
    assert await count(url, Resident, Resident.openid.like("o_burst_%")) == 20
    assert await count(url, InboundKey, InboundKey.status == "replied") == 20
    assert await count(url, Message, Message.direction == "in") == 20
    assert await count(url, Message, Message.direction == "out", Message.via == "passive") == 20


async def test_restart_between_message_and_retry(service_factory, database_url, fake_api):
    svc = await service_factory(database_url, fake_api)
    s = svc.sender("safe")
    fields = s.text("o_restart", "你好")
    first = await s.send(svc.http, fields)
    await svc.runner.cleanup()
    svc2 = await service_factory(database_url, fake_api)
    again = await svc2.sender("safe").send(svc2.http, fields)
    assert again.content == first.content
    assert await count(database_url, Message, Message.direction == "in") == 1


def slow_router(delay: float) -> Router:
    router = Router("slow-test")

    @router.message(Text("慢一点"))
    async def slow(ctx):
        await asyncio.sleep(delay)
        return "久等了，这是您的答复。"

    return router


async def test_deadline_fallback_sends_once_through_the_api(service_factory, database_url, fake_api):
    svc = await service_factory(
        database_url, fake_api, app_kwargs={"routers": [slow_router(1.0)]}, BOT_REPLY_BUDGET=0.3
    )
    s = svc.sender("safe")
    fields = s.text("o_slow", "慢一点")
    first = await s.send(svc.http, fields)
    assert first.body == "success"
    retry = await s.send(svc.http, fields)  # WeChat retries: still "success", nothing new
    assert retry.body == "success"
    for _ in range(100):
        sent = await svc.fake_sent("o_slow")
        if sent:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    sent = await svc.fake_sent("o_slow")
    assert [m["payload"]["text"]["content"] for m in sent] == ["久等了，这是您的答复。"]
    assert await count(database_url, Message, Message.direction == "in") == 1


async def test_long_reply_is_split_and_rest_goes_through_api(service_factory, sqlite_url, fake_api):
    router = Router("long-test")

    @router.message(Text("长"))
    async def long(ctx):
        return "这是一段很长的说明。" * 500

    svc = await service_factory(sqlite_url, fake_api, app_kwargs={"routers": [router]})
    s = svc.sender()
    reply = await s.send(svc.http, s.text("o_long", "长"))
    assert len(reply.content.encode()) <= 2048
    expected = "这是一段很长的说明。" * 500
    for _ in range(100):
        sent = await svc.fake_sent("o_long")
        total = reply.content + "".join(m["payload"]["text"]["content"] for m in sent)
        if len(total) >= len(expected):
            break
        await asyncio.sleep(0.1)
    assert total == expected  # in order, nothing lost or repeated
    assert all(len(m["payload"]["text"]["content"].encode()) <= 2048 for m in sent)


async def test_reply_text_cannot_break_the_xml(service_factory, sqlite_url):
    router = Router("evil")

    @router.message(Text("坏"))
    async def evil(ctx):
        return "a]]></Content><Evil>1</Evil>\x00\x07<![CDATA[b"

    # Plaintext beside the encrypted modes: an operator switching modes allows it explicitly.
    svc = await service_factory(sqlite_url, app_kwargs={"routers": [router]}, BOT_WECHAT_ALLOW_PLAINTEXT=1)
    for mode in MODES:
        s = svc.sender(mode)
        reply = await s.send(svc.http, s.text("o_evil", "坏"))
        assert reply.content == "a]]></Content><Evil>1</Evil><![CDATA[b"
        assert "Evil" not in reply.reply or reply.reply.get("Evil") is None


async def test_resident_text_with_xml_specials_arrives_intact(service_factory, sqlite_url):
    """Text that closes a CDATA section, entities and markup-like text reach the handler as typed
    (the sender splits ``]]>`` across two CDATA sections, as WeChat does)."""
    router = Router("echo")

    @router.message(Text(predicate=lambda text: text.startswith("回声")))
    async def echo(ctx):
        return "收到：" + ctx.text

    svc = await service_factory(sqlite_url, app_kwargs={"routers": [router]}, BOT_WECHAT_ALLOW_PLAINTEXT=1)
    typed = "回声 a]]>b &amp; <c> ]]]]> 尾"
    for mode in MODES:
        s = svc.sender(mode)
        reply = await s.send(svc.http, s.text(f"o_echo_{mode}", typed))
        assert reply.content == "收到：" + typed, mode


async def test_key_rotation_previous_key_still_decrypts(service_factory, sqlite_url):
    new_key = "B" * 43
    svc = await service_factory(sqlite_url, BOT_WECHAT_AES_KEY=new_key, BOT_WECHAT_AES_KEY_PREVIOUS=AES_KEY)
    from bot.wechat.simulate import WeChatSender

    old = WeChatSender(svc.wechat_url, TOKEN, APPID, AES_KEY, mode="safe")
    new = WeChatSender(svc.wechat_url, TOKEN, APPID, new_key, mode="safe")
    r_old = await old.send(svc.http, old.text("o_rot", "你好"))
    r_new = await new.send(svc.http, new.text("o_rot", "你好"))
    assert r_old.content and r_new.content  # each reply decrypts with the key its request used


async def test_two_different_clicks_in_one_second_are_two_events(service):
    s = service.sender()
    now = int(time.time())
    first = s.event("o_clicks", "CLICK", "REPORT")
    second = s.event("o_clicks", "CLICK", "POINTS")
    first["CreateTime"] = second["CreateTime"] = now
    r1 = await s.send(service.http, first)
    r2 = await s.send(service.http, second)
    assert r1.content != r2.content
    assert (await s.send(service.http, first)).content == r1.content  # a retry is still the same event
    assert await count(service.settings.database_url, Message, Message.direction == "in") == 2


async def test_message_outside_the_48_hour_window_is_shown_on_the_next_message(service_factory, database_url, fake_api):
    svc = await service_factory(
        database_url, fake_api, app_kwargs={"routers": [slow_router(1.0)]}, BOT_REPLY_BUDGET=0.3
    )
    async with svc.http.post(
        f"{fake_api}/fake/errors", json={"endpoint": "message/custom/send", "count": 5, "errcode": 45015}
    ) as resp:
        assert resp.status == 200
    s = svc.sender("safe")
    assert (await s.send(svc.http, s.text("o_window", "慢一点"))).body == "success"
    from bot.storage.models import OutboxMessage

    for _ in range(100):  # the deferred answer cannot be delivered: WeChat says the window closed
        if await count(database_url, OutboxMessage, OutboxMessage.status == "expired") == 1:
            break
        await asyncio.sleep(0.1)
    assert await count(database_url, OutboxMessage, OutboxMessage.status == "expired") == 1
    reply = await s.send(svc.http, s.text("o_window", "你好"))
    assert reply.content.startswith("久等了，这是您的答复。")  # shown once, in front of the new answer
    again = await s.send(svc.http, s.text("o_window", "你好"))
    assert "久等了" not in again.content
    assert await count(database_url, OutboxMessage, OutboxMessage.status == "shown") == 1


async def test_logs_never_carry_openids_or_phone_numbers(service_factory, sqlite_url, fake_api, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    svc = await service_factory(
        sqlite_url, fake_api, app_kwargs={"routers": [slow_router(0.6)]}, BOT_REPLY_BUDGET=0.2
    )
    openid = "oSecretOpenid1234567890abc"
    s = svc.sender("safe")
    for fields in (
        s.text(openid, "我的电话13812345678，住3号楼2单元501"),
        s.event(openid, "CLICK", "REPORT"),
        s.text(openid, "慢一点"),
    ):
        await s.send(svc.http, fields)
        await s.send(svc.http, fields)  # a retry
    await asyncio.sleep(1.0)
    assert caplog.records, "expected some log lines"
    assert openid not in caplog.text
    assert "13812345678" not in caplog.text
