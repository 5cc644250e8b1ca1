"""Import question–answer pairs from CSV / XLSX / YAML into entry files, and export entries.

Operators bring an existing FAQ spreadsheet: one row per question, with columns for the answer and
optionally alternative phrasings, tags, department and id. Column names are configurable; the
defaults accept English or Chinese headers (question/问题, answer/答案 …).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz

from intents.tokens import normalize
from knowledge.entries import ID_RE, Entry, dump_entries
from knowledge.errors import KnowledgeDataError

DEFAULT_DEPARTMENT = "社区服务中心综合窗口"
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "question": ("question", "问题", "标准问题", "问"),
    "answer": ("answer", "答案", "回答", "答复"),
    "alternatives": ("alternatives", "相似问法", "其他问法", "相似问题"),
    "tags": ("tags", "标签", "分类"),
    "department": ("department", "部门", "责任部门", "科室"),
    "id": ("id", "编号"),
    "link": ("link", "链接"),
}
EXPORT_COLUMNS = ("id", "question", "alternatives", "answer", "link", "tags", "department", "reviewed")
LIST_SPLIT_RE = re.compile(r"[|\n；;]+")


@dataclass(frozen=True)
class Columns:
    """Which column holds which field; ``None`` means "find it by the usual names"."""

    question: str | None = None
    answer: str | None = None
    alternatives: str | None = None
    tags: str | None = None
    department: str | None = None
    id: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class Row:
    line: int  # 1-based row number in the source (header is row 1)
    values: dict[str, str]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


def read_rows(path: Path, sheet: str | None = None) -> list[Row]:
    """Rows of a CSV, XLSX or YAML file as header→text mappings."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise KnowledgeDataError(path, "file not found")
    if suffix == ".csv":
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise KnowledgeDataError(path, "CSV must be UTF-8 (save it as 'CSV UTF-8')") from None
        reader = csv.DictReader(io.StringIO(text))
        rows = []
        for rec in reader:
            rows.append(Row(reader.line_num, {(k or "").strip(): _cell(v) for k, v in rec.items()}))
        return rows
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for broken files
            raise KnowledgeDataError(path, f"cannot read workbook: {exc}") from None
        try:
            if sheet is not None and sheet not in wb.sheetnames:
                raise KnowledgeDataError(path, f"no sheet named {sheet!r} (sheets: {', '.join(wb.sheetnames)})")
            ws = wb[sheet] if sheet is not None else wb.worksheets[0]
            it = ws.iter_rows(values_only=True)
            header = [_cell(h) for h in next(it, ())]
            rows = []
            for n, values in enumerate(it, start=2):
                cells = {h: _cell(v) for h, v in zip(header, values, strict=False) if h}
                if any(cells.values()):
                    rows.append(Row(n, cells))
            return rows
        finally:
            wb.close()
    if suffix in (".yml", ".yaml"):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            raise KnowledgeDataError(path, "invalid YAML", mark.line + 1 if mark else None) from None
        items = doc.get("entries") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise KnowledgeDataError(path, "expected a list of question–answer items (or an 'entries' list)")
        rows = []
        for n, item in enumerate(items, 1):
            if not isinstance(item, dict):
                raise KnowledgeDataError(path, f"item {n} must be a mapping")
            values = {}
            for k, v in item.items():
                values[str(k)] = "|".join(_cell(x) for x in v) if isinstance(v, list) else _cell(v)
            rows.append(Row(n, values))
        return rows
    raise KnowledgeDataError(path, "unsupported file type (use .csv, .xlsx or .yml)")


def _resolve(headers: Iterable[str], field_name: str, wanted: str | None, path: Path, required: bool) -> str | None:
    names = list(headers)
    if wanted is not None:
        if wanted not in names:
            raise KnowledgeDataError(path, f"no column {wanted!r} (columns: {', '.join(names)})", 1)
        return wanted
    lowered = {n.lower(): n for n in names}
    for alias in COLUMN_ALIASES[field_name]:
        if alias.lower() in lowered:
            return lowered[alias.lower()]
    if required:
        raise KnowledgeDataError(
            path, f"cannot find the {field_name} column (columns: {', '.join(names)}); name it with an option", 1
        )
    return None


def _split(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in LIST_SPLIT_RE.split(text) if p.strip()))


def stable_id(question: str, prefix: str = "faq") -> str:
    """An id that stays the same when the same question is imported again."""
    return f"{prefix}-{hashlib.sha1(normalize(question).encode('utf-8')).hexdigest()[:10]}"


def rows_to_entries(
    rows: Sequence[Row],
    path: Path,
    columns: Columns = Columns(),
    department: str = DEFAULT_DEPARTMENT,
    reviewed: dt.date | None = None,
) -> list[Entry]:
    """Validate rows and turn them into entries (ids generated when missing)."""
    if not rows:
        raise KnowledgeDataError(path, "no rows to import")
    headers = list(rows[0].values)
    col = {
        name: _resolve(headers, name, getattr(columns, name), path, name in ("question", "answer"))
        for name in COLUMN_ALIASES
    }
    reviewed = reviewed or dt.date.today()
    entries: list[Entry] = []
    for row in rows:
        def get(name: str, row: Row = row) -> str:
            c = col[name]
            return row.values.get(c, "") if c else ""

        question, answer = get("question"), get("answer")
        if not question or not answer:
            raise KnowledgeDataError(path, "row needs both a question and an answer", row.line)
        entry_id = get("id") or stable_id(question)
        if not ID_RE.match(entry_id):
            raise KnowledgeDataError(path, f"id {entry_id!r} must be lowercase ASCII letters, digits, '.', '_' or '-'", row.line)
        entries.append(
            Entry(
                id=entry_id,
                question=question,
                answer=answer,
                alternatives=tuple(a for a in _split(get("alternatives")) if a != question),
                tags=_split(get("tags")),
                department=get("department") or department,
                reviewed=reviewed,
                link=get("link") or None,
                source=path,
                line=row.line,
            )
        )
    return entries


@dataclass
class Duplicate:
    entry: Entry
    other_id: str
    other_text: str
    similarity: float  # 0..100
    exact: bool


@dataclass
class ImportPlan:
    new: list[Entry] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)


NEAR_DUPLICATE = 90.0


def _key(text: str) -> str:
    return "".join(ch for ch in normalize(text) if ch.isalnum())


def plan_import(incoming: Sequence[Entry], existing: Sequence[Entry]) -> ImportPlan:
    """Split incoming entries into new ones and duplicates of existing (or earlier incoming) ones."""
    plan = ImportPlan()
    known: list[tuple[str, str, str]] = []  # (key, entry id, text)
    ids: set[str] = set()
    for e in existing:
        ids.add(e.id)
        known.extend((_key(p), e.id, p) for p in e.phrasings)
    for e in incoming:
        found: Duplicate | None = None
        if e.id in ids:
            found = Duplicate(e, e.id, "(same id)", 100.0, True)
        else:
            for phrasing in e.phrasings:
                k = _key(phrasing)
                for other_key, other_id, other_text in known:
                    sim = 100.0 if k == other_key else fuzz.ratio(k, other_key)
                    if sim >= NEAR_DUPLICATE and (found is None or sim > found.similarity):
                        found = Duplicate(e, other_id, other_text, sim, sim == 100.0)
                if found is not None and found.exact:
                    break
        if found is not None:
            plan.duplicates.append(found)
            continue
        plan.new.append(e)
        ids.add(e.id)
        known.extend((_key(p), e.id, p) for p in e.phrasings)
    return plan


def export_rows(entries: Iterable[Entry]) -> list[dict[str, str]]:
    rows = []
    for e in entries:
        rows.append(
            {
                "id": e.id,
                "question": e.question,
                "alternatives": " | ".join(e.alternatives),
                "answer": e.answer,
                "link": e.link or "",
                "tags": " | ".join(e.tags),
                "department": e.department,
                "reviewed": e.reviewed.isoformat() if e.reviewed else "",
            }
        )
    return rows


def export_text(entries: Sequence[Entry], fmt: str) -> str:
    if fmt == "yaml":
        return dump_entries(entries)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(EXPORT_COLUMNS))
    writer.writeheader()
    writer.writerows(export_rows(entries))
    return buf.getvalue()


def export_xlsx(entries: Sequence[Entry], path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "knowledge"
    ws.append(list(EXPORT_COLUMNS))
    for row in export_rows(entries):
        ws.append([row[c] for c in EXPORT_COLUMNS])
    wb.save(path)
