"""Emergencies: recognise a hazard in a resident's message and say whom to call first.

The rules live in ``bot/rules/hazards.yml`` (or an operator's ``<data_dir>/hazards.yml``): phone
lines (119/110/120 and the community's own — gas company, elevator rescue, the property's duty
phone), words that make a message not a present emergency, and hazards in priority order, each
recognised by combinations of patterns (a gas word *and* a leak word, an elevator *and* someone
inside), not by one listed phrase. :meth:`HazardRules.recognise` is pure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.services import rulefiles
from bot.services.rulefiles import RuleFileError

FILE = "hazards.yml"
SEEN_TEXTS = 4096  # recognise()'s answers kept (then forgotten all at once)
SEEN_LONGEST = 200  # characters: longer texts are not kept
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Line:
    key: str
    name: str  # 燃气抢修电话
    number: str  # empty: not configured
    without: str  # how to name it without a number

    def spoken(self) -> str:
        return f"{self.name}{self.number}" if self.number else self.without or self.name


@dataclass(frozen=True)
class Alternative:
    all: tuple[re.Pattern[str], ...]
    unless: tuple[re.Pattern[str], ...] = ()

    def matches(self, text: str) -> bool:
        return all(p.search(text) for p in self.all) and not any(p.search(text) for p in self.unless)


@dataclass(frozen=True)
class Hazard:
    id: str
    label: str
    when: tuple[Alternative, ...]
    first: str  # with the lines filled in
    advice: str
    category: str | None


@dataclass(frozen=True)
class HazardRules:
    lines: dict[str, Line]
    hazards: tuple[Hazard, ...]
    not_now: tuple[re.Pattern[str], ...]
    source: str = ""
    # Every alternative's first pattern in one expression: a message none of them matches (nearly
    # every message) is no hazard, found in one search instead of one per pattern.
    _any_first: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    # What recognise() said of the texts seen lately. It is asked of every text message (the
    # emergency filter is the first one tried), residents send the same short texts again and
    # again (谢谢, 1, 确认, 查进度), and the answer depends only on the text and these rules (a
    # changed rule file is a new object).
    _seen: dict[str, Hazard | None] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        alternatives = [alt for hazard in self.hazards for alt in hazard.when]
        if alternatives and all(alt.all for alt in alternatives):
            object.__setattr__(self, "_any_first", _either(alt.all[0] for alt in alternatives))

    def recognise(self, text: str) -> Hazard | None:
        """The first hazard the message reports, or None (also for hypotheticals and past events)."""
        seen = self._seen
        try:
            return seen[text]
        except KeyError:
            pass
        found = self._recognise(text)
        if len(text) <= SEEN_LONGEST:
            if len(seen) >= SEEN_TEXTS:
                seen.clear()
            seen[text] = found
        return found

    def _recognise(self, text: str) -> Hazard | None:
        compact = normalise(text)
        if not compact or (self._any_first is not None and self._any_first.search(compact) is None):
            return None
        if any(p.search(compact) for p in self.not_now):
            return None
        for hazard in self.hazards:
            if any(alt.matches(compact) for alt in hazard.when):
                return hazard
        return None

    def line(self, key: str) -> Line | None:
        return self.lines.get(key)


_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")


def _either(patterns: Iterable[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One expression matching wherever one of ``patterns`` would (None if they cannot be joined:
    back-references or flags of their own)."""
    listed = list(patterns)
    if not listed or any(p.flags != listed[0].flags or _BACKREFERENCE.search(p.pattern) for p in listed):
        return None
    try:
        return re.compile("|".join(f"(?:{p.pattern})" for p in listed), listed[0].flags)
    except re.error:
        return None


def normalise(text: str) -> str:
    """Full-width to half-width, spaces removed: voice text and typed text compare alike."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text or ""))


def _patterns(path: Path, where: str, value: Any) -> tuple[re.Pattern[str], ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RuleFileError(f"{path}: {where} must be a list of regular expressions")
    out = []
    for i, pattern in enumerate(value):
        try:
            out.append(re.compile(normalise(pattern)))
        except re.error as exc:
            raise RuleFileError(f"{path}: {where}[{i}] is not a valid regular expression ({exc})") from None
    return tuple(out)


def _fill(path: Path, where: str, template: str, lines: dict[str, Line]) -> str:
    for key in _PLACEHOLDER.findall(template):
        if key not in lines:
            raise RuleFileError(f"{path}: {where} names an unknown line {{{key}}}; known: {', '.join(sorted(lines))}")
    try:
        return template.format(**{k: line.spoken() for k, line in lines.items()})
    except (IndexError, KeyError, ValueError) as exc:
        raise RuleFileError(f"{path}: {where} is not a valid text template ({exc})") from None


def parse(doc: Any, path: Path) -> HazardRules:
    if not isinstance(doc, dict):
        raise RuleFileError(f"{path}: expected a mapping at the top level")
    lines_raw = doc.get("lines")
    if not isinstance(lines_raw, dict) or not lines_raw:
        raise RuleFileError(f"{path}: 'lines' must map a key to {{name, number}}")
    lines: dict[str, Line] = {}
    for key, spec in lines_raw.items():
        where = f"lines.{key}"
        if not isinstance(spec, dict):
            raise RuleFileError(f"{path}: {where} must be a mapping with name and number")
        if not re.fullmatch(r"[a-z_]+", str(key)):
            raise RuleFileError(f"{path}: {where}: a line's key is lower-case letters and _")
        number = rulefiles.text(path, f"{where}.number", spec.get("number"), limit=32, required=False)
        if number and not re.fullmatch(r"[0-9][0-9 -]{1,30}", number):
            raise RuleFileError(f"{path}: {where}.number must be digits (and - or spaces), got {number!r}")
        lines[str(key)] = Line(
            key=str(key),
            name=rulefiles.text(path, f"{where}.name", spec.get("name"), limit=40),
            number=number,
            without=rulefiles.text(path, f"{where}.without", spec.get("without"), limit=40, required=False),
        )
    hazards_raw = doc.get("hazards")
    if not isinstance(hazards_raw, list) or not hazards_raw:
        raise RuleFileError(f"{path}: 'hazards' must be a list")
    hazards: list[Hazard] = []
    seen: set[str] = set()
    for i, spec in enumerate(hazards_raw):
        where = f"hazards[{i}]"
        if not isinstance(spec, dict):
            raise RuleFileError(f"{path}: {where} must be a mapping")
        hid = rulefiles.text(path, f"{where}.id", spec.get("id"), limit=32)
        if hid in seen:
            raise RuleFileError(f"{path}: {where}.id {hid!r} is used twice")
        seen.add(hid)
        when_raw = spec.get("when")
        if not isinstance(when_raw, list) or not when_raw:
            raise RuleFileError(f"{path}: {where}.when must be a list of alternatives")
        when: list[Alternative] = []
        for j, alt in enumerate(when_raw):
            alt_where = f"{where}.when[{j}]"
            if isinstance(alt, dict):
                unknown = set(alt) - {"all", "unless"}
                if unknown:
                    raise RuleFileError(f"{path}: {alt_where} has unknown keys {sorted(unknown)}")
                when.append(Alternative(_patterns(path, f"{alt_where}.all", alt.get("all")),
                                        _patterns(path, f"{alt_where}.unless", alt.get("unless") or [])
                                        if alt.get("unless") else ()))
            else:
                when.append(Alternative(_patterns(path, alt_where, alt)))
        category = rulefiles.text(path, f"{where}.category", spec.get("category"), limit=32, required=False)
        hazards.append(Hazard(
            id=hid,
            label=rulefiles.text(path, f"{where}.label", spec.get("label"), limit=40),
            when=tuple(when),
            first=_fill(path, f"{where}.first", rulefiles.text(path, f"{where}.first", spec.get("first"), limit=200),
                        lines),
            advice=_fill(path, f"{where}.advice",
                         rulefiles.text(path, f"{where}.advice", spec.get("advice"), limit=200), lines),
            category=category or None,
        ))
    not_now = _patterns(path, "not_now", doc.get("not_now") or []) if doc.get("not_now") else ()
    return HazardRules(lines=lines, hazards=tuple(hazards), not_now=not_now, source=str(path))


def load(path: Path | None = None) -> HazardRules:
    return rulefiles.load(path or rulefiles.PACKAGED / FILE, parse)


def rules_for(data_dir: Path | None) -> HazardRules:
    """The operator's hazards under ``data_dir`` when present, else the packaged ones."""
    return rulefiles.cached(FILE, data_dir, parse)


__all__ = ["FILE", "Hazard", "HazardRules", "Line", "RuleFileError", "load", "normalise", "parse", "rules_for"]
