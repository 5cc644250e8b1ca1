"""The dispatch table: which department or grid worker handles a ticket, and by when.

The table is YAML (``bot/rules/dispatch.yml``, or ``<data_dir>/dispatch.yml`` when an operator
provides one). :func:`load_rules` checks it and raises :class:`RulesError` naming the file and
the problem; :meth:`Rules.decide` is pure (category, confidence, building, urgency → decision).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules" / "dispatch.yml"
URGENT = "urgent"


class RulesError(ValueError):
    """The dispatch table is unusable; the message names the file (and line when known)."""


@dataclass(frozen=True)
class CategoryRule:
    department: str | None
    deadline: str
    grid: bool = False
    visit: bool = False


@dataclass(frozen=True)
class Decision:
    """What the table says: ``department``/``assignee`` None with ``triage`` → staff decide."""

    category: str | None
    department: str | None
    assignee: str | None
    grid: str | None
    deadline_hours: float
    triage: bool

    def deadline(self, now: datetime) -> datetime:
        return now + timedelta(hours=self.deadline_hours)


@dataclass
class Rules:
    min_confidence: float
    deadlines: dict[str, float]
    categories: dict[str, CategoryRule]
    grids: dict[str, tuple[frozenset[str], str | None]]
    urgent_keywords: tuple[str, ...]
    remind_at_fraction: float = 0.75
    auto_close_hours: float = 72.0
    duplicate_similarity: float = 60.0
    duplicate_days: float = 3.0
    source: str = field(default="")

    def grid_of(self, building: str | None) -> tuple[str | None, str | None]:
        """(grid name, grid worker) for a building such as "3", "3号楼" or "3栋"."""
        number = building_number(building)
        if number is None:
            return None, None
        for name, (buildings, worker) in self.grids.items():
            if number in buildings:
                return name, worker
        return None, None

    def needs_visit(self, category: str | None) -> bool:
        rule = self.categories.get(category or "")
        return bool(rule and rule.visit)

    def is_urgent(self, text: str) -> bool:
        compact = re.sub(r"\s+", "", text)
        return any(word in compact for word in self.urgent_keywords)

    def decide(
        self, category: str | None, confidence: float | None, building: str | None, urgency: str = "normal"
    ) -> Decision:
        grid, worker = self.grid_of(building)
        rule = self.categories.get(category or "")
        confident = confidence is not None and confidence >= self.min_confidence
        deadline_class = URGENT if urgency == URGENT else (rule.deadline if rule else "general")
        hours = self.deadlines.get(deadline_class, self.deadlines.get("general", 168.0))
        if rule is None or not confident or rule.department is None:
            return Decision(category if rule else None, None, None, grid, hours, triage=True)
        assignee = worker if rule.grid and worker else None
        return Decision(category, rule.department, assignee, grid, hours, triage=False)


_BUILDING_NUMBER = re.compile(r"(\d{1,4})")


def building_number(building: str | None) -> str | None:
    if not building:
        return None
    m = _BUILDING_NUMBER.search(building)
    return str(int(m.group(1))) if m else None


def _fail(path: Path, message: str) -> RulesError:
    return RulesError(f"{path}: {message}")


def _number(path: Path, where: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise _fail(path, f"{where} must be a number between {lo} and {hi}, got {value!r}")
    return float(value)


def parse_rules(doc: Any, path: Path) -> Rules:
    if not isinstance(doc, dict):
        raise _fail(path, "expected a mapping at the top level")
    deadlines_raw = doc.get("deadlines")
    if not isinstance(deadlines_raw, dict) or not deadlines_raw:
        raise _fail(path, "'deadlines' must map a class name to hours")
    deadlines = {str(k): _number(path, f"deadlines.{k}", v, 0.01, 24 * 365) for k, v in deadlines_raw.items()}
    for needed in (URGENT, "general"):
        if needed not in deadlines:
            raise _fail(path, f"'deadlines' needs a {needed!r} class")
    cats_raw = doc.get("categories")
    if not isinstance(cats_raw, dict) or not cats_raw:
        raise _fail(path, "'categories' must map a category to {department, deadline}")
    categories: dict[str, CategoryRule] = {}
    for name, spec in cats_raw.items():
        if not isinstance(spec, dict):
            raise _fail(path, f"categories.{name} must be a mapping")
        dept = spec.get("department")
        if dept is not None and not isinstance(dept, str):
            raise _fail(path, f"categories.{name}.department must be text or null")
        klass = str(spec.get("deadline", "general"))
        if klass not in deadlines:
            raise _fail(path, f"categories.{name}.deadline {klass!r} is not one of {sorted(deadlines)}")
        categories[str(name)] = CategoryRule(dept, klass, bool(spec.get("grid", False)), bool(spec.get("visit", False)))
    grids: dict[str, tuple[frozenset[str], str | None]] = {}
    for name, spec in (doc.get("grids") or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("buildings"), list):
            raise _fail(path, f"grids.{name} needs a 'buildings' list")
        numbers = {building_number(str(b)) for b in spec["buildings"]}
        worker = spec.get("worker")
        grids[str(name)] = (frozenset(n for n in numbers if n), str(worker) if worker else None)
    keywords = doc.get("urgent_keywords") or []
    if not isinstance(keywords, list):
        raise _fail(path, "'urgent_keywords' must be a list")
    return Rules(
        min_confidence=_number(path, "min_confidence", doc.get("min_confidence", 0.3), 0.0, 1.0),
        deadlines=deadlines,
        categories=categories,
        grids=grids,
        urgent_keywords=tuple(str(k) for k in keywords if str(k).strip()),
        remind_at_fraction=_number(path, "remind_at_fraction", doc.get("remind_at_fraction", 0.75), 0.0, 1.0),
        auto_close_hours=_number(path, "auto_close_hours", doc.get("auto_close_hours", 72), 0.01, 24 * 365),
        duplicate_similarity=_number(path, "duplicate_similarity", doc.get("duplicate_similarity", 60), 0, 100),
        duplicate_days=_number(path, "duplicate_days", doc.get("duplicate_days", 3), 0, 365),
        source=str(path),
    )


def load_rules(path: Path | None = None) -> Rules:
    path = path or DEFAULT_RULES
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror})") from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise RulesError(f"{path}:{line}: invalid YAML ({exc.problem})") from None
    return parse_rules(doc, path)


_cache: dict[Path | None, tuple[float, float, Rules]] = {}  # data_dir → (checked at, file mtime, rules)
RECHECK_SECONDS = 1.0  # how often the files are looked at: an edit takes effect within this


def rules_for(data_dir: Path | None) -> Rules:
    """The operator's table under ``data_dir`` when present, else the packaged one (re-read on change)."""
    hit = _cache.get(data_dir)
    now = time.monotonic()
    if hit is not None and now - hit[0] < RECHECK_SECONDS:
        return hit[2]  # every message asks: look at the disk at most once a second
    path = data_dir / "dispatch.yml" if data_dir is not None and (data_dir / "dispatch.yml").is_file() else None
    path = path or DEFAULT_RULES
    mtime = path.stat().st_mtime
    if hit is None or hit[1] != mtime or hit[2].source != str(path):
        hit = (now, mtime, load_rules(path))
    _cache[data_dir] = (now, hit[1], hit[2])
    return hit[2]
