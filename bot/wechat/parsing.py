"""Safe parsing of WeChat's XML into :class:`Inbound`.

defusedxml refuses DTDs, entity declarations and external references (billion laughs, XXE);
wechatpy's own parser (xmltodict on expat) does not, and gives every event id 0, so the
envelope and the message are parsed here.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from bot.handler.types import Inbound


class BadMessage(ValueError):
    """The body is not a WeChat message we can read; the text says why (no secrets)."""


def parse_xml(body: bytes | str) -> dict[str, Any]:
    """Parse a flat WeChat XML document into a dict; nested elements become dicts or lists."""
    if not body or not body.strip():
        raise BadMessage("empty body")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadMessage(f"forbidden XML construct ({type(exc).__name__})") from None
    except (ParseError, ValueError, UnicodeError) as exc:
        raise BadMessage(f"malformed XML: {exc}") from None
    if root.tag != "xml":
        raise BadMessage("root element is not <xml>")
    data = _to_dict(root)
    if not isinstance(data, dict):
        raise BadMessage("<xml> has no fields")
    return data


def _to_dict(element: Element) -> dict[str, Any] | str:
    children = list(element)
    if not children:
        return (element.text or "").strip() if element.text and element.text.strip() else (element.text or "")
    out: dict[str, Any] = {}
    for child in children:
        value = _to_dict(child)
        if child.tag in out:
            existing = out[child.tag]
            out[child.tag] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[child.tag] = value
    return out


def _field(data: dict[str, Any], name: str, required: bool = True) -> str:
    value = data.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if required:
        raise BadMessage(f"missing field {name}")
    return ""


def to_inbound(data: dict[str, Any]) -> Inbound:
    """Normalise a parsed message. Voice uses ``Recognition`` as its text when present."""
    openid = _field(data, "FromUserName")
    account = _field(data, "ToUserName")
    msg_type = _field(data, "MsgType").lower()
    try:
        create_time = int(_field(data, "CreateTime"))
    except ValueError:
        raise BadMessage("CreateTime is not a number") from None
    if len(openid) > 64 or len(account) > 64:
        raise BadMessage("user name too long")
    msg_id: int | None = None
    raw_id = _field(data, "MsgId", required=False) or _field(data, "MsgID", required=False)
    if raw_id:
        try:
            msg_id = int(raw_id)
        except ValueError:
            raise BadMessage("MsgId is not a number") from None
    event = event_key = content = None
    if msg_type == "event":
        event = _field(data, "Event").lower()
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
