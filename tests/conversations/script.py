"""The conversation scripts (``tests/conversations/*.yml``): loading, checking and running them.

The format is documented in ``docs/conversations.md`` and in each file's header. A script error
(an unknown key, a wrong type) names the file, the conversation and the step.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
STYLES = ("plain", "colloquial", "dialect", "voice", "elderly", "typos", "terse", "rambling")
MESSAGE_STEPS = ("say", "voice", "image", "location", "click", "subscribe", "scan", "link")
OTHER_STEPS = ("wait", "staff", "check")
STEP_KEYS = frozenset({*MESSAGE_STEPS, *OTHER_STEPS, "who", "expect", "note"})
EXPECT_KEYS = frozenset({"contains", "not_contains", "any", "regex", "not_regex", "order", "empty",
                         "first_line", "max_lines", "lines_before"})
CHECK_KEYS = frozenset({"tickets", "points", "pushes", "handoff"})
CONVERSATION_KEYS = frozenset({"name", "style", "covers", "at", "steps", "note"})
DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")


class ScriptError(ValueError):
    pass


@dataclass
class Conversation:
    file: str
    index: int
    name: str
    style: str
    covers: list[str]
    at: str | None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.file}:{self.index:02d}"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _check_step(where: str, step: Any) -> dict[str, Any]:
    if not isinstance(step, dict):
        raise ScriptError(f"{where}: a step is a mapping, got {step!r}")
    unknown = set(step) - STEP_KEYS
    if unknown:
        raise ScriptError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(STEP_KEYS)}")
    kinds = [k for k in (*MESSAGE_STEPS, *OTHER_STEPS) if k in step]
    if len(kinds) != 1:
        raise ScriptError(f"{where}: a step has exactly one of {[*MESSAGE_STEPS, *OTHER_STEPS]}, got {kinds}")
    expect = step.get("expect")
    if expect is not None:
        if kinds[0] not in MESSAGE_STEPS:
            raise ScriptError(f"{where}: expect belongs to a message step")
        if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS:
            raise ScriptError(f"{where}: expect keys are {sorted(EXPECT_KEYS)}")
    if "check" in step and (not isinstance(step["check"], dict) or set(step["check"]) - CHECK_KEYS):
        raise ScriptError(f"{where}: check keys are {sorted(CHECK_KEYS)}")
    if "wait" in step and not DURATION.match(str(step["wait"])):
        raise ScriptError(f"{where}: wait is a duration like 30m, 3h or 2d")
    return step


def load(paths: Iterable[Path] | None = None) -> list[Conversation]:
    paths = sorted(paths) if paths is not None else sorted(p for p in HERE.glob("*.yml") if not p.name.startswith("_"))
    out: list[Conversation] = []
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ScriptError(f"{path.name}: invalid YAML: {exc}") from None
        items = doc.get("conversations") if isinstance(doc, dict) else None
        if not isinstance(items, list) or not items:
            raise ScriptError(f"{path.name}: expected 'conversations:' with a list")
        for i, conv in enumerate(items, 1):
            where = f"{path.name} conversation {i}"
            if not isinstance(conv, dict) or set(conv) - CONVERSATION_KEYS:
                raise ScriptError(f"{where}: keys are {sorted(CONVERSATION_KEYS)}")
            name = conv.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ScriptError(f"{where}: needs a name")
            style = conv.get("style", "plain")
            if style not in STYLES:
                raise ScriptError(f"{where} ({name}): style must be one of {STYLES}")
            steps = conv.get("steps")
            if not isinstance(steps, list) or not steps:
                raise ScriptError(f"{where} ({name}): needs steps")
            checked = [_check_step(f"{where} ({name}) step {j}", s) for j, s in enumerate(steps, 1)]
            out.append(Conversation(path.stem, i, name, style, [str(c) for c in _as_list(conv.get("covers"))],
                                    conv.get("at"), checked))
    return out


def duration(text: str) -> timedelta:
    m = DURATION.match(str(text))
    assert m is not None
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m[2]]
    return timedelta(**{unit: float(m[1])})


# ------------------------------------------------------------------------------------ replies
def check_reply(where: str, reply: str, expect: dict[str, Any]) -> None:
    """Facts of a reply, not its wording."""
    shown = reply.replace("\n", " | ")
    if expect.get("empty"):
        assert not reply, f"{where}: expected no reply, got {shown!r}"
        return
    assert reply, f"{where}: expected a reply, got none"
    for word in _as_list(expect.get("contains")):
        assert str(word) in reply, f"{where}: {word!r} not in reply {shown!r}"
    for word in _as_list(expect.get("not_contains")):
        assert str(word) not in reply, f"{where}: {word!r} should not be in reply {shown!r}"
    if "any" in expect:
        words = [str(w) for w in _as_list(expect["any"])]
        assert any(w in reply for w in words), f"{where}: none of {words} in reply {shown!r}"
    for pattern in _as_list(expect.get("regex")):
        assert re.search(str(pattern), reply), f"{where}: /{pattern}/ not found in reply {shown!r}"
    for pattern in _as_list(expect.get("not_regex")):
        assert not re.search(str(pattern), reply), f"{where}: /{pattern}/ should not match reply {shown!r}"
    if "order" in expect:
        position = -1
        for word in _as_list(expect["order"]):
            found = reply.find(str(word), position + 1) if not str(word).startswith("/") else _find_re(reply, word, position + 1)
            assert found > position, f"{where}: {word!r} not after the previous item in {shown!r}"
            position = found
    first = reply.split("\n", 1)[0]
    for word in _as_list(expect.get("first_line")):
        assert str(word) in first, f"{where}: {word!r} not in the first line {first!r}"
    if "max_lines" in expect:
        lines = [line for line in reply.split("\n") if line.strip()]
        assert len(lines) <= int(expect["max_lines"]), f"{where}: {len(lines)} lines > {expect['max_lines']}: {shown!r}"
    if "lines_before" in expect:  # {"pattern": GD, "max": 2}: at most max lines before the pattern's line
        spec = expect["lines_before"]
        lines = [line for line in reply.split("\n") if line.strip()]
        index = next((i for i, line in enumerate(lines) if re.search(str(spec["pattern"]), line)), None)
        assert index is not None, f"{where}: /{spec['pattern']}/ not in reply {shown!r}"
        assert index <= int(spec["max"]), f"{where}: {index} lines before /{spec['pattern']}/: {shown!r}"


def _find_re(text: str, pattern: Any, start: int) -> int:
    m = re.compile(str(pattern)[1:]).search(text, start)
    return m.start() if m else -1


def match_fields(where: str, data: dict[str, Any], expected: dict[str, Any]) -> None:
    """``field: value`` (equal), ``field_in: [...]``, ``field_not: value``, ``field_contains: text``,
    ``field_has: key`` (a mapping's key or a list's item); ``timeline_has`` and ``attachment_kinds``
    for tickets."""
    for key, want in expected.items():
        if key == "timeline_has":
            actions = [e.get("action") for e in data.get("timeline", [])]
            for action in _as_list(want):
                assert action in actions, f"{where}: timeline has no {action!r}: {actions}"
            continue
        if key == "timeline_lacks":
            actions = [e.get("action") for e in data.get("timeline", [])]
            for action in _as_list(want):
                assert action not in actions, f"{where}: timeline has {action!r}: {actions}"
            continue
        if key == "attachment_kinds":
            kinds = [a.get("kind") for a in data.get("attachments", [])]
            for kind in _as_list(want):
                assert kind in kinds, f"{where}: no {kind!r} attachment: {kinds}"
            continue
        for suffix, test in (
            ("_in", lambda v, w: v in w),
            ("_not", lambda v, w: v != w),
            ("_contains", lambda v, w: all(str(x) in str(v) for x in _as_list(w))),
            ("_has", lambda v, w: all(x in (v or {}) for x in _as_list(w))),
        ):
            if key.endswith(suffix) and key[: -len(suffix)] in data:
                name = key[: -len(suffix)]
                assert test(data[name], want), f"{where}: {name}={data[name]!r} fails {key}={want!r}"
                break
        else:
            assert key in data, f"{where}: no field {key!r} in {sorted(data)}"
            value = data[key]
            if isinstance(want, int | float) and not isinstance(want, bool) and isinstance(value, str):
                want = str(want)
            assert value == want, f"{where}: {key}={value!r}, expected {want!r}"


async def eventually(probe: Any, attempts: int = 60, pause: float = 0.05) -> Any:
    """Call ``probe()`` until it returns without an AssertionError (for pushes, sent asynchronously)."""
    last: AssertionError | None = None
    for _ in range(attempts):
        try:
            return await probe()
        except AssertionError as exc:
            last = exc
            await asyncio.sleep(pause)
    assert last is not None
    raise last


def local_time(text: str, default_day: datetime) -> datetime:
    """``HH:MM`` on the suite's day, or ``YYYY-MM-DD HH:MM`` (Beijing time)."""
    from bot.services.tickets import CHINA

    text = str(text).strip()
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})\s+(\d{1,2}):(\d{2})", text)
    if m:
        return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), tzinfo=CHINA)
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if m:
        day = default_day.astimezone(CHINA)
        return day.replace(hour=int(m[1]), minute=int(m[2]), second=0, microsecond=0)
    raise ScriptError(f"at: {text!r} is not HH:MM or YYYY-MM-DD HH:MM")
