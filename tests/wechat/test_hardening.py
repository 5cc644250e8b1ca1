"""/wechat as an attacker and an unlucky network would use it (issue 12): bodies in pieces, safe
mode, replays of a signed query, dedup scoped to the sender, numbers that do not fit, floods of
elements. Every probe goes over HTTP to a running service."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import func, select

from bot.handler.router import Router, Text
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import InboundKey, Message, Resident, WeChatNonce
from bot.wechat.crypto import signature
from bot.wechat.replay import DatabaseReplayGuard, Use
from bot.wechat.simulate import xml_of
from tests.conftest import REDIS_URL, TOKEN


async def count(url: str, model: Any, *where: Any) -> int:
    db = Database(url)
    try:
        async with db.session() as s:
            return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    finally:
        await db.dispose()


def signed(ts: str | None = None, nonce: str = "1234567890") -> dict[str, str]:
    ts = ts or str(int(time.time()))
    return {"signature": signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}


def echo_router() -> Router:
    router = Router("echo")

    @router.message(Text(predicate=lambda text: text.startswith("回声")))
    async def echo(ctx):
        return "收到：" + ctx.text

    return router


# --- 1. a body that arrives in pieces ---------------------------------------------------------------


async def raw_post(base: str, target: str, pieces: list[bytes], headers: dict[str, str]) -> tuple[int, str]:
    """POST over a bare socket: the request line and headers, then each piece after a pause."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        head = f"POST {target} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode("latin-1"))
        await writer.drain()
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.02)
        response = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), body.decode("utf-8")


def chunked(body: bytes, size: int) -> list[bytes]:
    """``Transfer-Encoding: chunked`` framing, one network piece per chunk, then the last chunk."""
    out = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return [*out, b"0\r\n\r\n"]


@pytest.mark.parametrize("at_once", [False, True], ids=["in pieces", "at once"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_in_pieces_is_read_whole(service_factory, sqlite_url, framing, at_once):
    svc = await service_factory(sqlite_url, app_kwargs={"routers": [echo_router()]})
    sender = svc.sender("safe")
    query, body = sender.build(sender.text(f"o_pieces_{framing}", "回声 一条分几段到达的消息"))
    data = body.encode()
    assert len(data) > 400
    target = "/wechat?" + urlencode(query)
    if framing == "content-length":
        headers = {"Content-Type": "text/xml", "Content-Length": str(len(data))}
        pieces = [data[:200], data[200:]]
    else:
        headers = {"Content-Type": "text/xml", "Transfer-Encoding": "chunked"}
        pieces = chunked(data, 150)
    if at_once:  # the whole body with the headers' read: taken from the buffer as it is
        pieces = [b"".join(pieces)]
    status, text = await raw_post(svc.base, target, pieces, headers)
    assert status == 200, text
    assert sender.read_reply(status, text).content == "收到：回声 一条分几段到达的消息"


@pytest.mark.parametrize("at_once", [False, True], ids=["in pieces", "at once"])
async def test_a_chunked_body_over_the_limit_is_refused_in_pieces(service_factory, sqlite_url, at_once):
    svc = await service_factory(sqlite_url, BOT_MAX_BODY_BYTES=2048)
    sender = svc.sender("safe")
    query, body = sender.build(sender.text("o_pieces_big", "长" * 2000))
    pieces = chunked(body.encode(), 500)
    status, text = await raw_post(
        svc.base, "/wechat?" + urlencode(query), [b"".join(pieces)] if at_once else pieces,
        {"Content-Type": "text/xml", "Transfer-Encoding": "chunked"},
    )
    assert status == 413 and "too large" in text
    assert await count(sqlite_url, InboundKey) == 0


# --- 3. safe mode ------------------------------------------------------------------------------------


async def test_with_a_key_plaintext_is_refused(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url)  # BOT_WECHAT_AES_KEY is set
    body = xml_of({"ToUserName": "gh_x", "FromUserName": "o_forged", "CreateTime": int(time.time()),
                   "MsgType": "text", "Content": "查积分", "MsgId": 1})
    for params in (signed(nonce="11"), {**signed(nonce="12"), "encrypt_type": "raw"}):
        async with svc.http.post(svc.wechat_url, params=params, data=body.encode()) as resp:
            assert resp.status == 403
            assert "encrypt_type=aes" in await resp.text()
    assert await count(sqlite_url, Resident) == 0 and await count(sqlite_url, InboundKey) == 0
    # WeChat's own modes with a key, compatible and safe, both go through.
    for mode in ("compat", "safe"):
        sender = svc.sender(mode)
        reply = await sender.send(svc.http, sender.text(f"o_{mode}", "你好"))
        assert reply.status == 200 and reply.content


async def test_plaintext_with_a_key_only_when_the_operator_allows_it(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url, BOT_WECHAT_ALLOW_PLAINTEXT=1)
    sender = svc.sender("plain")
    reply = await sender.send(svc.http, sender.text("o_switching", "你好"))
    assert reply.status == 200 and reply.content


# --- 4. replays ----------------------------------------------------------------------------------


@pytest.fixture(params=["database", "redis"])
def nonce_store(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "redis":
        request.getfixturevalue("redis_url")
        return {"BOT_REDIS_URL": REDIS_URL}
    return {}


async def test_a_signed_query_with_another_body_is_refused(service_factory, database_url, nonce_store):
    """Plaintext mode: the signature does not cover the body, so the (timestamp, nonce) pair is
    remembered with it. Another process (another service on the same storage) refuses it too."""
    svc = await service_factory(database_url, app_kwargs={"routers": [echo_router()]},
                                BOT_WECHAT_AES_KEY="", **nonce_store)
    other = await service_factory(database_url, app_kwargs={"routers": [echo_router()]},
                                  BOT_WECHAT_AES_KEY="", **nonce_store)
    sender = svc.sender("plain")
    query, genuine = sender.build(sender.text("o_genuine", "回声 真的"))
    forged = xml_of(sender.text("o_victim", "回声 假的"))
    async with svc.http.post(svc.wechat_url, params=query, data=genuine.encode()) as resp:
        first = sender.read_reply(resp.status, await resp.text())
    assert first.content == "收到：回声 真的"
    for target in (svc, other):
        async with svc.http.post(target.wechat_url, params=query, data=forged.encode()) as resp:
            assert resp.status == 403
            assert "replayed nonce" in await resp.text()
    assert await count(database_url, Resident, Resident.openid == "o_victim") == 0
    # The same query with the same body is a retry: the stored reply, nothing new.
    for target in (svc, other):
        async with svc.http.post(target.wechat_url, params=query, data=genuine.encode()) as resp:
            assert sender.read_reply(resp.status, await resp.text()).content == first.content
    assert await count(database_url, Message, Message.direction == "in") == 1
    stored = await count(database_url, WeChatNonce)
    assert stored == (0 if nonce_store else 1)  # with Redis the pairs live there


async def test_a_captured_safe_mode_query_carries_no_other_body(service_factory, database_url):
    """Safe mode: msg_signature covers the ciphertext, so a captured query takes no other body,
    encrypted or plaintext; the exact request again is a retry (the stored reply, one message)."""
    svc = await service_factory(database_url)
    sender = svc.sender("safe")
    query, body = sender.build(sender.text("o_safe_replay", "你好"))
    async with svc.http.post(svc.wechat_url, params=query, data=body.encode()) as resp:
        first = sender.read_reply(resp.status, await resp.text())
    assert first.status == 200 and first.content
    _, other_body = sender.build(sender.text("o_safe_victim", "积分"), query["timestamp"], query["nonce"])
    plaintext = xml_of(sender.text("o_safe_victim", "积分"))
    for forged, refusal in ((other_body, "bad msg_signature"), (plaintext, "missing field Encrypt")):
        async with svc.http.post(svc.wechat_url, params=query, data=forged.encode()) as resp:
            assert resp.status in (400, 403) and refusal in await resp.text()
    async with svc.http.post(svc.wechat_url, params=query, data=body.encode()) as resp:
        assert sender.read_reply(resp.status, await resp.text()).content == first.content
    assert await count(database_url, Resident, Resident.openid == "o_safe_victim") == 0
    assert await count(database_url, Message, Message.direction == "in") == 1


async def test_url_verification_checks_freshness_and_nonces(service_factory, database_url, nonce_store):
    svc = await service_factory(database_url, BOT_WECHAT_AES_KEY="", **nonce_store)
    month_ago = str(int(time.time()) - 30 * 86400)
    async with svc.http.get(svc.wechat_url, params={**signed(month_ago), "echostr": "e1"}) as resp:
        assert resp.status == 403 and "stale timestamp" in await resp.text()
    fresh = signed(nonce="777")
    async with svc.http.get(svc.wechat_url, params={**fresh, "echostr": "e2"}) as resp:
        assert resp.status == 200 and await resp.text() == "e2"
    # The verification's query, read from a log, does not carry a forged message.
    forged = xml_of({"ToUserName": "gh_x", "FromUserName": "o_forged", "CreateTime": int(time.time()),
                     "MsgType": "text", "Content": "你好", "MsgId": 9})
    async with svc.http.post(svc.wechat_url, params=fresh, data=forged.encode()) as resp:
        assert resp.status == 403 and "replayed nonce" in await resp.text()
    assert await count(database_url, Resident) == 0


async def test_expired_nonces_are_pruned(database_url):
    db = Database(database_url)
    try:
        await upgrade(db)
        guard = DatabaseReplayGuard(db)
        now = int(time.time())
        assert await guard.first_use(Use(now, "1", "a" * 64, now + 300))
        assert await guard.first_use(Use(now, "2", "b" * 64, now + 10))
        assert not await guard.first_use(Use(now, "1", "c" * 64, now + 300))
        assert await guard.prune_now(now + 100) == 1
        assert await count(database_url, WeChatNonce) == 1
    finally:
        await db.dispose()


# --- 5. the dedup key is scoped to the sender -----------------------------------------------------


async def test_a_msgid_of_another_resident_gets_its_own_answer(service_factory, database_url):
    svc = await service_factory(database_url, app_kwargs={"routers": [echo_router()]})
    sender = svc.sender("safe")
    first = await sender.send(svc.http, sender.text("o_first_resident", "回声 甲的消息", msg_id=424242))
    second = await sender.send(svc.http, sender.text("o_second_resident", "回声 乙的消息", msg_id=424242))
    assert first.content == "收到：回声 甲的消息"
    assert second.content == "收到：回声 乙的消息"
    assert await count(database_url, InboundKey) == 2
    assert await count(database_url, Message, Message.direction == "in") == 2
    # Each one's retry still gets its own stored answer.
    again = await sender.send(svc.http, sender.text("o_second_resident", "回声 乙的消息", msg_id=424242))
    assert again.content == second.content
    assert await count(database_url, Message, Message.direction == "in") == 2


# --- 6. numbers that do not fit ------------------------------------------------------------------


async def test_numbers_that_do_not_fit_are_4xx_naming_the_field(service_factory, database_url):
    svc = await service_factory(database_url, BOT_WECHAT_AES_KEY="")
    huge = "9" * 400
    body = xml_of({"ToUserName": "gh_x", "FromUserName": "o_numbers", "CreateTime": int(time.time()),
                   "MsgType": "text", "Content": "你好", "MsgId": 1})
    async with svc.http.post(svc.wechat_url, params=signed(huge), data=body.encode()) as resp:
        assert resp.status == 400 and "timestamp" in await resp.text()
    async with svc.http.get(svc.wechat_url, params={**signed(huge), "echostr": "x"}) as resp:
        assert resp.status == 400 and "timestamp" in await resp.text()
    async with svc.http.post(svc.wechat_url, params=signed(nonce="n" * 100), data=body.encode()) as resp:
        assert resp.status == 400 and "nonce" in await resp.text()
    cases = {
        "CreateTime": {"CreateTime": huge},
        "MsgId": {"MsgId": huge},
        "MsgType": {"MsgType": "t" * 100},
    }
    for i, (field, change) in enumerate(cases.items()):
        fields = {"ToUserName": "gh_x", "FromUserName": "o_numbers", "CreateTime": int(time.time()),
                  "MsgType": "text", "Content": "你好", "MsgId": 1, **change}
        async with svc.http.post(svc.wechat_url, params=signed(nonce=f"9{i}"), data=xml_of(fields).encode()) as resp:
            assert resp.status == 400, field
            assert field in await resp.text()
    assert await count(database_url, InboundKey) == 0


# --- 8. floods of elements -----------------------------------------------------------------------


async def test_a_flood_of_elements_is_refused(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url, BOT_WECHAT_AES_KEY="")
    flood = ("<xml><ToUserName>gh_x</ToUserName>" + "<a/>" * 16_000 + "</xml>").encode()
    assert len(flood) > 64_000
    async with svc.http.post(svc.wechat_url, params=signed(), data=flood) as resp:
        assert resp.status == 400 and "too many XML elements" in await resp.text()


async def test_a_flood_inside_an_encrypted_body_is_refused(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url, BOT_MAX_BODY_BYTES=200_000)
    sender = svc.sender("safe")
    flood = "<xml><ToUserName>gh_x</ToUserName>" + "<a/>" * 16_000 + "</xml>"
    reply = await sender.send(svc.http, flood)
    assert reply.status == 400 and "too many XML elements" in reply.body


def mass_send_report(openid: str) -> dict[str, Any]:
    """MASSSENDJOBFINISH for 8 articles, with the copyright check and article URLs (115 elements:
    WeChat's largest message)."""
    items = "".join(
        f"<item><ArticleIdx>{i}</ArticleIdx><UserDeclareState>0</UserDeclareState><AuditState>2</AuditState>"
        f"<OriginalArticleUrl><![CDATA[Url_{i}]]></OriginalArticleUrl><OriginalArticleType>1</OriginalArticleType>"
        f"<CanReprint>1</CanReprint><NeedReplaceContent>1</NeedReplaceContent>"
        f"<NeedShowReprintSource>1</NeedShowReprintSource></item>"
        for i in range(1, 9)
    )
    urls = "".join(
        f"<item><ArticleIdx>{i}</ArticleIdx><ArticleUrl><![CDATA[https://mp.weixin.qq.com/s/{i}]]></ArticleUrl></item>"
        for i in range(1, 9)
    )
    return {
        "ToUserName": "gh_community0001", "FromUserName": openid, "CreateTime": int(time.time()),
        "MsgType": "event", "Event": "MASSSENDJOBFINISH", "MsgID": 1000001625, "Status": "err(30003)",
        "TotalCount": 0, "FilterCount": 0, "SentCount": 0, "ErrorCount": 0,
        "CopyrightCheckResult": f"<Count>8</Count><ResultList>{items}</ResultList><CheckState>2</CheckState>",
        "ArticleUrlResult": f"<Count>8</Count><ResultList>{urls}</ResultList>",
    }


def with_raw(fields: dict[str, Any], raw_names: tuple[str, ...]) -> str:
    """XML whose ``raw_names`` fields are nested XML, not text."""
    xml = xml_of({k: v for k, v in fields.items() if k not in raw_names})
    nested = "".join(f"<{k}>{fields[k]}</{k}>" for k in raw_names)
    return xml[: -len("</xml>")] + nested + "</xml>"


async def test_wechats_largest_real_messages_still_pass(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    s = svc.sender("safe")
    oid = "o_big_messages"  # each message from its own resident below: no conversation carries over
    pics = "".join(f"<item><PicMd5Sum><![CDATA[{i:032x}]]></PicMd5Sum></item>" for i in range(9))
    messages: list[tuple[str, str | None]] = [
        (with_raw(mass_send_report(oid), ("CopyrightCheckResult", "ArticleUrlResult")), None),
        (with_raw({**s.event(oid, "pic_weixin", "PHOTO"), "SendPicsInfo": f"<Count>9</Count><PicList>{pics}</PicList>"},
                  ("SendPicsInfo",)), "success-or-reply"),
        (xml_of(s.location(oid, 40.0768, 113.3001, "平城区新建南路")), "平城区新建南路"),
        (xml_of(s.link(oid, "通知", "https://example.org/a", "社区通知的描述")), "链接"),
        (xml_of(s.video(oid, "vid-1")), "视频"),
        (xml_of(s.video(oid, "vid-2", short=True)), "视频"),
        (xml_of({**s.event(oid, "LOCATION"), "Latitude": "40.1", "Longitude": "113.3", "Precision": "30.0"}), None),
        (xml_of({**s.event(oid, "TEMPLATESENDJOBFINISH"), "MsgID": 200163836, "Status": "success"}), None),
    ]
    for i, (xml, expected) in enumerate(messages):
        xml = xml.replace(f"<![CDATA[{oid}]]>", f"<![CDATA[{oid}_{i}]]>")
        reply = await s.send(svc.http, xml)
        assert reply.status == 200, (xml[:200], reply.body)
        if expected is None:
            assert reply.body == "success"
        elif expected != "success-or-reply":
            assert reply.content and expected in reply.content, reply.content
