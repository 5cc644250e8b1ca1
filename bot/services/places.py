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
    r"地库|入口|出口|路口|拐角|那边|这边|那里|这里|西边|东边|南边|北边|后面|前面|里面|[东西南北中]区|片区|园区|"
    r"村|镇|乡|屯|寨|组"
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


# ------------------------------------------------------------------ places named in words
# A resident often names a place a grid worker can find without any building number: a road
# (迎春路, 建设北路12号, 东环大道), an estate (幸福小区, 金桂花园), a village (王家村, 石桥镇),
# a school, hospital, market, park or stop. The rules: a name of two or more characters (one, or
# none before 火车站, after a county or district) followed by one of the endings below; the
# character right before the ending must not make it an everyday word (马路, 农村, 上医院, 这个小区),
# and a kind of place (老旧小区, 民办学校) is no name. A county, district or city alone (B3区,
# 小店区) is too wide to go to. Written for this project, not taken from any list.
_NAME = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
# Characters that, right before an ending, make an everyday word, not a name: 马路, 农村, 全镇,
# 我们小区, 去医院, 这个学校, 村里路.
_NOT_NAME = set("的了是在和与及们这那该本我你他她全各每个些此其某一上下去到进出回来找从往离近过条家老新大小"
                "里边头面内外前后道公铁水网线思走门套电马政级绕村跑之修让带拦挡堵")
# Before 村/镇/乡 only: 农村, 城镇, 乡村, 渔村, 村村.
_NOT_VILLAGE = set("农城乡渔村镇")
# A family's village, the commonest village name: 王家村, 马家小村 (a name's character before 家;
# 我家村口, 回家村里, 大家, 老家, 农家, 娘家 are none).
_FAMILY_VILLAGE = re.compile(r"[\u4e00-\u9fff](?<![我你他她们咱俺自大老回在到住娘婆亲人农国商专作管店东卖买这那每各全一本的了是])家小?$")
# Where a name starts: after these a name cannot go on to the left (住在|幸福小区, E8县|石柱镇).
_NAME_START = set("的了是在与及到从往住位于对把被给向我你他她们说有个这那市区县省求让请跟由将为"
                  "因次着自找问想怎么须没所去逛近现定便转过以后最诉日得送嗯吗啊呀吧哦喂")
_ENDING = re.compile(
    r"(?P<estate>(?:小区|花园|花苑|家园|嘉园|新村|公寓|大厦|家属楼|家属区|家属院|宿舍楼|宿舍区|宿舍|大院|新城|苑|园|湾|府|郡"
    r"|城(?![镇乡区市管关南北东西中里外内郊墙]))(?![路街巷]|大道|大街))"
    r"|(?P<area>棚户区|安置区|片区|园区|工业区|景区|风景区|工地|养猪场|养殖场|农场|林场|河道|河|湖|水库)"
    r"|(?P<road>(?:公路|大道|大街|路(?![线费过子人况灯车面])|街|巷|胡同)(?:\d+号|[东西南北中]段|口)?)"
    r"|(?P<village>(?:村|镇|乡(?![镇村下亲里])|屯|寨)(?:[一二三四五六七八九十\d]{1,2}组)?)"
    r"|(?P<site>小学|中学|学校|大学|学院|幼儿园|职专|技校|医院|卫生院|保健院|诊所|公园|广场|农贸市场|菜市场|市场|商场|超市"
    r"|公交站|汽车站|火车站|高铁站|地铁站|车站|站台|[东西南北]站|机场|码头|大桥|桥|加油站|银行|大酒店|酒店|饭店|宾馆|工业园|开发区|厂|矿"
    r"|体育馆|图书馆|博物馆|电影院|居委会|村委会|派出所|养老院|敬老院)"
)
# Each ending starts with one of these characters: a lookahead on them lets the search skip the
# rest of the text quickly (a long letter is scanned in a fraction of the time).
_ENDING = re.compile(
    "(?=[" + "".join(sorted({w[0] for w in re.findall(r"[\u4e00-\u9fff]+", _ENDING.pattern)} | set("东西南北"))) + "])"
    + f"(?:{_ENDING.pattern})"
)
# Words a name does not start with: greetings and the verbs of a request (反映, 投诉, 请尽快, 盼望 …).
_LEAD = re.compile(
    r"你好|您好|同志|老师|小助手|在吗|那个|打扰一下|麻烦|请问|问下|咋回事啊|反映|投诉|举报|报修|建议|希望|要求|请求|恳请|呼吁"
    r"|盼望|盼|急盼|尽快|早日|解决|公开|公布|取消|变更|修复|修通|彻查|查一查|督促|关注|打通|治理|安排好?|纳入|伙同|接纳|冒用"
    r"|出台|完成|打造|影响|并且|管一管|招收|还配叫|居然|非要|不能读|严重|妥善|领导|部门|要|请|把|就"
)
# A kind of place, not a name of one: 老旧小区, 民办学校, 乡镇卫生院, 某砖厂, 一家印染厂.
_KIND_NOT_NAME = re.compile(r"^(?:老旧|民办|公办|公立|私立|私人|乡镇|基层|无证|职业|培训|大学|中学|小学|县属|镇级|积分|烂|"
                            r"一家|一所|一个|这所|这家|那家|这个|那个|该)|某")
# Schools by number: 十六中, 第三中学, 二小.
_NUMBERED_SCHOOL = re.compile(r"(?=[第一二三四五六七八九十\d])第?[一二三四五六七八九十\d]{1,3}(?:中学|小学|中|小)(?![心间央国午途旬时学标毒奖级等])")
# Roads by number (107国道, S308省道, G5高速) and road junctions (交叉口, 路口) are places too.
_NUMBERED_ROAD = re.compile(r"[GSX]?\d{2,4}(?:国道|省道|县道|高速)|[\u4e00-\u9fff]{2,6}(?:路|街)与[\u4e00-\u9fff]{2,6}(?:路|街)(?:交叉口|路口|交汇处)?")
_ROAD_HINT = re.compile(r"国道|省道|县道|高速|与")
# Words that end like a place and are none: 网站, 政府网站, 这条路, 思路, 出路 (caught by _NOT_NAME
# or here), and offices that say who, not where.
_NOT_PLACE_NAME = re.compile(r"网站|站长|\d路$|政府|服务中心|工厂$|^十字路|^隔壁|^知道|^[A-Z]?\d+(?:号|路)")
# A county, district or city: the anonymised letters (A市, B3区, E8县), Shanxi's cities and their
# districts, and any short name before 市/县 (区 ends 小区 and 社区 too). Too wide alone; kept in front of a place.
_SHANXI = ("太原|大同|阳泉|长治|晋城|朔州|晋中|运城|忻州|临汾|吕梁|小店|迎泽|杏花岭|尖草坪|万柏林|晋源|清徐|阳曲|娄烦|古交"
           "|平城|云冈|新荣|云州|潞州|上党|屯留|潞城|朔城|平鲁|榆次|太谷|盐湖|忻府|尧都|离石|孝义|汾阳|介休|侯马|霍州"
           "|永济|河津|原平|高平|怀仁")
_DISTRICT = re.compile(rf"(?:(?:[A-Z]\d{{0,2}}|{_SHANXI})(?:市|区|县)|[\u4e00-\u9fff]{{2,3}}(?:市|县))(?!长|委|政府|领导)")
_DISTRICT_AT_END = re.compile(rf"(?:{_DISTRICT.pattern})$")
# Inside a building: where a grid worker needs the building (and the unit), not only the estate.
INDOORS = re.compile(
    r"楼道|楼梯|电梯|单元门|单元|门禁|家里|我家|俺家|屋里|室内|楼上|楼下|楼顶|顶楼|天花板|墙|窗|邻居|对门|"
    r"暖气|水管|下水|渗水|漏水|水表|电表|燃气|煤气|管道|入户|防盗门|地下室|储藏室"
)


def _name_before(text: str, end: int) -> str:
    """The name in front of an ending at ``end``: name characters back to where a name starts, and
    after any greeting or verb of asking in them (反映红星村 is 红星村)."""
    start = end
    while start > 0 and end - start < 6 and _NAME.match(text[start - 1]) and (
            text[start - 1] not in _NAME_START or text[start - 1:start + 1] in ("市场", "区域")):
        start -= 1
    stem = text[start:end]
    cut = max((m.end() for m in _LEAD.finditer(stem)), default=0)
    return stem[cut:]


def named(text: str) -> Place | None:
    """A place named in words (a road, an estate, a village, a school, a market …), with the
    county or district said right before it, or None. ``kind``: estate, area, road, village or site."""
    text = text or ""
    found = (_NUMBERED_ROAD.search(text) if _ROAD_HINT.search(text) else None) or _NUMBERED_SCHOOL.search(text)
    if found is not None:
        return _with_district(text, found.start(), found.group(0), "road" if found.re is _NUMBERED_ROAD else "site")
    for m in _ENDING.finditer(text):
        kind = next(k for k in ("estate", "area", "road", "village", "site") if m.group(k))
        stem = _name_before(text, m.start())
        if stem and (stem[-1] in _NOT_NAME or (kind == "village" and stem[-1] in _NOT_VILLAGE)) and not (
                kind == "village" and m.group(0)[0] in "村屯寨" and _FAMILY_VILLAGE.search(stem)):
            continue
        # A county or district right in front lets a shorter name through: H3县火车站, J6县中医院.
        enough = 2 if _district_before(text, m.start() - len(stem)) is None else (0 if len(m.group(0)) >= 3 else 1)
        name = stem + m.group(0)
        if len(stem) < enough or _NOT_PLACE_NAME.search(name) or _KIND_NOT_NAME.search(name):
            continue
        return _with_district(text, m.start() - len(stem), name, kind)
    return None


def _district_before(text: str, start: int) -> str | None:
    found = _DISTRICT_AT_END.search(text[max(0, start - 8):start])
    return None if found is None else found.group(0)


def _with_district(text: str, start: int, name: str, kind: str) -> Place:
    """The place, with the county or district said right before it (E8县石柱镇, 小店区幸福小区)."""
    label = ((_district_before(text, start) or "") + name)[:60]
    return {"text": label, "label": label, "kind": kind}


def within(area: Place | None, place: Place) -> Place:
    """A building told with the estate it is in: its text says both (幸福小区3号楼2单元)."""
    if not area or area.get("kind") != "estate" or not place.get("building"):
        return place
    label = label_of(place)
    return {**place, "text": label if str(area["text"]) in label else f"{area['text']}{label}"}


def needs_building(place: Place | None, text: str) -> bool:
    """An estate named for something inside a building (幸福小区 楼道灯坏了): going there still
    needs the building. A road, a village or a school does not; nor a long letter about the estate
    as a whole."""
    if not place or place.get("kind") != "estate":
        return False
    return len(text or "") <= 80 and INDOORS.search(text or "") is not None


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
