"""Entity extraction for the dialogue flows: addresses, phones, dates and times, lookups, ticket numbers.

Everything is rule-based (regular expressions) except the lookup lists (course, activity, merchant and
coupon names from the training data), which are matched exactly or fuzzily with rapidfuzz so that typos
(书发课 → 书法) still resolve.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from intents.tokens import normalize

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
_CN_UNITS = {"十": 10, "百": 100}
_NUM = r"(?:\d+|[零〇一二两三四五六七八九十百]+)"


def cn_to_int(text: str) -> int | None:
    """'12' → 12, '十二' → 12, '二十五' → 25, '三' → 3; None when not a number."""
    if text.isdigit():
        return int(text)
    total, current = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
        else:
            return None
    return total + current


# --------------------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class Address:
    text: str
    building: str | None = None
    unit: str | None = None
    room: str | None = None


@dataclass(frozen=True)
class DateTime:
    text: str
    date: dt.date | None = None
    time: dt.time | None = None
    part_of_day: str | None = None  # 上午 / 下午 / 晚上 …

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "date": self.date.isoformat() if self.date else None,
                "time": self.time.strftime("%H:%M") if self.time else None, "part_of_day": self.part_of_day}


@dataclass
class Entities:
    addresses: list[Address] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    datetimes: list[DateTime] = field(default_factory=list)
    courses: list[str] = field(default_factory=list)
    activities: list[str] = field(default_factory=list)
    merchants: list[str] = field(default_factory=list)
    coupons: list[str] = field(default_factory=list)
    tickets: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; only the kinds that were found."""
        out: dict[str, Any] = {}
        if self.addresses:
            out["addresses"] = [asdict(a) for a in self.addresses]
        if self.phones:
            out["phones"] = list(self.phones)
        if self.datetimes:
            out["datetimes"] = [d.to_dict() for d in self.datetimes]
        for name in ("courses", "activities", "merchants", "coupons", "tickets"):
            values = getattr(self, name)
            if values:
                out[name] = list(values)
        return out

    def __bool__(self) -> bool:
        return bool(self.to_dict())


# ---------------------------------------------------------------------------------------- addresses
_DASH_ADDR = re.compile(r"(?<![\d-])(\d{1,3})-(\d{1,2})-(\d{3,4})(?![\d-])")
_BUILDING = re.compile(rf"({_NUM})\s*(?:号楼|号楼栋|栋|幢|#楼|#|号院)")
_UNIT = re.compile(rf"({_NUM})\s*单元")
_ROOM = re.compile(r"(?:单元|栋|幢|楼|#)\s*(\d{3,4})\s*(?:室|号|房)?|(\d{3,4})\s*(?:室|房间)")


def extract_addresses(text: str) -> list[Address]:
    found: list[Address] = []
    for m in _DASH_ADDR.finditer(text):
        found.append(Address(m.group(0), m.group(1), m.group(2), m.group(3)))
    rest = _DASH_ADDR.sub(" ", text)
    for m in _BUILDING.finditer(rest):
        building = cn_to_int(m.group(1))
        if building is None:
            continue
        tail = rest[m.end() : m.end() + 16]
        unit_m = re.match(rf"\s*({_NUM})\s*单元", tail)
        unit = cn_to_int(unit_m.group(1)) if unit_m else None
        after = tail[unit_m.end() :] if unit_m else tail
        room_m = re.match(r"\s*(\d{3,4})\s*(?:室|号|房)?", after)
        room = room_m.group(1) if room_m else None
        end = m.end() + (unit_m.end() if unit_m else 0) + (room_m.end() if room_m else 0)
        found.append(Address(rest[m.start() : end].strip(), str(building), None if unit is None else str(unit), room))
    if not found:
        unit_m = _UNIT.search(rest)
        if unit_m and cn_to_int(unit_m.group(1)) is not None:
            after = rest[unit_m.end() : unit_m.end() + 8]
            room_m = re.match(r"\s*(\d{3,4})", after)
            found.append(Address(unit_m.group(0) + (room_m.group(0) if room_m else ""), None,
                                 str(cn_to_int(unit_m.group(1))), room_m.group(1) if room_m else None))
    return found


# ------------------------------------------------------------------------------------------- phones
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d[- ]?\d{4}[- ]?\d{4})(?!\d)"
                    r"|(?<![\d-])(0\d{2,3}-?\d{7,8})(?![\d-])")


def extract_phones(text: str) -> list[str]:
    out = []
    for m in _PHONE.finditer(text):
        number = m.group(1) or m.group(2)
        out.append(number.replace(" ", "") if m.group(1) else number)
    return [p.replace("-", "") if p.startswith("1") else p for p in out]


# ---------------------------------------------------------------------------------------- datetimes
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_RELATIVE_DAYS = {"今天": 0, "今日": 0, "今儿": 0, "明天": 1, "明日": 1, "明儿": 1, "后天": 2, "大后天": 3,
                  "昨天": -1, "前天": -2}
_PARTS = {"早上": 8, "早晨": 8, "上午": 9, "中午": 12, "下午": 14, "傍晚": 18, "晚上": 19, "今晚": 19,
          "夜里": 21, "凌晨": 2}
_DATE_RE = re.compile(
    r"(?P<rel>大后天|后天|明天|明日|明儿|今天|今日|今儿|昨天|前天)"
    r"|(?P<wk>(?:下下|下个?|这个?|本|上个?)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天末]))"
    r"|(?:(?P<mon>\d{1,2}|[一二三四五六七八九十]{1,3})月(?P<day>\d{1,2}|[一二三四五六七八九十]{1,3})[日号]?)"
    r"|(?<![\d月])(?P<dom>\d{1,2})[号日](?![楼单院])"
)
_TIME_RE = re.compile(
    r"(?P<part>早上|早晨|上午|中午|下午|傍晚|晚上|今晚|夜里|凌晨)?\s*"
    r"(?:(?P<h>\d{1,2}|[一二两三四五六七八九十]{1,3})(?:点|时|:|：)(?P<m>半|一刻|三刻|\d{1,2}分?|[一二三四五]十分?)?)"
)
_PART_ONLY_RE = re.compile(r"早上|早晨|上午|中午|下午|傍晚|晚上|今晚|夜里|凌晨")


def _resolve_date(m: re.Match[str], today: dt.date) -> dt.date | None:
    if m.group("rel"):
        return today + dt.timedelta(days=_RELATIVE_DAYS[m.group("rel")])
    if m.group("wk"):
        word = m.group("wk")
        target = _WEEKDAYS[m.group("wd")]
        monday = today - dt.timedelta(days=today.weekday())
        if word.startswith("下下"):
            monday += dt.timedelta(days=14)
        elif word.startswith("下"):
            monday += dt.timedelta(days=7)
        elif word.startswith("上"):
            monday -= dt.timedelta(days=7)
        day = monday + dt.timedelta(days=target)
        if word[0] not in "下这本上" and day < today:  # bare 周六 means the coming one
            day += dt.timedelta(days=7)
        return day
    if m.group("mon"):
        month, dom = cn_to_int(m.group("mon")), cn_to_int(m.group("day"))
        if month is None or dom is None:
            return None
        try:
            day = dt.date(today.year, month, dom)
        except ValueError:
            return None
        if day < today - dt.timedelta(days=180):  # "1月5日" said in December means next year
            day = day.replace(year=today.year + 1)
        return day
    if m.group("dom"):
        dom = int(m.group("dom"))
        try:
            day = today.replace(day=dom)
        except ValueError:
            return None
        if day < today:
            month = today.month % 12 + 1
            year = today.year + (1 if month == 1 else 0)
            try:
                day = dt.date(year, month, dom)
            except ValueError:
                return None
        return day
    return None


def _resolve_time(m: re.Match[str]) -> dt.time | None:
    hour = cn_to_int(m.group("h"))
    if hour is None or hour > 24:
        return None
    minute = 0
    mm = m.group("m")
    if mm:
        if mm == "半":
            minute = 30
        elif mm == "一刻":
            minute = 15
        elif mm == "三刻":
            minute = 45
        else:
            minute = cn_to_int(mm.rstrip("分")) or 0
    part = m.group("part")
    if part in ("下午", "傍晚", "晚上", "今晚") and hour < 12:
        hour += 12
    elif part == "中午" and hour < 6:
        hour += 12
    if hour == 24:
        hour = 0
    if minute > 59:
        return None
    return dt.time(hour, minute)


def extract_datetimes(text: str, now: dt.datetime | None = None) -> list[DateTime]:
    """Dates and times relative to ``now`` (default: the current local time)."""
    now = now or dt.datetime.now()
    today = now.date()
    out: list[DateTime] = []
    times = list(_TIME_RE.finditer(text))
    used_times: set[int] = set()
    for m in _DATE_RE.finditer(text):
        day = _resolve_date(m, today)
        if day is None:
            continue
        span_end = m.end()
        clock: dt.time | None = None
        part: str | None = None
        if m.group("rel") == "今晚":
            part = "晚上"
        for i, t in enumerate(times):
            if i not in used_times and 0 <= t.start() - m.end() <= 2:
                clock = _resolve_time(t)
                part = t.group("part")
                used_times.add(i)
                span_end = t.end()
                break
        else:
            pm = _PART_ONLY_RE.match(text, m.end())
            if pm:
                part = pm.group(0)
                span_end = pm.end()
        out.append(DateTime(text[m.start() : span_end], day, clock, part))
    for i, t in enumerate(times):
        if i in used_times:
            continue
        clock = _resolve_time(t)
        if clock is None:
            continue
        day = today if t.group("part") == "今晚" else None
        out.append(DateTime(t.group(0).strip(), day, clock, t.group("part")))
    if not out:
        pm = _PART_ONLY_RE.search(text)
        if pm and pm.group(0) == "今晚":
            out.append(DateTime("今晚", today, None, "晚上"))
    return out


# ------------------------------------------------------------------------------------------- tickets
_TICKET = re.compile(r"(?<![A-Za-z0-9])GD\s*-?\s*(\d{8})\s*-\s*(\d{4})(?!\d)", re.IGNORECASE)


def extract_tickets(text: str) -> list[str]:
    return [f"GD{m.group(1)}-{m.group(2)}" for m in _TICKET.finditer(text)]


# ------------------------------------------------------------------------------------------- lookups
_NON_CJK = re.compile(r"[^\u4e00-\u9fff]+")
_SUFFIXES = ("课程", "课", "班", "券", "店", "铺")


class LookupMatcher:
    """Exact then fuzzy (typo-tolerant) matching of a list of names inside a message.

    Fuzzy matching uses rapidfuzz ``partial_ratio`` (best-aligned substring), with the cutoff scaled to
    the name length so that one wrong character is tolerated: 3 characters → 66, 4+ → 75. Two-character
    names (花艺, 书法) are matched fuzzily through their suffixed forms (书法课, 书法班).

    ``aliases`` (variant → name, the data's ``synonyms``) are everyday words for a listed name
    (毛笔字 → 书法): matched exactly only, they find the name they stand for.
    """

    def __init__(self, names: Iterable[str], aliases: Mapping[str, str] | None = None) -> None:
        self.names = sorted({n for n in names if n}, key=len, reverse=True)
        self._norm = [(normalize(n), n) for n in self.names]
        fuzzy: dict[str, str] = {}
        for key, name in self._norm:
            forms = [key] if len(key) >= 3 else [key + s for s in ("课", "班")]
            for suffix in _SUFFIXES:  # 理发券 is also findable as 理发卷 / 理发
                if key.endswith(suffix) and len(key) - len(suffix) >= 2:
                    forms.append(key[: -len(suffix)])
            for form in forms:
                form = _NON_CJK.sub("", form)  # digits and latin letters make fuzzy scores meaningless
                if len(form) >= 2:
                    fuzzy.setdefault(form, name)
        listed = set(self.names)
        self._norm = sorted(
            self._norm + [(normalize(v), n) for v, n in (aliases or {}).items() if n in listed and len(v) >= 2],
            key=lambda kn: len(kn[0]), reverse=True,
        )
        self._exact_cores = [(f, n) for f, n in fuzzy.items() if len(f) == 2]
        self._short = [f for f in fuzzy if len(f) == 3]
        self._long = [f for f in fuzzy if len(f) > 3]
        self._fuzzy = fuzzy

    def find(self, text: str, fuzzy: bool = True) -> list[str]:
        text = normalize(text)
        found: list[str] = []
        covered = text
        for key, name in self._norm:
            if key in covered:
                if name not in found:
                    found.append(name)
                covered = covered.replace(key, "\0")
        if found or not fuzzy or len(text) < 2:
            return found
        text = _NON_CJK.sub("", text)
        for core, name in self._exact_cores:  # 理发 for 理发券: two characters must match exactly
            if core in text:
                return [name]
        best: tuple[float, str] | None = None
        for forms, cutoff in ((self._long, 75.0), (self._short, 66.0)):
            if not forms:
                continue
            hit = process.extractOne(text, forms, scorer=fuzz.partial_ratio, score_cutoff=cutoff)
            if hit is not None and (best is None or hit[1] > best[0]):
                best = (hit[1], self._fuzzy[hit[0]])
        return [best[1]] if best else []


class EntityExtractor:
    def __init__(
        self, lookups: Mapping[str, Iterable[str]] | None = None, aliases: Mapping[str, str] | None = None
    ) -> None:
        lookups = lookups or {}
        self.courses = LookupMatcher(lookups.get("courses", ()), aliases)
        self.activities = LookupMatcher(lookups.get("activities", ()), aliases)
        self.merchants = LookupMatcher(lookups.get("merchants", ()), aliases)
        self.coupons = LookupMatcher(lookups.get("coupons", ()), aliases)

    LOOKUP_KINDS = ("courses", "activities", "merchants", "coupons")

    def extract(self, text: str, now: dt.datetime | None = None, fuzzy: Collection[str] | None = None) -> Entities:
        """All entities of ``text``; dates relative to ``now``.

        ``fuzzy`` limits typo-tolerant lookup matching to these kinds (exact matches are always found);
        ``None`` means all kinds. The engine passes the kinds relevant to the predicted intent.
        """
        fuzzy = self.LOOKUP_KINDS if fuzzy is None else fuzzy
        raw = normalize(text)
        tickets = extract_tickets(raw)
        no_tickets = _TICKET.sub(" ", raw)
        return Entities(
            addresses=extract_addresses(no_tickets),
            phones=extract_phones(no_tickets),
            datetimes=extract_datetimes(no_tickets, now),
            courses=self.courses.find(no_tickets, "courses" in fuzzy),
            activities=self.activities.find(no_tickets, "activities" in fuzzy),
            merchants=self.merchants.find(no_tickets, "merchants" in fuzzy),
            coupons=self.coupons.find(no_tickets, "coupons" in fuzzy),
            tickets=tickets,
        )
