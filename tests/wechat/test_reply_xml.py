"""Text replies are rendered and replies encrypted here, not by wechatpy: the same XML as wechatpy's
``TextReply``, and an envelope wechatpy (as WeChat) decrypts, with either key."""

from __future__ import annotations

import base64
import random

from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.replies import TextReply

from bot.messages import Out
from bot.wechat.crypto import Codec, CryptoError, signature
from bot.wechat.replies import cdata_safe, render

KEYS = ("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij0123456")
PIECES = ["你好", "a", "\n", "]]>", "&", "<", "\x01", "\U0001f600", " ", "。", "，"]


def texts(n: int = 300) -> list[str]:
    rng = random.Random(17)
    return ["", *("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 200))) for _ in range(n))]


def test_a_text_reply_is_the_xml_wechatpy_renders() -> None:
    for text in texts():
        expected = TextReply(target="o_to", source="gh_from", time=1_700_000_000, content=cdata_safe(text))
        assert render(Out.text(text), to_user="o_to", from_user="gh_from", create_time=1_700_000_000) == str(
            expected.render()
        )


def test_a_reply_decrypts_with_the_key_of_its_request() -> None:
    codec = Codec("token", "wx0000000000000001", *KEYS)
    for text in texts(60):
        xml = render(Out.text(text), to_user="o_to", from_user="gh_from")
        for index, key in enumerate(KEYS):
            envelope = codec.encrypt(xml, key_index=index, timestamp="1700000000", nonce="n1")
            signature = envelope.split("<MsgSignature><![CDATA[", 1)[1].split("]]>", 1)[0]
            wechat = WeChatCrypto("token", key, "wx0000000000000001")
            assert wechat.decrypt_message(envelope, signature, "1700000000", "n1") == xml


def test_a_request_decrypts_as_wechatpy_decrypts_it() -> None:
    """Envelopes wechatpy seals, and broken ones (another AppID, cut, flipped, not base64): the
    same text, or a failure where wechatpy fails, telling another AppID apart as it does."""
    rng = random.Random(23)
    appid = "wx0000000000000001"
    for key in KEYS:
        codec = Codec("token", appid, key)
        prp = PrpCrypto(base64.b64decode(key + "="))
        for text in texts(80):
            sealed = prp.encrypt(text, rng.choice([appid, appid, "wx0000000000000002", ""])).decode("ascii")
            raw = bytearray(base64.b64decode(sealed))
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            for encrypt in (
                sealed,
                base64.b64encode(bytes(raw)).decode("ascii"),
                sealed[: rng.randrange(len(sealed))],
                sealed[:-2] + "!!",
                base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.choice([0, 16, 32, 48])))).decode(),
            ):
                try:
                    expected: object = prp.decrypt(encrypt, appid)
                except InvalidAppIdException:
                    expected = "another appid"
                except Exception:
                    expected = "does not decrypt"
                sig = signature("token", "1700000000", "n1", encrypt)
                try:
                    got: object = codec.decrypt(encrypt, sig, "1700000000", "n1").xml
                except CryptoError as exc:
                    got = "another appid" if "another appid" in str(exc) else "does not decrypt"
                assert got == expected
