"""Operator-editable YAML rule files: the packaged ``bot/rules/<name>`` or ``<data_dir>/<name>``.

:func:`load` reads and parses one file (a parse error names the file and line); :func:`cached`
keeps the parsed rules per data dir and re-reads the file when it changes (looked at once a second
at most), so an operator's edit takes effect without a restart. ``bot/services/dispatch.py`` does the
same for the dispatch table.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

log = logging.getLogger(__name__)

PACKAGED = Path(__file__).resolve().parent.parent / "rules"
RECHECK_SECONDS = 1.0

T = TypeVar("T")


class RuleFileError(ValueError):
    """A rule file is unusable; the message names the file (and line when known)."""


def load(path: Path, parse: Callable[[Any, Path], T]) -> T:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuleFileError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise RuleFileError(f"{path}: not UTF-8 text") from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise RuleFileError(f"{path}:{line}: invalid YAML ({exc.problem})") from None
    return parse(doc, path)


def path_for(name: str, data_dir: Path | None) -> Path:
    """The operator's file when present, else the packaged one."""
    if data_dir is not None and (data_dir / name).is_file():
        return data_dir / name
    return PACKAGED / name


_cache: dict[tuple[str, str], tuple[float, float, str, Any]] = {}  # → (checked, mtime, path, rules)
_lock = threading.Lock()


def cached(name: str, data_dir: Path | None, parse: Callable[[Any, Path], T]) -> T:
    """The parsed rules of ``name`` for ``data_dir``, re-read when the file changed.

    An operator's file that cannot be used is logged (file and line) and the rules in use stay:
    the last good version, or the packaged file when there was none. A resident is never answered
    with an error because of an edit in progress."""
    key = (name, str(data_dir or ""))
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < RECHECK_SECONDS:
        return hit[3]
    path = path_for(name, data_dir)
    try:
        mtime = path.stat().st_mtime
    except OSError:  # removed between the look and the read: the packaged file
        path, mtime = PACKAGED / name, (PACKAGED / name).stat().st_mtime
    with _lock:
        if hit is None or hit[1] != mtime or hit[2] != str(path):
            try:
                hit = (now, mtime, str(path), load(path, parse))
            except RuleFileError as exc:
                log.error("%s; keeping the rules in use", exc)
                if hit is None:
                    hit = (now, mtime, str(path), load(PACKAGED / name, parse))
                else:
                    hit = (now, mtime, str(path), hit[3])  # remember the broken version: no re-read until it changes
        _cache[key] = (now, hit[1], hit[2], hit[3])
    return hit[3]


def text(path: Path, where: str, value: Any, *, limit: int = 500, required: bool = True) -> str:
    """A string field (numbers are accepted as text: phone numbers are often written bare)."""
    if value is None or value == "":
        if required:
            raise RuleFileError(f"{path}: {where} is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RuleFileError(f"{path}: {where} must be text, got {value!r}")
    result = str(value).strip()
    if len(result) > limit:
        raise RuleFileError(f"{path}: {where} is longer than {limit} characters")
    return result
