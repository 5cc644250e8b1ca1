"""The edge's work per message: the safe-mode envelope is read by its shape, not parsed as a
document (only the decrypted message is), and reading it that way changes nothing it accepts or
refuses."""

from __future__ import annotations

import pytest

from bot.wechat import parsing
from bot.wechat.crypto import Codec
from bot.wechat.parsing import BadMessage, parse_xml
from tests.conftest import AES_KEY, APPID, TOKEN


def _ciphertext() -> str:
    sealed = Codec(TOKEN, APPID, AES_KEY).encrypt("<xml><Content><![CDATA[楼道灯不亮]]></Content></xml>")
    return str(parse_xml(sealed)["Encrypt"])


async def test_encrypted_message_parses_xml_once(service, monkeypatch):
    """Safe mode: one document parse per message (the decrypted message), where there were two."""
    sender = service.sender("safe")
    query, body = sender.build(sender.text("o_edge_once", "你好"))  # built before counting
    reads: list[int] = []
    flat = parsing._flat

    def counted(body: bytes | str) -> object:
        reads.append(1)
        return flat(body)

    monkeypatch.setattr(parsing, "_flat", counted)
    async with service.http.post(service.wechat_url, params=query, data=body.encode()) as resp:
        status, text = resp.status, await resp.text()
    monkeypatch.undo()
    assert status == 200 and sender.read_reply(status, text).content
    assert len(reads) == 1


ENVELOPES = [
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{e}]]></Encrypt></xml>",
    "<xml>\n  <ToUserName><![CDATA[gh_1]]></ToUserName>\n  <Encrypt><![CDATA[{e}]]></Encrypt>\n</xml>\n",
    "<xml><ToUserName>gh_plain</ToUserName><Encrypt><![CDATA[{e}]]></Encrypt></xml>",
    # Not WeChat's exact shape: read by the general parser, to the same field or the same refusal.
    "<xml><Encrypt><![CDATA[{e}]]></Encrypt><ToUserName><![CDATA[gh_1]]></ToUserName></xml>",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[ {e} ]]></Encrypt></xml>",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt>{e}</Encrypt><AgentID>1</AgentID></xml>",
    "<?xml version='1.0'?><xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{e}]]></Encrypt></xml>",
    "<xml><ToUserName><![CDATA[gh 1]]></ToUserName><Encrypt><![CDATA[{e}]]></Encrypt></xml>",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[]]></Encrypt></xml>",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName></xml>",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{e}]]></Encrypt></xml>trailing",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{e}]]></Encrypt>",
    "<!DOCTYPE xml [<!ENTITY e 'x'>]><xml><ToUserName>gh_1</ToUserName><Encrypt><![CDATA[{e}]]></Encrypt></xml>",
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{e}]]></Encrypt></xml>\r\n",
    "",
]


@pytest.mark.parametrize("template", ENVELOPES)
def test_envelope_read_as_the_parser_reads_it(template):
    from bot.wechat.parsing import encrypted_field

    body = template.replace("{e}", _ciphertext()).encode()
    try:
        data = parse_xml(body)
        field = data.get("Encrypt")
        expected: str | None = field if isinstance(field, str) and field else None
    except BadMessage:
        expected = None
    if expected is None:
        with pytest.raises(BadMessage):
            encrypted_field(body)
    else:
        assert encrypted_field(body) == expected
