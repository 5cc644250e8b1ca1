"""The one list of intents: ``intents.yml`` next to the training files names every intent with what
belongs to it (its kind, the clarifying choice, the help line, menu keys, …).

Everything that needs to know the intents reads this registry: the engine (which intent is the
out-of-scope one, which are core services), the training data loader (every file must belong to a
registered intent and every intent must have examples), and the bot (menu keys, the clarifying
question, the help and fallback texts, the demo data). Adding an intent is one entry here plus one
file of examples.

File format (``intents/data/intents.yml``)::

    intents:
      complaint:                       # the intent's name, as in complaint.yml
        kind: service                  # service | conversation | out_of_scope (exactly one: fallback)
        label: 反映问题、报修或投诉      # offered in "您是想：1. … 2. …" (no label: never offered)
        summary: 反映小区问题            # in the fallback reply's "我能帮您：…"
        help: 反映问题：路灯不亮、…      # a numbered line of the help menu
        menu_keys: [REPORT, MY_TICKETS] # WeChat menu CLICK keys that mean this intent
        intro: …                        # said when chosen without a message that a flow can act on
        fuzzy_lookups: [courses]        # lookup lists matched fuzzily when this intent is on top
        evidence: [积分, 优惠券]          # words that show a message is about this service (see below)

``evidence`` words are in-domain evidence: a message that names one (after synonyms are rewritten) is
out of scope only when the scope head is surer than for other messages (``EngineConfig.
evidence_scope_threshold`` instead of ``scope_threshold``), so that an unfamiliar phrasing around
积分 or 医保 does not make it look like a voice-assistant request. Only in-scope intents may have them.

The order of the entries is the order of the help menu and of the clarifying choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from intents.errors import TrainingDataError

REGISTRY_FILE = "intents.yml"
PACKAGE_REGISTRY = Path(__file__).parent / "data" / REGISTRY_FILE
FALLBACK = "fallback"

Kind = Literal["service", "conversation", "out_of_scope"]
KINDS: tuple[str, ...] = ("service", "conversation", "out_of_scope")
_FIELDS = ("kind", "label", "summary", "help", "menu_keys", "intro", "fuzzy_lookups", "evidence")


@dataclass(frozen=True)
class IntentInfo:
    name: str
    kind: Kind
    label: str | None = None
    summary: str | None = None
    help: str | None = None
    menu_keys: tuple[str, ...] = ()
    intro: str | None = None
    fuzzy_lookups: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()

    @property
    def core(self) -> bool:
        """A service the assistant acts on (a complaint, a question, points, courses)."""
        return self.kind == "service"

    @property
    def in_scope(self) -> bool:
        return self.kind != "out_of_scope"


@dataclass(frozen=True)
class Registry:
    intents: tuple[IntentInfo, ...]
    path: Path | None = None
    _by_name: dict[str, IntentInfo] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({i.name: i for i in self.intents})

    # ------------------------------------------------------------------ lookups
    @property
    def names(self) -> list[str]:
        return [i.name for i in self.intents]

    @property
    def core(self) -> list[str]:
        return [i.name for i in self.intents if i.core]

    @property
    def in_scope(self) -> list[str]:
        return [i.name for i in self.intents if i.in_scope]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str | None) -> IntentInfo | None:
        return self._by_name.get(name) if name is not None else None

    def is_core(self, name: str | None) -> bool:
        info = self.get(name)
        return info is not None and info.core

    def menu_intents(self) -> dict[str, str]:
        """WeChat menu CLICK key → intent."""
        return {key: i.name for i in self.intents for key in i.menu_keys}

    def labels(self) -> dict[str, str]:
        """Intent → its choice in a clarifying question (intents that can be offered)."""
        return {i.name: i.label for i in self.intents if i.label}

    def help_lines(self) -> list[str]:
        return [i.help for i in self.intents if i.help]

    def help_intents(self) -> list[IntentInfo]:
        """The intents the help text lists, in its order (its line n is the n-th)."""
        return [i for i in self.intents if i.help]

    def summaries(self) -> list[str]:
        return [i.summary for i in self.intents if i.summary]

    def intro(self, name: str | None) -> str | None:
        info = self.get(name)
        return info.intro if info is not None else None

    def fuzzy_lookups(self) -> dict[str, tuple[str, ...]]:
        return {i.name: i.fuzzy_lookups for i in self.intents if i.fuzzy_lookups}

    def evidence_words(self) -> list[str]:
        """The in-scope intents' evidence words, each once, in registry order."""
        return list(dict.fromkeys(w for i in self.intents for w in i.evidence))


# ---------------------------------------------------------------------------------------------- loading
def _text(value: object, path: Path, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TrainingDataError(path, None, f"{where} must be a non-empty string")
    return value.strip()


def _names(value: object, path: Path, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TrainingDataError(path, None, f"{where} must be a list of names")
    return tuple(v.strip() for v in value)


def parse_registry(doc: object, path: Path) -> Registry:
    if not isinstance(doc, dict) or not isinstance(doc.get("intents"), dict) or not doc["intents"]:
        raise TrainingDataError(path, 1, "expected 'intents:' mapping each intent's name to its settings")
    unknown_top = sorted(set(doc) - {"intents"})
    if unknown_top:
        raise TrainingDataError(path, None, f"unknown key {unknown_top[0]!r} (expected 'intents')")
    infos: list[IntentInfo] = []
    menu_owner: dict[str, str] = {}
    for name, spec in doc["intents"].items():
        if not isinstance(name, str) or not name.strip():
            raise TrainingDataError(path, None, "an intent's name must be a non-empty string")
        where = f"intent {name!r}"
        if not isinstance(spec, dict):
            raise TrainingDataError(path, None, f"{where}: expected settings (kind, label, help, …)")
        extra = sorted(set(spec) - set(_FIELDS))
        if extra:
            raise TrainingDataError(path, None, f"{where}: unknown setting {extra[0]!r} "
                                    f"(expected {', '.join(_FIELDS)})")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise TrainingDataError(path, None, f"{where}: 'kind' must be one of {', '.join(KINDS)}")
        optional = {k: _text(spec[k], path, f"{where}: {k!r}") for k in ("label", "summary", "help", "intro")
                    if spec.get(k) is not None}
        menu_keys = _names(spec.get("menu_keys"), path, f"{where}: 'menu_keys'")
        for key in menu_keys:
            if key in menu_owner:
                raise TrainingDataError(path, None, f"menu key {key!r} belongs to both {menu_owner[key]!r} and {name!r}")
            menu_owner[key] = name
        evidence = _names(spec.get("evidence"), path, f"{where}: 'evidence'")
        if evidence and kind == "out_of_scope":
            raise TrainingDataError(path, None, f"{where}: an out-of-scope intent has no 'evidence' words")
        infos.append(IntentInfo(
            name=name.strip(), kind=kind, menu_keys=menu_keys,
            fuzzy_lookups=_names(spec.get("fuzzy_lookups"), path, f"{where}: 'fuzzy_lookups'"),
            evidence=evidence, **optional,
        ))
    out_of_scope = [i.name for i in infos if i.kind == "out_of_scope"]
    if out_of_scope != [FALLBACK]:
        raise TrainingDataError(path, None, f"exactly one intent must be kind out_of_scope, named {FALLBACK!r} "
                                f"(found: {', '.join(out_of_scope) or 'none'})")
    if len(infos) < 3:
        raise TrainingDataError(path, None, "need at least two in-scope intents besides fallback")
    return Registry(tuple(infos), path)


def load_registry(data_dir: Path | None = None) -> Registry:
    """The registry of a training data folder: its own ``intents.yml``, else the packaged one."""
    path = PACKAGE_REGISTRY
    if data_dir is not None and (Path(data_dir) / REGISTRY_FILE).is_file():
        path = Path(data_dir) / REGISTRY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TrainingDataError(path, None, f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise TrainingDataError(path, None, f"cannot read: {exc.strerror}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise TrainingDataError(path, mark.line + 1 if mark else None, f"invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise TrainingDataError(path, None, f"invalid YAML: {exc}") from exc
    return parse_registry(doc, path)


_packaged: Registry | None = None


def packaged_registry() -> Registry:
    """The packaged registry, read once (for callers without a loaded engine)."""
    global _packaged
    if _packaged is None:
        _packaged = load_registry(None)
    return _packaged
