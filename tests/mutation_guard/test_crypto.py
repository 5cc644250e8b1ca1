"""bot/wechat/crypto.py: what a sender learns when an encrypted message is refused, the reply's
envelope, and the Codec's own guarantees (default key, the key a reply is encrypted with).

Written against the mutants that survived the endpoint tests (docs/testing.md)."""

from __future__ import annotations

import base64
import secrets
import time

import pytest

from bot.wechat.crypto import Codec, signature
from bot.wechat.parsing import parse_xml
from tests.conftest import AES_KEY, APPID, TOKEN

OTHER_KEY = base64.b64encode(bytes(range(32))).decode()[:43]
XML = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content><![CDATA[你好]]></Content></xml>"


def signed_query(encrypt: str, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**9))
    return {
        "signature": signature(TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": signature(TOKEN, timestamp, nonce, encrypt),
    }


async def post_encrypted(svc, encrypt: str, query: dict[str, str] | None = None) -> tuple[int, str]:
    body = f"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    async with svc.http.post(svc.wechat_url, params=query or signed_query(encrypt), data=body) as resp:
        return resp.status, await resp.text()


def text_message(openid: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[你好]]></Content><MsgId>{secrets.randbelow(10**15)}</MsgId></xml>"
    )


async def test_payload_for_another_appid_is_named(service_factory, sqlite_url):
    """Both keys are tried; a payload that decrypts but names another AppID says so."""
    svc = await service_factory(sqlite_url, BOT_WECHAT_AES_KEY_PREVIOUS=OTHER_KEY)
    foreign = parse_xml(Codec(TOKEN, "wxsomeoneelse000", AES_KEY).encrypt(text_message("o_foreign")))
    status, text = await post_encrypted(svc, str(foreign["Encrypt"]))
    assert (status, text) == (400, "payload for another appid")


async def test_payload_that_does_not_decrypt_is_named(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url, BOT_WECHAT_AES_KEY_PREVIOUS=OTHER_KEY)
    # Not a whole number of AES blocks, so it never decrypts. (64 random bytes decrypted, about
    # once in a hundred runs, to an envelope naming an empty AppID: "another appid", as wechatpy.)
    garbage = base64.b64encode(secrets.token_bytes(63)).decode()
    status, text = await post_encrypted(svc, garbage)
    assert (status, text) == (400, "payload does not decrypt")


async def test_wrong_msg_signature_is_403_named(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url)
    envelope = parse_xml(Codec(TOKEN, APPID, AES_KEY).encrypt(text_message("o_badsig")))
    encrypt = str(envelope["Encrypt"])
    query = signed_query(encrypt)
    query["msg_signature"] = "0" * 40
    status, text = await post_encrypted(svc, encrypt, query)
    assert (status, text) == (403, "bad msg_signature")


async def test_encrypted_message_without_a_configured_key_is_named(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url, BOT_WECHAT_AES_KEY="")
    envelope = parse_xml(Codec(TOKEN, APPID, AES_KEY).encrypt(text_message("o_nokey")))
    status, text = await post_encrypted(svc, str(envelope["Encrypt"]))
    assert (status, text) == (400, "encrypted message but no EncodingAESKey configured")


async def test_encrypted_reply_envelope_is_timestamped_now_and_signed(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url)
    sender = svc.sender("safe")
    nonce = "24681357"
    query, body = sender.build(sender.text("o_envelope", "你好"), nonce=nonce)
    async with svc.http.post(svc.wechat_url, params=query, data=body.encode()) as resp:
        assert resp.status == 200
        raw = parse_xml(await resp.text())
    stamp = str(raw["TimeStamp"])
    assert stamp.isdigit() and abs(int(stamp) - time.time()) < 60
    assert raw["Nonce"] == nonce
    assert raw["MsgSignature"] == signature(TOKEN, stamp, nonce, str(raw["Encrypt"]))
    assert "社区服务小助手" in str(
        parse_xml(
            Codec(TOKEN, APPID, AES_KEY)
            .decrypt(str(raw["Encrypt"]), str(raw["MsgSignature"]), stamp, nonce)
            .xml
        )["Content"]
    )


# The Codec as a library: defaults that no request reaches (the endpoint always names them).


def test_codec_without_a_key_cannot_decrypt():
    assert Codec(TOKEN, APPID).can_decrypt is False
    assert Codec(TOKEN, APPID, AES_KEY).can_decrypt is True


@pytest.mark.parametrize("bad", ["abcd", "YWJj" * 10])
def test_a_key_of_the_wrong_length_is_refused_by_name(bad):
    with pytest.raises(ValueError) as exc:
        Codec(TOKEN, APPID, bad)
    assert str(exc.value) == "EncodingAESKey must decode to 32 bytes"


def test_encrypt_uses_the_current_key_by_default():
    rotated = Codec(TOKEN, APPID, AES_KEY, OTHER_KEY)
    envelope = parse_xml(rotated.encrypt(XML, timestamp="1700000000", nonce="n1"))
    only_current = Codec(TOKEN, APPID, AES_KEY)
    out = only_current.decrypt(str(envelope["Encrypt"]), str(envelope["MsgSignature"]), "1700000000", "n1")
    assert (out.xml, out.key_index) == (XML, 0)


def test_encrypt_with_the_previous_key_index_on_a_single_key_uses_that_key():
    single = Codec(TOKEN, APPID, AES_KEY)
    envelope = parse_xml(single.encrypt(XML, key_index=1, timestamp="1700000000", nonce="n2"))
    out = single.decrypt(str(envelope["Encrypt"]), str(envelope["MsgSignature"]), "1700000000", "n2")
    assert out.xml == XML


def test_previous_key_decrypts_with_index_one():
    rotated = Codec(TOKEN, APPID, AES_KEY, OTHER_KEY)
    envelope = parse_xml(Codec(TOKEN, APPID, OTHER_KEY).encrypt(XML, timestamp="1700000000", nonce="n3"))
    out = rotated.decrypt(str(envelope["Encrypt"]), str(envelope["MsgSignature"]), "1700000000", "n3")
    assert (out.xml, out.key_index) == (XML, 1)
