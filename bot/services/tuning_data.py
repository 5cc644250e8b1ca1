"""The operators' changes to the language data as one JSON *overlay* over the data files, and what
follows from it: the files a server trains on (``materialize``), the files to commit (``export``),
and the problems ``intents check`` / ``kb check`` would report (``problems``).

An overlay::

    {"labelled": {text: intent},                       # reviewed messages (weighted like intents train --extra)
     "examples": {intent: {"add": [...], "remove": [...]}},
     "synonyms": {canonical: {"intent": file, "add": [...], "remove": [...]}},
     "lookups":  {name: {"intent": file, "add": [...], "remove": [...]}},
     "entries":  {entry id: entry mapping | null}}      # null: the entry is removed

Every change is idempotent against the files: adding what a file already holds, or removing what it
no longer holds, changes nothing; so an overlay still applies after its export was committed.
Nothing here touches the database.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from intents.dataset import PACKAGE_DATA_DIR, intent_files, load_dir, read_labelled_file
from intents.errors import TrainingDataError
from intents.evaluate import check_training_data
from intents.registry import load_registry
from knowledge.check import check_entries
from knowledge.entries import (
    DEFAULT_ENTRIES_DIR,
    Entry,
    dump_entries,
    entry_files,
    entry_from_mapping,
    load_file,
)
from knowledge.errors import KnowledgeDataError

LIST_KEYS = ("examples", "synonyms", "lookups")
NEW_ENTRIES_FILE = "tuning.yml"  # entries written in the console that belong to no file yet
NEW_ENTRIES_THEME = "运营新增"
LABELLED_NAME = "labelled.jsonl"
MAX_TEXT = 500


class OverlayError(ValueError):
    """A change that cannot be made (unknown intent, empty text, invalid entry)."""


def empty() -> dict[str, Any]:
    return {"labelled": {}, "examples": {}, "synonyms": {}, "lookups": {}, "entries": {}}


def normalized(overlay: dict[str, Any] | None) -> dict[str, Any]:
    out = empty()
    for key, value in (overlay or {}).items():
        if key in out and isinstance(value, dict):
            out[key] = copy.deepcopy(value)
    return out


def is_empty(overlay: dict[str, Any]) -> bool:
    o = normalized(overlay)
    return not any(o.values())


def _clean(text: Any, what: str) -> str:
    value = " ".join(str(text or "").split())
    if not value:
        raise OverlayError(f"{what} is empty")
    if len(value) > MAX_TEXT:
        raise OverlayError(f"{what} is longer than {MAX_TEXT} characters")
    return value


def _toggle(bucket: dict[str, Any], add: bool, value: str) -> None:
    adds: list[str] = bucket.setdefault("add", [])
    removes: list[str] = bucket.setdefault("remove", [])
    (mine, other) = (adds, removes) if add else (removes, adds)
    if value in other:
        other.remove(value)
    if value not in mine:
        mine.append(value)


def apply(overlay: dict[str, Any], change: dict[str, Any], intents: Iterable[str]) -> dict[str, Any]:
    """The overlay with one change made; ``intents`` are the registered intent names.

    Changes: ``label`` (text, intent; intent ``""`` takes the label away), ``example`` /
    ``synonym`` / ``lookup`` (``add``: true or false), ``entry`` (a mapping; validated),
    ``entry_delete`` (id)."""
    known = set(intents)
    out = normalized(overlay)
    kind = change.get("op")
    if kind == "label":
        text = _clean(change.get("text"), "text")
        intent = str(change.get("intent") or "")
        if not intent:
            out["labelled"].pop(text, None)
        elif intent not in known:
            raise OverlayError(f"unknown intent {intent!r}")
        else:
            out["labelled"][text] = intent
    elif kind in ("example", "synonym", "lookup"):
        intent = str(change.get("intent") or "")
        if intent not in known:
            raise OverlayError(f"unknown intent {intent!r}")
        add = bool(change.get("add", True))
        if kind == "example":
            bucket = out["examples"].setdefault(intent, {})
            _toggle(bucket, add, _clean(change.get("text"), "example"))
        else:
            key = _clean(change.get("canonical" if kind == "synonym" else "name"), f"{kind} name")
            bucket = out[f"{kind}s"].setdefault(key, {})
            bucket["intent"] = intent
            _toggle(bucket, add, _clean(change.get("word"), f"{kind} word"))
    elif kind == "entry":
        raw = change.get("entry")
        if not isinstance(raw, dict):
            raise OverlayError("entry must be a mapping")
        entry = validate_entry(raw)
        out["entries"][entry.id] = entry.to_dict()
    elif kind == "entry_delete":
        out["entries"][_clean(change.get("id"), "entry id")] = None
    else:
        raise OverlayError(f"unknown change {kind!r}")
    return out


def validate_entry(raw: dict[str, Any]) -> Entry:
    data = {k: v for k, v in raw.items() if v not in (None, "", [])}
    data.setdefault("reviewed", dt.date.today().isoformat())
    try:
        entry = entry_from_mapping(data, Path("draft"))
    except KnowledgeDataError as exc:
        raise OverlayError(exc.reason) from None
    # The link is sent to residents under the answer (详细说明：…): a web address they can open.
    if entry.link and not _LINK.fullmatch(entry.link):
        raise OverlayError("field 'link' must be an http:// or https:// address without spaces")
    return entry


_LINK = re.compile(r"https?://[^\s/]+\S*")


# ------------------------------------------------------------------------------------------- files
def _edit_list(items: list[Any], add: Iterable[str], remove: Iterable[str]) -> bool:
    """Append ``add`` not there yet, delete ``remove``, in place (a round-trip list keeps the
    comments of the items left); True when anything changed."""
    changed = False
    for text in add:
        if text not in (str(i) for i in items):
            items.append(text)
            changed = True
    gone = set(remove)
    for index in reversed([i for i, item in enumerate(items) if str(item) in gone]):
        del items[index]
        changed = True
    return changed


def _edit_intent_doc(doc: dict[str, Any], intent: str, overlay: dict[str, Any]) -> bool:
    """Apply the overlay's list changes that belong to ``intent``'s file, in place; True when
    anything changed."""
    changed = False
    ex = overlay["examples"].get(intent)
    if ex:
        if doc.get("examples") is None:
            doc["examples"] = []
        changed |= _edit_list(doc["examples"], ex.get("add", []), ex.get("remove", []))
    for key in ("synonyms", "lookups"):
        for name, bucket in overlay[key].items():
            if bucket.get("intent") != intent:
                continue
            table = doc.get(key)
            if table is None:
                table = {}
            words = table.get(name)
            if words is None:
                words = []
            if not _edit_list(words, bucket.get("add", []), bucket.get("remove", [])):
                continue
            changed = True
            if words:
                table[name] = words
            else:
                table.pop(name, None)
            doc[key] = table
    return changed


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def _round_trip(sequence: int = 2, offset: int = 0) -> YAML:
    """ruamel.yaml's round trip: a file written back keeps its comments, order, flow lists and
    quoting (a long line is not folded); ``sequence``/``offset`` are the file's list indentation."""
    rt = YAML()
    rt.width = 4096
    rt.allow_unicode = True
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=sequence, offset=offset)
    return rt


def _load_round_trip(text: str) -> tuple[Any, YAML]:
    """The document and the round trip that writes it back as it was (the project's files indent
    lists either way: ``key:\n- item`` or ``key:\n  - item``)."""
    for sequence, offset in ((2, 0), (4, 2)):
        rt = _round_trip(sequence, offset)
        doc = rt.load(text)
        if _round_trip_dump(doc, rt) == text:
            return doc, rt
    return _round_trip().load(text), _round_trip()


def _round_trip_dump(doc: Any, rt: YAML) -> str:
    out = io.StringIO()
    rt.dump(doc, out)
    return out.getvalue()


# A training file's top-level ``intent:`` line (``load_dir`` reads the same key).
_INTENT_KEY = re.compile(r"^intent:[ \t]*[\"']?([A-Za-z0-9_\-]+)[\"']?[ \t]*(?:#.*)?$", re.MULTILINE)


def _intent_changes(base: Path, overlay: dict[str, Any], with_labelled: bool) -> dict[str, str]:
    """New text of every intent file the overlay changes, by file name."""
    out: dict[str, str] = {}
    extra: dict[str, list[str]] = {}
    if with_labelled:
        for text, intent in overlay["labelled"].items():
            extra.setdefault(intent, []).append(text)
    touched = set(overlay["examples"]) | set(extra) | {
        b.get("intent") for key in ("synonyms", "lookups") for b in overlay[key].values()}
    for path in intent_files(base):
        text = path.read_text(encoding="utf-8")
        named = _INTENT_KEY.search(text)
        if named is not None and named.group(1) not in touched:
            continue  # nothing to change; the round trip parse costs ~0.2 s per file
        doc, rt = _load_round_trip(text)
        doc = doc or {}
        intent = str(doc.get("intent") or path.stem)
        o = overlay
        if extra.get(intent):
            o = copy.deepcopy(overlay)
            bucket = o["examples"].setdefault(intent, {})
            for t in extra[intent]:
                if t not in bucket.get("remove", []):
                    bucket.setdefault("add", []).append(t)
        if _edit_intent_doc(doc, intent, o):
            out[path.name] = _round_trip_dump(doc, rt)
    return out


def _entry_changes(base: Path, overlay: dict[str, Any]) -> dict[str, str]:
    """New text of every knowledge file the overlay changes, by path relative to ``base``; entries
    that belong to no file go to ``tuning.yml``."""
    changes: dict[str, Any] = overlay["entries"]
    files: dict[str, tuple[str, str | None, list[Entry], list[Entry]]] = {}  # rel -> header, theme, before, after
    placed: set[str] = set()
    for path in entry_files(base):
        entries = load_file(path)
        ids = {e.id for e in entries}
        rel = str(path.relative_to(base))
        if not ids & set(changes) and rel != NEW_ENTRIES_FILE:
            continue
        placed |= ids & set(changes)
        text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
        theme = doc.get("theme") if isinstance(doc, dict) else None
        after = [e if e.id not in changes else validate_entry(changes[e.id])
                 for e in entries if changes.get(e.id, True) is not None]
        files[rel] = (_header(text), theme, entries, after)
    new = [validate_entry(raw) for key, raw in changes.items() if key not in placed and raw is not None]
    if new:
        header, theme, before, after = files.get(NEW_ENTRIES_FILE, (
            "# Entries written in the console's tuning loop (python -m bot tuning export).\n",
            NEW_ENTRIES_THEME, [], []))
        files[NEW_ENTRIES_FILE] = (header, theme, before, [*after, *new])
    return {rel: _entries_text(base / rel, header, theme, before, after)
            for rel, (header, theme, before, after) in files.items()
            if [e.to_dict() for e in after] != [e.to_dict() for e in before]}


def _entries_text(path: Path, header: str, theme: str | None, before: list[Entry], after: list[Entry]) -> str:
    """The knowledge file with ``after``'s entries: an existing file is edited in place (entries
    changed replaced where they stand, deleted ones removed, new ones appended), so the comments
    of the rest are kept; a new file is written whole."""
    doc, rt = _load_round_trip(path.read_text(encoding="utf-8")) if path.is_file() else (None, _round_trip())
    items = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(items, list) or len(items) != len(before):
        return header + dump_entries(after, theme)
    old = {e.id: (i, e.to_dict()) for i, e in enumerate(before)}
    keep = {e.id for e in after}
    for index in reversed([i for e_id, (i, _) in old.items() if e_id not in keep]):
        del items[index]
    position = {e_id: i - sum(1 for other, (j, _) in old.items() if other not in keep and j < i)
                for e_id, (i, _) in old.items() if e_id in keep}
    for e in after:
        data = e.to_dict()
        if e.id not in position:
            items.append(data)
        elif data != old[e.id][1]:
            items[position[e.id]] = data
    return _round_trip_dump(doc, rt)


@dataclass(frozen=True)
class Sources:
    """Where the files are: the intents data folder, the knowledge entries folder, and an
    operator's labelled messages from ``intents train --extra`` (when the file exists)."""

    intents: Path
    knowledge: Path
    labelled: Path | None = None

    @classmethod
    def of(cls, intents: Path | None, knowledge: Path | None, labelled: Path | None = None) -> Sources:
        return cls(Path(intents) if intents else PACKAGE_DATA_DIR,
                   Path(knowledge) if knowledge else DEFAULT_ENTRIES_DIR, labelled)


@dataclass(frozen=True)
class Materialized:
    intents: Path
    labelled: Path
    knowledge: Path


def materialize(overlay: dict[str, Any], sources: Sources, target: Path) -> Materialized:
    """Write the files a server trains on (the sources with the overlay applied) under ``target``.

    The folder is rebuilt from scratch (a temporary sibling renamed into place), so a reader never
    sees half of it."""
    o = normalized(overlay)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    intents_dir, knowledge_dir = tmp / "intents", tmp / "knowledge"
    intents_dir.mkdir(parents=True)
    for path in sources.intents.iterdir():
        if path.is_file():
            shutil.copy2(path, intents_dir / path.name)
    for name, text in _intent_changes(sources.intents, o, with_labelled=False).items():
        (intents_dir / name).write_text(text, encoding="utf-8")
    shutil.copytree(sources.knowledge, knowledge_dir)
    for rel, text in _entry_changes(sources.knowledge, o).items():
        (knowledge_dir / rel).write_text(text, encoding="utf-8")
    rows: dict[str, str] = {}
    if sources.labelled is not None and sources.labelled.is_file():
        registry = load_registry(sources.intents)
        rows = {e.text: e.intent for e in read_labelled_file(sources.labelled, registry)}
    rows.update(o["labelled"])
    (intents_dir / LABELLED_NAME).write_text(
        "".join(json.dumps({"text": t, "intent": i}, ensure_ascii=False) + "\n" for t, i in rows.items()),
        encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return Materialized(target / "intents", target / "intents" / LABELLED_NAME, target / "knowledge")


def export(overlay: dict[str, Any], sources: Sources) -> dict[str, str]:
    """The changed files to commit, by path (``intents/<file>`` relative to the intents folder,
    ``knowledge/<file>`` relative to the entries folder); reviewed messages become examples."""
    o = normalized(overlay)
    out = {f"intents/{name}": text for name, text in _intent_changes(sources.intents, o, with_labelled=True).items()}
    for rel, text in _entry_changes(sources.knowledge, o).items():
        out[f"knowledge/{rel}"] = text
    return out


def write_export(files: dict[str, str], sources: Sources) -> list[Path]:
    """Write exported files over the sources (``python -m bot tuning export``)."""
    written = []
    for rel, text in sorted(files.items()):
        folder, _, name = rel.partition("/")
        path = (sources.intents if folder == "intents" else sources.knowledge) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# ----------------------------------------------------------------------------------------- checks
def problems(files: Materialized) -> dict[str, Any]:
    """What ``intents check`` and ``kb check`` report for these files: conflicts (one text, two
    intents), duplicates, near-duplicate knowledge phrasings, or the load error."""
    out: dict[str, Any] = {"conflicts": [], "duplicates": [], "knowledge": [], "error": None}
    try:
        data = load_dir(files.intents, files.labelled)
    except TrainingDataError as exc:
        out["error"] = str(exc)
        return out
    result = check_training_data(data)
    out["conflicts"] = [_short(c) for c in result.conflicts]
    out["duplicates"] = [_short(d) for d in result.duplicates]
    try:
        from knowledge.entries import load_entries

        entries = load_entries(files.knowledge)
    except KnowledgeDataError as exc:
        out["error"] = str(exc)
        return out
    out["knowledge"] = [{"kind": p.kind, "message": p.message} for p in check_entries(entries)
                        if p.kind in ("duplicate", "near-duplicate")]
    return out


def _short(item: dict[str, Any]) -> dict[str, Any]:
    return {"text": item["text"], "intents": sorted({p["intent"] for p in item["places"]}),
            "places": [{"intent": p["intent"], "file": Path(p["file"]).name, "line": p["line"]}
                       for p in item["places"]]}


# ------------------------------------------------------------------------------------------ views
def intent_view(overlay: dict[str, Any], sources: Sources, intent: str) -> dict[str, Any]:
    """One intent's training file as the draft has it: examples (with what the draft added and
    removed), synonyms (canonical → variants), lookup lists, and the reviewed messages labelled so."""
    o = normalized(overlay)
    doc: dict[str, Any] = {}
    for path in intent_files(sources.intents):
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if str(loaded.get("intent") or path.stem) == intent:
            doc = loaded
            break
    _edit_intent_doc(doc, intent, o)
    changes = o["examples"].get(intent, {})
    return {
        "intent": intent,
        "examples": [str(e) for e in doc.get("examples") or []],
        "added": list(changes.get("add", [])),
        "removed": list(changes.get("remove", [])),
        "synonyms": {str(k): [str(w) for w in v or []] for k, v in (doc.get("synonyms") or {}).items()},
        "lookups": {str(k): [str(w) for w in v or []] for k, v in (doc.get("lookups") or {}).items()},
        "labelled": sorted(t for t, i in o["labelled"].items() if i == intent),
    }


def draft_entries(overlay: dict[str, Any], sources: Sources) -> list[Entry]:
    """The knowledge entries as the draft has them (changed entries replaced, removed ones gone)."""
    from knowledge.entries import load_entries

    changes: dict[str, Any] = normalized(overlay)["entries"]
    out: list[Entry] = []
    for e in load_entries(sources.knowledge):
        if e.id not in changes:
            out.append(e)
        elif changes[e.id] is not None:
            out.append(validate_entry(changes[e.id]))
    known = {e.id for e in out}
    out += [validate_entry(raw) for key, raw in changes.items() if raw is not None and key not in known]
    return out


def summary(overlay: dict[str, Any]) -> dict[str, int]:
    """How many changes of each kind the overlay holds."""
    o = normalized(overlay)
    def words(key: str) -> int:
        return sum(len(b.get("add", [])) + len(b.get("remove", [])) for b in o[key].values())
    return {"labelled": len(o["labelled"]), "examples": words("examples"), "synonyms": words("synonyms"),
            "lookups": words("lookups"), "entries": len(o["entries"])}
