"""Bad input at /wechat: each gets a clean 4xx (or ``success``), a log line without secrets, and
leaves no partial state."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import func, select

from bot.storage.db import Database
from bot.storage.models import InboundKey, Message, Resident
from bot.wechat.crypto import Codec, signature
from bot.wechat.simulate import WeChatSender, xml_of
from tests.conftest import AES_KEY, APPID, SECRET, TOKEN


async def rows(url: str) -> int:
    db = Database(url)
    try:
        async with db.session() as s:
            total = 0
            for model in (InboundKey, Message, Resident):
                total += int(await s.scalar(select(func.count()).select_from(model)) or 0)
            return total
    finally:
        await db.dispose()


def signed(token: str = TOKEN, ts: str | None = None) -> dict[str, str]:
    ts = ts or str(int(time.time()))
    return {"signature": signature(token, ts, "42"), "timestamp": ts, "nonce": "42"}


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""

XXE = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>"""

GOOD = {"ToUserName": "gh", "FromUserName": "o_bad", "CreateTime": 1, "MsgType": "text", "Content": "hi", "MsgId": 7}


def without(field: str) -> str:
    return xml_of({k: v for k, v in GOOD.items() if k != field})


PLAIN_CASES = [
    ("malformed", "<xml><ToUserName>gh</ToUserName><oops></xml>", 400),
    ("truncated", xml_of(GOOD)[:-20], 400),
    ("not xml", "hello there", 400),
    ("empty", "", 400),
    ("wrong root", "<message><MsgType>text</MsgType></message>", 400),
    ("billion laughs", BILLION_LAUGHS, 400),
    ("deeply nested", "<xml>" + "<a>" * 3000 + "</a>" * 3000 + "</xml>", 400),
    ("xxe", XXE, 400),
    ("no FromUserName", without("FromUserName"), 400),
    ("no MsgType", without("MsgType"), 400),
    ("no CreateTime", without("CreateTime"), 400),
    ("bad CreateTime", xml_of({**GOOD, "CreateTime": "yesterday"}), 400),
    ("text without Content", without("Content"), 400),
    ("event without Event", xml_of({**GOOD, "MsgType": "event"}).replace("<Content><![CDATA[hi]]></Content>", ""), 400),
]


@pytest.mark.parametrize(("name", "body", "status"), PLAIN_CASES, ids=[c[0] for c in PLAIN_CASES])
async def test_bad_plain_bodies(service_factory, sqlite_url, caplog, name, body, status):
    svc = await service_factory(sqlite_url, BOT_WECHAT_AES_KEY="")  # plaintext mode
    caplog.set_level(logging.INFO)
    async with svc.http.post(svc.wechat_url, params=signed(), data=body.encode()) as resp:
        assert resp.status == status, await resp.text()
        assert "Traceback" not in await resp.text()
    assert await rows(sqlite_url) == 0
    assert any("refused" in r.getMessage() for r in caplog.records)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in logged and AES_KEY not in logged and "/etc/passwd" not in logged


async def test_signatures_and_timestamps(service_factory, sqlite_url, caplog):
    svc = await service_factory(sqlite_url, BOT_TIMESTAMP_WINDOW=300, BOT_WECHAT_AES_KEY="")
    body = xml_of({**GOOD, "CreateTime": int(time.time())}).encode()
    cases = [
        ({}, 403),  # no signature at all
        ({**signed(), "signature": "f" * 40}, 403),  # forged
        (signed(token="other"), 403),  # signed with another token
        (signed(ts=str(int(time.time()) - 3600)), 403),  # stale
        (signed(ts=str(int(time.time()) + 3600)), 403),  # from the future
        ({**signed(ts="soon"), "signature": signature(TOKEN, "soon", "42")}, 400),
    ]
    for params, status in cases:
        async with svc.http.post(svc.wechat_url, params=params, data=body) as resp:
            assert resp.status == status, params
    assert await rows(sqlite_url) == 0
    async with svc.http.post(svc.wechat_url, params=signed(), data=body) as resp:
        assert resp.status == 200  # the same body, properly signed, is fine
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in logged and AES_KEY not in logged


async def test_body_over_limit(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url, BOT_MAX_BODY_BYTES=2048, BOT_WECHAT_AES_KEY="")
    big = xml_of({**GOOD, "Content": "长" * 5000}).encode()
    async with svc.http.post(svc.wechat_url, params=signed(), data=big) as resp:
        assert resp.status == 413
    # Chunked, without Content-Length: still cut off at the limit.
    async def chunks():
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    async with svc.http.post(svc.wechat_url, params=signed(), data=chunks()) as resp:
        assert resp.status == 413
    assert await rows(sqlite_url) == 0


async def test_encrypted_bad_payloads(service_factory, sqlite_url, caplog):
    svc = await service_factory(sqlite_url)
    ts, nonce = str(int(time.time())), "77"
    base = {"signature": signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "encrypt_type": "aes"}

    def envelope(encrypt: str) -> tuple[dict[str, str], str]:
        params = {**base, "msg_signature": signature(TOKEN, ts, nonce, encrypt)}
        return params, f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"

    other_app = Codec(TOKEN, "wxsomeoneelse00000", AES_KEY)
    other_key = Codec(TOKEN, APPID, "C" * 43)
    foreign = xml_of({**GOOD, "CreateTime": int(ts)})
    cases = {
        "garbage": (envelope("not-base64-at-all!!"), 400),
        "random bytes": (envelope("QUJDREVGR0hJSktMTU5PUA=="), 400),
        "other appid": (envelope(_encrypt(other_app, foreign)), 400),
        "other key": (envelope(_encrypt(other_key, foreign)), 400),
        "no Encrypt": ((base | {"msg_signature": "x"}, xml_of(GOOD)), 400),
        "bad msg_signature": (({**envelope(_encrypt(svc_codec(), foreign))[0], "msg_signature": "0" * 40},
                               envelope(_encrypt(svc_codec(), foreign))[1]), 403),
        "decrypts to junk": (envelope(_encrypt(svc_codec(), "<xml><a>")), 400),
        "decrypts to doctype": (envelope(_encrypt(svc_codec(), XXE)), 400),
    }
    for name, ((params, body), status) in cases.items():
        async with svc.http.post(svc.wechat_url, params=params, data=body.encode()) as resp:
            assert resp.status == status, name
    assert await rows(sqlite_url) == 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert AES_KEY not in logged and SECRET not in logged


def svc_codec() -> Codec:
    return Codec(TOKEN, APPID, AES_KEY)


def _encrypt(codec: Codec, xml: str) -> str:
    from bot.wechat.parsing import parse_xml

    return str(parse_xml(codec.encrypt(xml))["Encrypt"])


async def test_unknown_message_type_is_success(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url)
    sender = WeChatSender(svc.wechat_url, TOKEN, APPID, AES_KEY, mode="safe")
    fields = {**sender.base("o_unknown", "miniprogrampage"), "Title": "x", "MsgId": 99}
    reply = await sender.send(svc.http, fields)
    assert reply.status == 200 and reply.body == "success"


async def test_empty_text_gets_the_menu(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url)
    sender = svc.sender()
    reply = await sender.send(svc.http, sender.text("o_empty", ""))
    assert reply.status == 200 and "社区服务小助手" in (reply.content or "")
