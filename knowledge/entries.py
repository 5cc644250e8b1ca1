"""Knowledge entries: the data model and the YAML files that hold them.

A content file is a YAML mapping with an ``entries`` list (and optional ``theme`` and
``defaults`` applied to every entry of the file), or a bare list of entries::

    theme: 证明开具
    defaults: {department: 社区服务中心综合窗口, reviewed: 2026-11-20}
    entries:
      - id: proof-residence
        question: 怎么开居住证明？
        alternatives: [居住证明在哪开, ...]
        answer: ...
        tags: [证明, 居住]
      - id: proof-death
        question: 家里老人去世了要办哪些手续？
        sensitive: true      # offered only to questions about it, never as a guess for another worry
        ...

Every problem is reported as :class:`~knowledge.errors.KnowledgeDataError` naming the file and
line, so an operator can fix the file; nothing half-loaded is ever returned.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.errors import KnowledgeDataError

DEFAULT_ENTRIES_DIR = Path(__file__).parent / "entries"
ENTRY_SUFFIXES = (".yml", ".yaml")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
MAX_ANSWER_CHARS = 300
_LINE = "__line__"
REQUIRED = ("id", "question", "answer", "department", "reviewed")
KNOWN_FIELDS = frozenset(
    {"id", "question", "alternatives", "answer", "link", "article", "tags", "department", "reviewed", "sensitive"}
)


@dataclass(frozen=True)
class Entry:
    """One topic: a canonical question, its other phrasings and the answer residents get."""

    id: str
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    department: str = ""
    reviewed: dt.date | None = None
    link: str | None = None
    article: str | None = None
    # A topic that hurts when offered by mistake (a death, a funeral): retrieval answers it or offers
    # it as a choice only when the question itself is about it (see ``knowledge.base``).
    sensitive: bool = False
    source: Path | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    @property
    def phrasings(self) -> tuple[str, ...]:
        """The canonical question followed by the alternatives."""
        return (self.question, *self.alternatives)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping in file order, without empty optional fields (for YAML/CSV export)."""
        out: dict[str, Any] = {"id": self.id, "question": self.question}
        if self.alternatives:
            out["alternatives"] = list(self.alternatives)
        out["answer"] = self.answer
        if self.link:
            out["link"] = self.link
        if self.article:
            out["article"] = self.article
        if self.tags:
            out["tags"] = list(self.tags)
        out["department"] = self.department
        out["reviewed"] = self.reviewed.isoformat() if self.reviewed else None
        if self.sensitive:
            out["sensitive"] = True
        return out


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the line of each mapping under ``__line__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> KnowledgeDataError:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    return KnowledgeDataError(path, f"invalid YAML: {problem}", line)


def _text(value: Any, name: str, path: Path, line: int | None, *, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise KnowledgeDataError(path, f"missing or empty field '{name}'", line)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise KnowledgeDataError(path, f"field '{name}' must be text, got {type(value).__name__}", line)
    return str(value).strip()


def _text_list(value: Any, name: str, path: Path, line: int | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise KnowledgeDataError(path, f"field '{name}' must be a list of texts", line)
    out: list[str] = []
    for item in value:
        text = _text(item, name, path, line, required=False)
        if text and text not in out:
            out.append(text)
    return tuple(out)


def _date(value: Any, path: Path, line: int | None) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise KnowledgeDataError(path, f"field 'reviewed' must be a date like 2026-11-20, got {value!r}", line)


def _flag(value: Any, name: str, path: Path, line: int | None) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise KnowledgeDataError(path, f"field '{name}' must be true or false, got {value!r}", line)
    return value


def entry_from_mapping(raw: Mapping[str, Any], path: Path, defaults: Mapping[str, Any] | None = None) -> Entry:
    """Validate one raw entry mapping (file defaults applied) and build an :class:`Entry`."""
    line = raw.get(_LINE) if isinstance(raw.get(_LINE), int) else None
    data = {k: v for k, v in (defaults or {}).items() if k != _LINE}
    data.update({k: v for k, v in raw.items() if k != _LINE})
    unknown = sorted(str(k) for k in data if k not in KNOWN_FIELDS)
    if unknown:
        raise KnowledgeDataError(path, f"unknown field(s): {', '.join(unknown)}", line)
    missing = [name for name in REQUIRED if data.get(name) in (None, "")]
    if missing:
        raise KnowledgeDataError(path, f"entry is missing required field(s): {', '.join(missing)}", line)
    entry_id = _text(data["id"], "id", path, line) or ""
    if not ID_RE.match(entry_id):
        raise KnowledgeDataError(
            path, f"id {entry_id!r} must be lowercase ASCII letters, digits, '.', '_' or '-'", line
        )
    question = _text(data["question"], "question", path, line) or ""
    alternatives = tuple(a for a in _text_list(data.get("alternatives"), "alternatives", path, line) if a != question)
    return Entry(
        id=entry_id,
        question=question,
        answer=_text(data["answer"], "answer", path, line) or "",
        alternatives=alternatives,
        tags=_text_list(data.get("tags"), "tags", path, line),
        department=_text(data["department"], "department", path, line) or "",
        reviewed=_date(data["reviewed"], path, line),
        link=_text(data.get("link"), "link", path, line, required=False),
        article=_text(data.get("article"), "article", path, line, required=False),
        sensitive=_flag(data.get("sensitive"), "sensitive", path, line),
        source=path,
        line=line,
    )


def load_file(path: Path) -> list[Entry]:
    """Parse and validate one content file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise KnowledgeDataError(path, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise KnowledgeDataError(path, f"cannot read file: {exc.strerror or exc}") from None
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    if doc is None:
        return []
    defaults: Mapping[str, Any] | None = None
    if isinstance(doc, dict):
        raw_defaults = doc.get("defaults")
        if raw_defaults is not None and not isinstance(raw_defaults, dict):
            raise KnowledgeDataError(path, "'defaults' must be a mapping", doc.get(_LINE))
        defaults = raw_defaults
        items = doc.get("entries")
        if not isinstance(items, list):
            raise KnowledgeDataError(path, "expected an 'entries' list", doc.get(_LINE))
    elif isinstance(doc, list):
        items = doc
    else:
        raise KnowledgeDataError(path, "expected a mapping with 'entries' or a list of entries", 1)
    entries: list[Entry] = []
    for item in items:
        if not isinstance(item, dict):
            raise KnowledgeDataError(path, f"each entry must be a mapping, got {type(item).__name__}")
        entries.append(entry_from_mapping(item, path, defaults))
    return entries


def entry_files(directory: Path) -> list[Path]:
    """Content files in ``directory`` (recursively), in a stable order; hidden files skipped."""
    if not directory.is_dir():
        raise KnowledgeDataError(directory, "entries directory does not exist")
    return sorted(
        p
        for p in directory.rglob("*")
        if p.suffix in ENTRY_SUFFIXES and p.is_file() and not any(part.startswith(".") for part in p.parts)
    )


def load_entries(directory: Path | None = None) -> list[Entry]:
    """Load every entry under ``directory``; ids must be unique across files."""
    directory = directory or DEFAULT_ENTRIES_DIR
    seen: dict[str, Entry] = {}
    for path in entry_files(directory):
        for entry in load_file(path):
            if entry.id in seen:
                first = seen[entry.id]
                raise KnowledgeDataError(
                    path, f"duplicate id {entry.id!r} (first defined in {first.source}:{first.line})", entry.line
                )
            seen[entry.id] = entry
    return list(seen.values())


def iter_problems(entries: Iterable[Entry]) -> Iterator[str]:
    """Soft content problems (not load errors): overlong answers, entries without phrasings or tags."""
    for e in entries:
        where = f"{e.source}:{e.line}" if e.source else e.id
        if len(e.answer) > MAX_ANSWER_CHARS:
            yield f"{where}: {e.id}: answer has {len(e.answer)} characters (keep it under {MAX_ANSWER_CHARS})"
        if not e.alternatives:
            yield f"{where}: {e.id}: no alternative phrasings"
        if not e.tags:
            yield f"{where}: {e.id}: no tags"


def dump_entries(entries: Iterable[Entry], theme: str | None = None) -> str:
    """YAML text for a content file holding ``entries``."""
    doc: dict[str, Any] = {}
    if theme:
        doc["theme"] = theme
    doc["entries"] = [e.to_dict() for e in entries]
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
