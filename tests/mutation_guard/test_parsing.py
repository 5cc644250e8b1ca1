"""bot/wechat/parsing.py: the parser of untrusted XML and the message fields, at their limits.

The parser is a pure function whose every refusal becomes the endpoint's 400 text unchanged
(``tests/wechat/test_bad_input.py`` shows that path over HTTP), so its answers are checked here
directly, exactly. Written against the mutants that survived the earlier tests (docs/testing.md)."""

from __future__ import annotations

import random

import pytest

from bot.wechat import parsing
from bot.wechat.parsing import MAX_DEPTH, MAX_ELEMENTS, BadMessage, parse_xml, to_inbound
from bot.wechat.simulate import WeChatSender, xml_of


def refused(body: bytes | str) -> str:
    with pytest.raises(BadMessage) as exc:
        parse_xml(body)
    return str(exc.value)


def test_empty_and_blank_bodies():
    assert refused(b"") == "empty body"
    assert refused("   \n") == "empty body"


def test_forbidden_malformed_and_foreign_documents():
    assert refused('<!DOCTYPE xml [<!ENTITY a "b">]><xml><A>&a;</A></xml>') == (
        "forbidden XML construct (DTDForbidden)"
    )
    assert refused("<xml><A>1</A>").startswith("malformed XML: ")
    assert refused(b"<xml><A>\xff</A></xml>").startswith("malformed XML: ")
    assert refused("<root><A>1</A></root>") == "root element is not <xml>"
    assert refused("<xml>just text</xml>") == "<xml> has no fields"


def test_shape_nested_repeated_and_text():
    data = parse_xml(
        "<xml><A> padded </A><B>   </B><C/><L>1</L><L>2</L><L>3</L>"
        "<N>ignored<D>x</D><D>y</D></N><P><Q>1</Q></P></xml>"
    )
    assert data == {
        "A": "padded",
        "B": "   ",  # only whitespace: kept as sent
        "C": "",
        "L": ["1", "2", "3"],
        "N": {"D": ["x", "y"]},  # a parent with children: its own text does not count
        "P": {"Q": "1"},
    }
    assert parse_xml("<xml><A>a<![CDATA[<b>]]>c</A></xml>") == {"A": "a<b>c"}


def test_element_and_depth_limits():
    at_cap = "<xml>" + "<a/>" * (MAX_ELEMENTS - 1) + "</xml>"
    assert parse_xml(at_cap) == {"a": [""] * (MAX_ELEMENTS - 1)}
    over = "<xml>" + "<a/>" * MAX_ELEMENTS + "</xml>"
    assert refused(over) == f"too many XML elements (more than {MAX_ELEMENTS})"
    deepest = "<xml>" + "<a>" * (MAX_DEPTH - 1) + "v" + "</a>" * (MAX_DEPTH - 1) + "</xml>"
    value = parse_xml(deepest)
    for _ in range(MAX_DEPTH - 2):
        value = value["a"]
    assert value == {"a": "v"}
    too_deep = "<xml>" + "<a>" * MAX_DEPTH + "v" + "</a>" * MAX_DEPTH + "</xml>"
    assert refused(too_deep) == "XML nested too deeply"


def message(**fields: str) -> dict[str, str]:
    base = {"ToUserName": "gh_acc", "FromUserName": "o_user-1", "CreateTime": "1700000000", "MsgType": "text"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def inbound_refused(data: dict) -> str:
    with pytest.raises(BadMessage) as exc:
        to_inbound(data)
    return str(exc.value)


def test_a_text_message_and_what_is_kept():
    got = to_inbound({**message(MsgType=" TEXT ", Content=" 你好 ", MsgId="42"), "Encrypt": "x"})
    assert (got.openid, got.account, got.msg_type, got.create_time) == (
        "o_user-1",
        "gh_acc",
        "text",
        1700000000,
    )
    assert (got.msg_id, got.content, got.event, got.event_key) == (42, " 你好 ", None, None)
    assert "Encrypt" not in got.raw and got.raw["MsgId"] == "42"
    assert to_inbound(message(MsgID="7", Content="x")).msg_id == 7
    assert to_inbound(message(Content="")).content == ""
    assert to_inbound(message(MsgType="image")).msg_id is None


@pytest.mark.parametrize("name", ["FromUserName", "ToUserName", "MsgType", "CreateTime"])
def test_required_fields_are_named(name: str):
    assert (
        inbound_refused({k: v for k, v in message(Content="x").items() if k != name})
        == f"missing field {name}"
    )
    assert inbound_refused({**message(Content="x"), name: "  "}) == f"missing field {name}"


@pytest.mark.parametrize("raw", ["-1", "1_0", "١٢٣", "12a", "1" * 21, " "])
def test_numbers_are_plain_ascii_digits(raw: str):
    expected = "missing field CreateTime" if not raw.strip() else "CreateTime is not a number"
    assert inbound_refused(message(CreateTime=raw, Content="x")) == expected
    if raw.strip():
        assert inbound_refused(message(MsgId=raw, Content="x")) == "MsgId is not a number"


def test_number_and_length_limits():
    assert to_inbound(message(CreateTime="253402300799", Content="x")).create_time == 253402300799
    assert inbound_refused(message(CreateTime="253402300800", Content="x")) == "CreateTime is out of range"
    assert to_inbound(message(CreateTime="0", MsgId="9" * 20, Content="x")).msg_id == int("9" * 20)
    for field in ("FromUserName", "ToUserName"):
        assert to_inbound(message(**{field: "u" * 64}, Content="x"))
        assert inbound_refused(message(**{field: "u" * 65}, Content="x")) == "user name too long"
        for bad in ("o user", "o:user"):
            assert inbound_refused(message(**{field: bad}, Content="x")) == "user name has spaces or ':'"
    assert to_inbound(message(MsgType="t" * 32)).msg_type == "t" * 32
    assert inbound_refused(message(MsgType="t" * 33)) == "MsgType too long"


def test_events_and_voice():
    event = to_inbound(message(MsgType="event", Event=" CLICK ", EventKey=" REPORT "))
    assert (event.event, event.event_key, event.content, event.msg_id) == ("click", "REPORT", None, None)
    assert to_inbound(message(MsgType="event", Event="subscribe", EventKey="")).event_key is None
    assert to_inbound(message(MsgType="event", Event="e" * 64)).event == "e" * 64
    assert inbound_refused(message(MsgType="event", Event="e" * 65)) == "Event too long"
    assert inbound_refused(message(MsgType="event")) == "missing field Event"
    assert inbound_refused(message()) == "missing field Content"
    assert to_inbound(message(MsgType="voice", Recognition=" 你好 ")).content == "你好"
    assert to_inbound(message(MsgType="voice", Recognition="")).content is None
    assert to_inbound(message(MsgType="voice")).content is None


def test_a_long_text_in_many_lines_is_kept_whole():
    # expat hands over long character data in several pieces (at line ends and entities, past its
    # 8 KB buffer): they are joined as they came.
    line = "第3行 &amp; <![CDATA[<b>]]>楼道灯坏了\n"
    body = "<xml><Content>" + line * 1000 + "</Content></xml>"
    assert parse_xml(body) == {"Content": ("第3行 & <b>楼道灯坏了\n" * 1000).strip()}


def test_a_text_message_whose_content_has_elements_is_refused():
    data = parse_xml(
        "<xml><ToUserName>gh_acc</ToUserName><FromUserName>o_user-1</FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content><a>1</a></Content></xml>"
    )
    assert data["Content"] == {"a": "1"}
    assert inbound_refused(data) == "missing field Content"


# WeChat's flat documents are read without expat (``_flat``); anything else goes to expat
# (``_parsed``). On every document both must agree: the same dict, or the same refusal. Documents
# are built of WeChat's pieces with, now and then, one that is not (``odd``).
PLAIN = ["a", "你好", " ", "  ", "\n", "\t", "\u3000", "1700000000", ">", "\x7f", "😀", "，"]
ODD = ["\r", "\r\n", "<", "&", "&amp;", "&#49;", "]", "]]", "]]>", "<![CDATA[", "\x01", "\ufffe", "<b>", "</A>"]


def _document(rng: random.Random) -> str:
    def odd() -> bool:
        return rng.random() < 0.04

    def value() -> str:
        return "".join(rng.choice(ODD if odd() else PLAIN) for _ in range(rng.randrange(0, 5)))

    def field() -> str:
        tag = rng.choice(["a-b", "名字", "xml", "A:b"] if odd() else ["ToUserName", "Content", "MsgId", "A", "_x"])
        if odd():
            return rng.choice([
                f"<{tag}/>",
                f"<{tag}>{value()}<![CDATA[{value()}]]></{tag}>",
                f"<{tag} a=\"1\">{value()}</{tag}>",
                f"<{tag}><B>{value()}</B></{tag}>",
                f"<{tag}>{value()}</{tag}x>",
            ])
        return f"<{tag}><![CDATA[{value()}]]></{tag}>" if rng.random() < 0.6 else f"<{tag}>{value()}</{tag}>"

    def gap() -> str:
        return rng.choice(["x", "\u3000", "\r\n", "<!-- -->"]) if odd() else rng.choice(["", "", "\n", " \t"])

    head = rng.choice(['<?xml version="1.0"?><xml>', " <xml>", '<xml a="1">', "\ufeff<xml>"]) if odd() else "<xml>"
    tail = rng.choice(["</xml>x", "", "</xml><xml></xml>", "</XML>"]) if odd() else rng.choice(["</xml>", "</xml>\n"])
    return head + "".join(gap() + field() for _ in range(rng.randrange(0, 8))) + gap() + tail


def _reading(read, body: bytes | str) -> object:
    try:
        return read(body)
    except BadMessage as exc:
        return ("refused", str(exc))


def test_flat_documents_read_as_expat_reads_them():
    rng = random.Random(17)
    flat = 0
    for _ in range(20_000):
        doc = _document(rng)
        for body in (doc, doc.encode("utf-8", "surrogatepass")):
            if not body.strip():
                continue
            expected = _reading(parsing._parsed, body)
            assert _reading(parse_xml, body) == expected, body
            flat += parsing._flat(body) is not None
    assert flat > 10_000  # the shape WeChat sends is read without expat


def test_the_element_cap_holds_for_flat_documents():
    at_cap = "<xml>" + "<a>1</a>" * (MAX_ELEMENTS - 1) + "</xml>"
    assert parsing._flat(at_cap) is not None
    assert parse_xml(at_cap) == {"a": ["1"] * (MAX_ELEMENTS - 1)}
    over = "<xml>" + "<a>1</a>" * MAX_ELEMENTS + "</xml>"
    assert refused(over) == f"too many XML elements (more than {MAX_ELEMENTS})"


def test_wechat_envelopes_and_messages_take_the_flat_reading():
    sender = WeChatSender("http://127.0.0.1/wechat", "token", "wx0000000000000001",
                          "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", mode="safe")
    fields = sender.text("o_user-1", " 你好，3号楼 ]] & <灯> ")
    _, envelope = sender.build(fields)
    for body in (envelope.encode(), xml_of(fields)):
        assert parsing._flat(body) is not None
        assert parse_xml(body) == parsing._parsed(body)
    assert parse_xml(xml_of(fields))["Content"] == "你好，3号楼 ]] & <灯>"
