"""Office hours of the community service centre: when a person can answer, and how to say so.

The hours live in ``bot/rules/office.yml`` (or an operator's ``<data_dir>/office.yml``): the staffed
weekdays, opening and closing time (Beijing time) and the centre's phone. Pure functions of ``now``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.services import rulefiles
from bot.services.rulefiles import RuleFileError

FILE = "office.yml"
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
WEEKDAYS = "一二三四五六日"
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class OfficeHours:
    days: frozenset[int]  # ISO weekdays
    opens: time
    closes: time
    phone: str
    source: str = ""

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(CHINA)
        return local.isoweekday() in self.days and self.opens <= local.time() < self.closes

    def next_open(self, now: datetime) -> datetime:
        """The next time the centre opens (``now`` itself when it is open)."""
        if self.is_open(now):
            return now
        local = now.astimezone(CHINA)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            start = datetime.combine(day, self.opens, CHINA)
            if day.isoweekday() in self.days and start > local:
                return start
        return local  # no staffed day configured: never

    def describe(self) -> str:
        """"周一至周五 8:30–17:30"."""
        return f"{describe_days(self.days)} {_clock(self.opens)}–{_clock(self.closes)}"

    def when_next(self, now: datetime) -> str:
        """"明天（周二）8:30" / "今天 13:30" / "周一 8:30"."""
        start = self.next_open(now).astimezone(CHINA)
        today = now.astimezone(CHINA).date()
        ahead = (start.date() - today).days
        day = {0: "今天", 1: f"明天（周{WEEKDAYS[start.weekday()]}）"}.get(ahead, f"周{WEEKDAYS[start.weekday()]}")
        return f"{day}{_clock(start.time())}"


def _clock(t: time) -> str:
    return f"{t.hour}:{t.minute:02d}"


def describe_days(days: frozenset[int]) -> str:
    ordered = sorted(days)
    if not ordered:
        return "暂无办公日"
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"周{WEEKDAYS[ordered[0] - 1]}至周{WEEKDAYS[ordered[-1] - 1]}"
    return "、".join(f"周{WEEKDAYS[d - 1]}" for d in ordered)


def _time(path: Path, name: str, value: Any) -> time:
    m = _HHMM.match(str(value or ""))
    if m is None:
        raise RuleFileError(f"{path}: {name} must be a time like \"08:30\", got {value!r}")
    return time(int(m[1]), int(m[2]))


def parse(doc: Any, path: Path) -> OfficeHours:
    if not isinstance(doc, dict):
        raise RuleFileError(f"{path}: expected a mapping at the top level")
    days = doc.get("days")
    if not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7
                                             for d in days):
        raise RuleFileError(f"{path}: days must be a list of weekdays 1 (Monday) to 7 (Sunday)")
    opens, closes = _time(path, "open", doc.get("open")), _time(path, "close", doc.get("close"))
    if closes <= opens:
        raise RuleFileError(f"{path}: close must be after open")
    phone = rulefiles.text(path, "phone", doc.get("phone"), limit=32, required=False)
    if phone and not re.fullmatch(r"[0-9][0-9 -]{1,30}", phone):
        raise RuleFileError(f"{path}: phone must be digits (and - or spaces), got {phone!r}")
    return OfficeHours(frozenset(days), opens, closes, phone, str(path))


def load(path: Path | None = None) -> OfficeHours:
    return rulefiles.load(path or rulefiles.PACKAGED / FILE, parse)


def hours_for(data_dir: Path | None) -> OfficeHours:
    return rulefiles.cached(FILE, data_dir, parse)
