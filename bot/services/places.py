"""Where a report is: from the text (楼/单元/室), a WeChat location, or the resident's bound building.

One place for this logic, used by every flow that collects a location. A place is a plain dict
(it lives in the conversation state, which is JSON): ``building``, ``unit``, ``room``, ``text``,
``label``, ``latitude``, ``longitude``, and ``bound`` when it is only the resident's own building.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.storage.models import Resident
from intents.entities import extract_addresses

Place = dict[str, Any]

# Words a place is described with when it has no building number: 门口, 东门, 车库, 楼道 …
PLACE_WORDS = re.compile(
    r"楼|栋|幢|单元|室|层|门口|门前|大门|[东西南北]门|侧门|后门|小区|院|路|街|巷|胡同|广场|公园|花园|"
    r"车库|车棚|停车|地下|楼下|楼上|楼道|楼梯|走廊|电梯|家|屋|厨房|卫生间|厕所|阳台|对面|旁边|附近|"
    r"超市|菜市场|市场|学校|幼儿园|医院|站|桥|河边|绿地|草坪|健身|垃圾站|垃圾桶|配电|水房|锅炉|物业|"
    r"居委会|社区|服务中心|活动中心|门卫|岗亭|便利店|底商|商铺|店|操场|球场|凉亭|花坛|围墙|天台|屋顶|"
    r"地库|入口|出口|路口|拐角|那边|这边|那里|这里|西边|东边|南边|北边|后面|前面|里面|[东西南北中]区|片区|园区"
)
# Not an answer about the place, though it mentions one: "在哪个楼我也说不清".
NOT_PLACE = re.compile(r"哪个|哪栋|哪一|说不清|不知道|不清楚|记不得|记不清|忘了")
QUESTION = re.compile(
    r"[?？]|吗|么$|呢$|怎么|什么|为什么|哪里|哪儿|几点|多少|是不是|能不能|可不可以|有没有|"
    r"为啥|咋|啥|怎样|如何|多久|几时|多会儿|行不行|中不中|好不好|能否|是否|请问"  # spoken and dialect
)
LOCATION_FIELDS = ("label", "latitude", "longitude", "text")


def from_text(text: str) -> Place | None:
    """The first address in the text (楼/栋/单元/室), or None."""
    addresses = extract_addresses(text or "")
    if not addresses:
        return None
    a = addresses[0]
    return {"building": a.building, "unit": a.unit, "room": a.room, "text": a.text}


def from_location(item: dict[str, Any]) -> Place:
    """A WeChat location message (as an attachment record): its label, coordinates and any address in the label."""
    label = str(item.get("label") or "")
    where = {"label": label, "latitude": item.get("latitude"), "longitude": item.get("longitude")}
    return {**(from_text(label) or {}), **where}


def from_attachments(items: Sequence[dict[str, Any]]) -> Place | None:
    """The newest location among the attachments."""
    for item in reversed(items):
        if item.get("kind") == "location":
            return from_location(item)
    return None


def of_resident(resident: Resident | None) -> Place | None:
    if resident is not None and resident.building:
        return {"building": resident.building, "bound": True}
    return None


# A shared place of the estate named in a report (小区东门的路灯不亮了, 地下车库漏水): where it is,
# without a building number. Only places everyone in the community knows; "门口" or "楼下" alone
# (whose door? which building?) is not one.
LANDMARK = re.compile(
    r"小区(?:里|里面|内)?(?:的)?(?:[东西南北]?(?:门口|大门)|[东西南北]门(?:口)?|侧门|后门|广场|花园|凉亭|车棚|停车场"
    r"|健身(?:区|器材|场|设施)|垃圾站|门卫(?:室)?|(?:儿童)?游乐(?:区|场|设施)|滑梯|篮球场|活动中心|绿化带|草坪|围墙|主干道|消防通道)"
    r"|(?<![\d号楼栋])[东西南北](?:大)?门(?:口)?|地下车库|地下停车场|(?:小区)?(?:自行车|电动车)棚"
)


def landmark(text: str) -> Place | None:
    """A shared place of the estate named in the text (小区东门, 地下车库), or None."""
    found = LANDMARK.search(text or "")
    return None if found is None else {"text": found.group(0), "label": found.group(0)}


def locate(text: str, attachments: Sequence[dict[str, Any]], resident: Resident | None) -> Place | None:
    """Where a report is: an address in the text, else a location sent with it, else a shared place
    of the estate it names, else the resident's building."""
    return from_text(text) or from_attachments(attachments) or landmark(text) or of_resident(resident)


def answer(text: str) -> Place | None:
    """The text as an answer to "where?": an address, or a description of a place (门口, 车库 …)
    that is not a question. None when it does not look like a place."""
    found = from_text(text)
    if found is not None:
        return found
    compact = re.sub(r"\s+", "", text or "")
    if (not compact or len(compact) > 60 or QUESTION.search(compact) or NOT_PLACE.search(compact)
            or not PLACE_WORDS.search(compact)):
        return None
    return {"text": compact[:200], "label": compact[:200]}


def meaningful(text: str) -> bool:
    """Whether the text says anything at all (not only punctuation, emoji or spaces)."""
    return bool(re.search(r"[\u4e00-\u9fffA-Za-z0-9]", text or ""))


def strip_address(text: str) -> str:
    """The text without its addresses (to see what else it says)."""
    rest = text or ""
    for a in extract_addresses(rest):
        rest = rest.replace(a.text, "")
    return rest


def beyond_place(text: str) -> str:
    """What the text says besides the place: addresses and place words removed, punctuation too."""
    return re.sub(r"\W+", "", PLACE_WORDS.sub("", strip_address(text)))


def location_of(place: Place | None) -> dict[str, Any] | None:
    """The ticket's ``location`` column for a place (label, coordinates, the text given)."""
    if not place:
        return None
    location = {k: v for k, v in place.items() if k in LOCATION_FIELDS and v not in (None, "")}
    return location or None


def refined(current: Place | None, told: Place) -> Place:
    """The place after the resident names part of it again: a new building replaces the place (a
    correction, "不对，是5号楼"); a unit or room without a building completes the building already
    known ("8号楼" then "3单元" is 8号楼3单元)."""
    if told.get("building") or not current or not current.get("building"):
        return told
    merged: Place = {"building": current["building"], "unit": told.get("unit") or current.get("unit"),
                     "room": told.get("room") or current.get("room")}
    return {**merged, "text": label_of(merged)}


def label_of(place: Place | None) -> str:
    """How to say the place back to the resident: "3号楼2单元", "小区东门" or ""."""
    if not place:
        return ""
    if place.get("text"):
        return str(place["text"])
    if place.get("label"):
        return str(place["label"])
    parts = []
    if place.get("building"):
        b = str(place["building"])
        parts.append(b if re.search(r"\D", b) else f"{b}号楼")
    if place.get("unit"):
        parts.append(f"{place['unit']}单元")
    if place.get("room"):
        parts.append(f"{place['room']}室")
    return "".join(parts)
