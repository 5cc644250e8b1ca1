"""Loading the operator-editable YAML training data: one file per intent.

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

from intents.errors import TrainingDataError

PACKAGE_DATA_DIR = Path(__file__).parent / "data"
INTENTS: tuple[str, ...] = ("complaint", "coupon", "course_booking", "query", "smalltalk", "handoff", "fallback")
CORE_INTENTS: tuple[str, ...] = ("complaint", "coupon", "course_booking", "query")
MAX_EXAMPLE_CHARS = 500

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
    return sorted(p for p in data_dir.glob("*.yml") if p.is_file()) + sorted(
        p for p in data_dir.glob("*.yaml") if p.is_file())


def load_dir(data_dir: Path | None = None) -> TrainingData:
    """Load every ``*.yml`` intent file of ``data_dir`` (default: the packaged data)."""
    data_dir = PACKAGE_DATA_DIR if data_dir is None else Path(data_dir)
    if not data_dir.is_dir():
        raise TrainingDataError(data_dir, None, "training data directory not found")
    files = intent_files(data_dir)
    if not files:
        raise TrainingDataError(data_dir, None, "no *.yml intent files")
    data = TrainingData(files=files)
    seen_intents: dict[str, Path] = {}
    for path in files:
        intent, examples, synonyms, lookups = load_file(path)
        if intent in seen_intents:
            raise TrainingDataError(path, 1, f"intent {intent!r} is already defined in {seen_intents[intent]}")
        seen_intents[intent] = path
        data.examples.extend(examples)
        data.synonyms.update(synonyms)
        for name, words in lookups.items():
            data.lookups.setdefault(name, []).extend(words)
    if len(seen_intents) < 2:
        raise TrainingDataError(data_dir, None, "need at least two intents to train a classifier")
    return data
