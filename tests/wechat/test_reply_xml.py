"""Text replies are rendered and replies encrypted here, not by wechatpy: the same XML as wechatpy's
``TextReply``, and an envelope wechatpy (as WeChat) decrypts, with either key."""

from __future__ import annotations

import random

from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply

from bot.messages import Out
from bot.wechat.crypto import Codec
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
