"""Safe parsing of WeChat's XML into :class:`Inbound`.

The XML is read by expat with the guards defusedxml puts on it: a DTD, an entity declaration or
an external reference stops the parse with defusedxml's own exceptions (no billion laughs, no
XXE). The handlers build the flat dict directly, without an element tree (a message is parsed
once; a safe-mode envelope of WeChat's own shape is only matched for its ciphertext,
``encrypted_field``). What WeChat actually sends, a flat document of CDATA and plain fields, is read with regular expressions to the
same dict, a few times quicker (``_flat``). wechatpy's parser (xmltodict on expat) has no such
guards and gives every event id 0, so it is not used here.
"""

from __future__ import annotations

import re
from typing import Any
from xml.parsers import expat

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from bot.messages import Inbound

MAX_DEPTH = 8  # WeChat nests five deep at most: <xml><SendPicsInfo><PicList><item><PicMd5Sum>
# WeChat's largest message is the mass-send report (MASSSENDJOBFINISH) of 8 articles: 115 elements
# with its copyright-check and article-URL lists; a text message has 7. Beyond the cap the parse
# stops at once, so a body of thousands of tiny elements costs what 128 do (about 0.2 ms).
MAX_ELEMENTS = 128
MAX_NUMBER_DIGITS = 20  # CreateTime, MsgId: 64-bit numbers at most
_USER_NAME = re.compile(r"[^\s:]+")  # openids and original ids: letters, digits, _ and -


class BadMessage(ValueError):
    """The body is not a WeChat message we can read; the text says why (no secrets)."""


def parse_xml(body: bytes | str) -> dict[str, Any]:
    """Parse a flat WeChat XML document into a dict; nested elements become dicts, repeated ones
    lists; a leaf's text is trimmed unless it is only whitespace."""
    if not body or not body.strip():
        raise BadMessage("empty body")
    flat = _flat(body)
    if flat is not None:
        return flat
    return _parsed(body)


# What WeChat sends, envelope and message alike: ``<xml>``, then fields, each one CDATA section or
# plain text without markup, references or ``]``, then ``</xml>``. Such a document is read with a
# few regular expressions (expat and its Python handlers cost several times more, per
# message); it has nothing the guards look for (no DTD, no entity, no reference), and nothing
# whose reading expat would change (line ends, characters XML does not allow). Anything else —
# attributes, nesting, empty-element tags, other names, a declaration, text around the fields —
# goes to expat, which gives the same dict or the refusal (tests/mutation_guard/test_parsing.py
# compares the two on many documents).
_FIELD = (  # a CDATA section runs to its first ]]> (written out: a lazy .*? is slow in re)
    r"<([A-Za-z_][A-Za-z0-9_]*)>(?:<!\[CDATA\[([^\]]*(?:\](?!\]>)[^\]]*)*)\]\]>|([^<&\]]*))</\1>"
)
_FLAT = re.compile(rf"<xml>(?:[ \t\n]*{_FIELD})+[ \t\n]*</xml>[ \t\n]*")
_FIELDS = re.compile(_FIELD)
# Characters XML does not allow, or whose reading expat changes (\r): none may occur. In UTF-8
# these bytes stand only for themselves; deleting them is quicker than a search in ``re``.
_CONTROL = bytes(range(0x20)).translate(None, b"\t\n")


# The safe-mode envelope exactly as WeChat sends it: the account's original id, then the ciphertext
# (base64), nothing else. Such a body is ASCII without control characters, of the flat shape above,
# so ``parse_xml`` would give ``{"ToUserName": …, "Encrypt": <the group>}``; it is read with one
# match on the bytes instead (no decoding, no dict). Any other envelope goes through ``parse_xml``.
_ENVELOPE = re.compile(
    rb"<xml>[ \t\n]*<ToUserName>(?:<!\[CDATA\[[A-Za-z0-9_-]{1,64}\]\]>|[A-Za-z0-9_-]{1,64})</ToUserName>"
    rb"[ \t\n]*<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]+)\]\]></Encrypt>[ \t\n]*</xml>[ \t\n]*"
)


def encrypted_field(body: bytes) -> str:
    """The ``Encrypt`` field of a safe/compatible-mode envelope (refused as ``parse_xml`` would
    refuse the body, or for a missing field)."""
    envelope = _ENVELOPE.fullmatch(body)
    if envelope is not None:
        return envelope.group(1).decode("ascii")
    encrypt = parse_xml(body).get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise BadMessage("missing field Encrypt")
    return encrypt


def _flat(body: bytes | str) -> dict[str, Any] | None:
    """The fields of a document of WeChat's flat shape, or None for any other (expat reads it).
    The whole document is matched first; then the fields, found one after another from its start,
    are exactly those it is made of (a field's match where it starts is the only one)."""
    try:
        if isinstance(body, bytes):
            raw, text = body, body.decode("utf-8")
        else:
            raw, text = body.encode("utf-8"), body
    except UnicodeError:  # not UTF-8, or a lone surrogate
        return None
    if (
        len(raw.translate(None, _CONTROL)) != len(raw)
        or "\ufffe" in text
        or "\uffff" in text
        or _FLAT.fullmatch(text) is None
    ):
        return None
    fields = _FIELDS.findall(text)
    if len(fields) >= MAX_ELEMENTS:  # with <xml>, over the cap: expat refuses it
        return None
    data: dict[str, Any] = {}
    for tag, cdata, plain in fields:
        value = cdata or plain  # the one that matched (findall gives "" for the other)
        value = value.strip() or value
        if tag in data:
            existing = data[tag]
            data[tag] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            data[tag] = value
    return data


def _parsed(body: bytes | str) -> dict[str, Any]:
    """Any document, through expat with defusedxml's guards."""
    reader = _Reader()
    try:
        reader.parser().Parse(body, True)
    except BadMessage:
        raise
    except DefusedXmlException as exc:
        raise BadMessage(f"forbidden XML construct ({type(exc).__name__})") from None
    except (expat.ExpatError, ValueError, UnicodeError) as exc:
        raise BadMessage(f"malformed XML: {exc}") from None
    if reader.root != "xml":
        raise BadMessage("root element is not <xml>")
    data = reader.result
    if not isinstance(data, dict):
        raise BadMessage("<xml> has no fields")
    return data


class _Reader:
    """Expat handlers that build the dict; the stack holds (tag, fields or None, text pieces)."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.result: dict[str, Any] | str | None = None
        self._stack: list[tuple[str, dict[str, Any] | None, list[str]]] = []
        self._elements = 0

    def parser(self) -> Any:
        """A parser calling these handlers (which do not refer back to it: no reference cycle
        for the garbage collector to find, per message)."""
        parser = expat.ParserCreate()
        parser.buffer_text = True
        parser.StartDoctypeDeclHandler = self._doctype
        parser.EntityDeclHandler = self._entity
        parser.UnparsedEntityDeclHandler = self._unparsed_entity
        parser.ExternalEntityRefHandler = self._external
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        return parser

    def _start(self, tag: str, _attributes: dict[str, str]) -> None:
        self._elements += 1
        if self._elements > MAX_ELEMENTS:
            raise BadMessage(f"too many XML elements (more than {MAX_ELEMENTS})")
        stack = self._stack
        if stack:
            parent_tag, fields, pieces = stack[-1]
            if fields is None:  # the parent has children: its own text no longer counts
                stack[-1] = (parent_tag, {}, pieces)
        elif self.root is None:
            self.root = tag
        if len(stack) >= MAX_DEPTH:
            raise BadMessage("XML nested too deeply")
        stack.append((tag, None, []))

    def _text(self, data: str) -> None:
        stack = self._stack
        if stack and stack[-1][1] is None:
            stack[-1][2].append(data)

    def _end(self, tag: str) -> None:
        _, fields, pieces = self._stack.pop()
        value: dict[str, Any] | str
        if fields is not None:
            value = fields
        else:
            text = "".join(pieces)
            value = text.strip() or text
        if not self._stack:
            self.result = value
            return
        parent = self._stack[-1][1]
        assert parent is not None
        if tag in parent:
            existing = parent[tag]
            if isinstance(existing, list):  # a list made here for this repeated tag
                existing.append(value)
            else:
                parent[tag] = [existing, value]
        else:
            parent[tag] = value

    def _doctype(self, name: str, sysid: str | None, pubid: str | None, _subset: bool) -> None:
        raise DTDForbidden(name, sysid, pubid)

    def _entity(
        self,
        name: str,
        _param: bool,
        value: str | None,
        _base: str | None,
        sysid: str | None,
        pubid: str | None,
        _notation: str | None,
    ) -> None:
        raise EntitiesForbidden(name, value, _base, sysid, pubid, _notation)

    def _unparsed_entity(
        self, name: str, base: str | None, sysid: str | None, pubid: str | None, notation: str | None
    ) -> None:
        raise EntitiesForbidden(name, None, base, sysid, pubid, notation)

    def _external(self, context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
        raise ExternalReferenceForbidden(context, base, sysid, pubid)


def _field(data: dict[str, Any], name: str, required: bool = True) -> str:
    value = data.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if required:
        raise BadMessage(f"missing field {name}")
    return ""


def _number(name: str, raw: str) -> int:
    """A non-negative decimal number of at most 20 ASCII digits (``int`` alone takes ``-1``,
    ``1_0``, other scripts' digits and thousands of digits)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_NUMBER_DIGITS):
        raise BadMessage(f"{name} is not a number")
    return int(raw)


def to_inbound(data: dict[str, Any]) -> Inbound:
    """Normalise a parsed message. Voice uses ``Recognition`` as its text when present."""
    openid = _field(data, "FromUserName")
    account = _field(data, "ToUserName")
    msg_type = _field(data, "MsgType").lower()
    create_time = _number("CreateTime", _field(data, "CreateTime"))
    if create_time > 253402300799:  # 9999-12-31: later has no date
        raise BadMessage("CreateTime is out of range")
    if len(openid) > 64 or len(account) > 64:
        raise BadMessage("user name too long")
    if not (_USER_NAME.fullmatch(openid) and _USER_NAME.fullmatch(account)):
        raise BadMessage("user name has spaces or ':'")  # both go into the message's key
    if len(msg_type) > 32:
        raise BadMessage("MsgType too long")
    msg_id: int | None = None
    raw_id = _field(data, "MsgId", required=False) or _field(data, "MsgID", required=False)
    if raw_id:
        msg_id = _number("MsgId", raw_id)
    event = event_key = content = None
    if msg_type == "event":
        event = _field(data, "Event").lower()
        if len(event) > 64:
            raise BadMessage("Event too long")
        event_key = _field(data, "EventKey", required=False) or None
    elif msg_type == "text":
        content = data.get("Content") if isinstance(data.get("Content"), str) else None
        if content is None:
            raise BadMessage("missing field Content")
    elif msg_type == "voice":
        content = _field(data, "Recognition", required=False) or None
    return Inbound(
        openid=openid,
        account=account,
        msg_type=msg_type,
        create_time=create_time,
        msg_id=msg_id,
        event=event,
        event_key=event_key,
        content=content,
        raw={k: v for k, v in data.items() if k != "Encrypt"},
    )
