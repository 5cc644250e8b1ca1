"""Loading the operator-editable YAML training data: one file per intent, each intent named in the
registry (``intents.yml``, see :mod:`intents.registry`); plus, optionally, a community's own labelled
messages (``python -m bot intents train --extra FILE``).

These files are the data: people edit them, nothing regenerates them.

File format (``intents/data/<intent>.yml``)::

    intent: complaint              # label; defaults to the file name
    description: free text
    synonyms:                      # canonical word -> variants rewritten before classification
      报修: [保修, 抱修]
    lookups:                       # named word lists used by entity extraction
      courses: [花艺, 书法]
    examples:
      - 楼道灯坏了
      - 为啥路灯一直不修？

Every example keeps its file and line so that ``check`` and errors can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from intents.errors import InputDataError, TrainingDataError
from intents.registry import REGISTRY_FILE, Registry, load_registry, packaged_registry

PACKAGE_DATA_DIR = Path(__file__).parent / "data"
MAX_EXAMPLE_CHARS = 500
# An operator's labelled messages, relative to the bot's data folder (``intents train --extra``).
LABELLED_FILE = Path("intents") / "labelled.jsonl"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    path: Path
    line: int  # 1-based


@dataclass
class TrainingData:
    examples: list[Example] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # variant -> canonical
    lookups: dict[str, list[str]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    registry: Registry = field(default_factory=packaged_registry)

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})

    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    def labels(self) -> list[str]:
        return [e.intent for e in self.examples]


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar_str(node: yaml.Node, path: Path, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise TrainingDataError(path, _line(node), f"{what} must be a plain string")
    value = str(node.value).strip()
    if not value:
        raise TrainingDataError(path, _line(node), f"{what} is empty")
    return value


def _string_list(node: yaml.Node, path: Path, what: str) -> list[tuple[str, int]]:
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise TrainingDataError(path, _line(node), f"{what} must be a list of strings")
    return [(_scalar_str(item, path, f"an item of {what}"), _line(item)) for item in node.value]


def load_file(path: Path) -> tuple[str, list[Example], dict[str, str], dict[str, list[str]]]:
    """Parse one intent file; raise :class:`TrainingDataError` naming the file and line on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TrainingDataError(path, None, f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise TrainingDataError(path, None, f"cannot read: {exc.strerror}") from exc
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise TrainingDataError(path, line, f"invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise TrainingDataError(path, None, f"invalid YAML: {exc}") from exc
    if root is None:
        raise TrainingDataError(path, 1, "file is empty")
    if not isinstance(root, yaml.MappingNode):
        raise TrainingDataError(path, _line(root), "top level must be a mapping with an 'examples' list")
    intent = path.stem
    examples_node: yaml.Node | None = None
    synonyms: dict[str, str] = {}
    lookups: dict[str, list[str]] = {}
    for key_node, value_node in root.value:
        key = _scalar_str(key_node, path, "a key")
        if key == "intent":
            intent = _scalar_str(value_node, path, "'intent'")
        elif key == "examples":
            examples_node = value_node
        elif key == "synonyms":
            if not isinstance(value_node, yaml.MappingNode):
                raise TrainingDataError(path, _line(value_node), "'synonyms' must map a word to a list of variants")
            for k, v in value_node.value:
                canonical = _scalar_str(k, path, "a synonym key")
                for variant, _ in _string_list(v, path, f"synonyms of {canonical!r}"):
                    synonyms[variant] = canonical
        elif key == "lookups":
            if not isinstance(value_node, yaml.MappingNode):
                raise TrainingDataError(path, _line(value_node), "'lookups' must map a list name to a list")
            for k, v in value_node.value:
                name = _scalar_str(k, path, "a lookup name")
                lookups[name] = [w for w, _ in _string_list(v, path, f"lookup {name!r}")]
        elif key == "description":
            continue
        else:
            raise TrainingDataError(path, _line(key_node), f"unknown key {key!r} (expected intent, description, "
                                    "synonyms, lookups, examples)")
    if examples_node is None:
        raise TrainingDataError(path, _line(root), "no 'examples' list")
    examples = []
    for text_value, line in _string_list(examples_node, path, "'examples'"):
        if len(text_value) > MAX_EXAMPLE_CHARS:
            raise TrainingDataError(path, line, f"example longer than {MAX_EXAMPLE_CHARS} characters")
        examples.append(Example(text_value, intent, path, line))
    return intent, examples, synonyms, lookups


def intent_files(data_dir: Path) -> list[Path]:
    """The intent files of a folder: every ``*.yml``/``*.yaml`` except the registry."""
    files = sorted(p for p in data_dir.glob("*.yml") if p.is_file()) + sorted(
        p for p in data_dir.glob("*.yaml") if p.is_file())
    return [p for p in files if p.name != REGISTRY_FILE]


def load_dir(data_dir: Path | None = None, labelled: Path | None = None, complete: bool = True) -> TrainingData:
    """Load the registry and every intent file of ``data_dir`` (default: the packaged data), plus the
    labelled messages in ``labelled`` (JSONL written by ``intents train --extra``) when that file exists.

    Every intent file must belong to a registered intent and, when ``complete`` (training data, not an
    evaluation set), every registered intent needs examples.
    """
    data_dir = PACKAGE_DATA_DIR if data_dir is None else Path(data_dir)
    if not data_dir.is_dir():
        raise TrainingDataError(data_dir, None, "training data directory not found")
    registry = load_registry(data_dir)
    files = intent_files(data_dir)
    if not files:
        raise TrainingDataError(data_dir, None, "no *.yml intent files")
    data = TrainingData(files=files, registry=registry)
    seen_intents: dict[str, Path] = {}
    for path in files:
        intent, examples, synonyms, lookups = load_file(path)
        if intent in seen_intents:
            raise TrainingDataError(path, 1, f"intent {intent!r} is already defined in {seen_intents[intent]}")
        if intent not in registry:
            raise TrainingDataError(path, 1, f"intent {intent!r} is not in the registry {registry.path} "
                                    f"(known: {', '.join(registry.names)}); add it there first")
        seen_intents[intent] = path
        data.examples.extend(examples)
        data.synonyms.update(synonyms)
        for name, words in lookups.items():
            data.lookups.setdefault(name, []).extend(words)
    for name in registry.names if complete else ():
        if not any(e.intent == name for e in data.examples):
            raise TrainingDataError(registry.path or data_dir, None,
                                    f"intent {name!r} has no examples (expected a file {name}.yml in {data_dir})")
    if labelled is not None and Path(labelled).is_file():
        data.examples.extend(read_labelled_file(Path(labelled), registry))
    return data


# ------------------------------------------------------------------------------ an operator's messages
def read_extra(path: Path, registry: Registry, text_column: str = "text",
               intent_column: str = "intent") -> list[Example]:
    """Labelled messages from a CSV, XLSX or JSONL table (columns ``text`` and ``intent``).

    Empty rows are skipped; a missing column, an unknown intent or an over-long text is an
    :class:`InputDataError` naming the file and the row.
    """
    from intents.tables import read_table

    table = read_table(path)
    table.require(text_column, intent_column)
    examples = []
    for line, row in table.rows:
        text = " ".join(str(row.get(text_column) or "").split())
        intent = str(row.get(intent_column) or "").strip()
        if not text and not intent:
            continue
        if not text:
            raise InputDataError(f"{path}:{line}: empty {text_column!r}")
        if intent not in registry:
            shown = f"{intent!r}" if intent else "an empty intent"
            raise InputDataError(f"{path}:{line}: unknown intent {shown} (known: {', '.join(registry.names)})")
        if len(text) > MAX_EXAMPLE_CHARS:
            raise InputDataError(f"{path}:{line}: text longer than {MAX_EXAMPLE_CHARS} characters")
        examples.append(Example(text, intent, path, line))
    if not examples:
        raise InputDataError(f"{path}: no labelled rows")
    return examples


def read_labelled_file(path: Path, registry: Registry) -> list[Example]:
    """The stored labelled messages; rows of intents no longer registered are left out."""
    from intents.tables import read_table

    table = read_table(path)
    out = []
    for line, row in table.rows:
        text, intent = row.get("text", "").strip(), row.get("intent", "").strip()
        if text and intent in registry:
            out.append(Example(text, intent, path, line))
    return out


def merge_labelled(path: Path, new: list[Example], replace_all: bool = False) -> tuple[int, int]:
    """Add ``new`` to the stored labelled messages (a text labelled again takes its new intent).

    Returns (stored rows, rows added or changed). Written atomically.
    """
    import json

    rows: dict[str, str] = {}
    if path.is_file() and not replace_all:
        from intents.tables import read_table

        for _, row in read_table(path).rows:
            if row.get("text", "").strip():
                rows[row["text"].strip()] = row.get("intent", "").strip()
    changed = 0
    for e in new:
        if rows.get(e.text) != e.intent:
            changed += 1
        rows.pop(e.text, None)
        rows[e.text] = e.intent
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps({"text": t, "intent": i}, ensure_ascii=False) + "\n" for t, i in rows.items()),
                   encoding="utf-8")
    tmp.replace(path)
    return len(rows), changed
