"""The built-in evaluation sets of the intent engine (``python -m bot intents eval --sets …``).

* ``written``: held-out messages written for evaluation before the training data was extended
  (``intents/data/eval/written/``), all seven intents;
* ``shanxi``: 300 messages in the styles of a Shanxi city's residents (elderly, voice-recognised,
  dialect words such as 甚/咋/打问, typos, long with the request at the end, fragments), written for
  evaluation without reading the training data (``intents/data/eval/shanxi/``), all seven intents;
* ``shanxi2``: 150 more such messages, written after the first measurement on ``shanxi`` and before
  any training data was changed for it (``intents/data/eval/shanxi2/``): a hold-out whose errors are
  not printed (``HIDDEN_MISSES``), measured before and after the round;
* ``split``: the older held-out split of generated examples (``intents/data/test/``);
* ``teddy``: real citizen message titles, hand-labelled complaint or query
  (``intents/data/eval/teddy_titles.csv`` holds row numbers and labels; the text is read from
  ``../shared/data/teddy2020c/titles_train.csv``);
* ``teddy2``: a second development set of real titles, labelled the same way before its errors were
  read (``intents/data/eval/teddy_titles_dev2.csv``);
* ``teddy3``: a third development set of real titles (``intents/data/eval/teddy_titles_dev3.csv``),
  labelled the same way in the fourth session and measured once before any change of that session;
* ``teddy4``: a fourth development set of real titles (``intents/data/eval/teddy_titles_dev4.csv``),
  labelled the same way in the fifth session and measured once before any change of that session;
* ``teddy5``: a fifth set of real titles (``intents/data/eval/teddy_titles_dev5.csv``), labelled the
  same way in the sixth session and measured once before any change of that session; its errors are not
  printed (``HIDDEN_MISSES``) so that its figure at the end of the session measures generalisation;
* ``holdout``: more real titles labelled the same way after the training data was developed against
  ``teddy`` (``intents/data/eval/teddy_titles_holdout.csv``), whose errors were never read while tuning
  (the CLI does not print them: ``HIDDEN_MISSES``);
* ``smp``: real voice-assistant queries, hand-labelled fallback or smalltalk
  (``intents/data/eval/smp2017.csv``; text from ``../shared/data/smp2017/train.jsonl``); also every
  out-of-scope query of that file (its own domain labels), for the core-intent leak;
* ``smp2``: 254 more rows of the same file (``intents/data/eval/smp2017_dev2.csv``), the non-chat rows
  ``fallback`` by their domain and the ``chat`` rows labelled by hand as for ``smp``.

The real text is not part of the repository (it states no licence); when ``../shared/data`` is
absent those sets are skipped with a message.

For complaint routing, ``routing_written`` (``python -m bot routing eval --written``): residents'
complaints written by hand before the default routing examples were extended, each labelled with the
category a community service centre would dispatch it to (``intents/data/eval/routing_written.yml``,
decision rules in its header).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intents.dataset import PACKAGE_DATA_DIR, load_dir
from intents.engine import IntentEngine
from intents.errors import InputDataError
from intents.evaluate import Report, evaluate
from intents.routing import Router, load_categories

EVAL_DIR = PACKAGE_DATA_DIR / "eval"
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEDDY_TITLES = Path("teddy2020c") / "titles_train.csv"
SMP = Path("smp2017") / "train.jsonl"
SETS = ("written", "shanxi", "shanxi2", "split", "teddy", "teddy2", "teddy3", "teddy4", "teddy5", "holdout", "smp", "smp2")
HIDDEN_MISSES = frozenset({"holdout", "shanxi2", "teddy5"})  # sets whose misclassified messages are not printed (never tuned on)
ROUTING_WRITTEN = EVAL_DIR / "routing_written.yml"
# The packaged dispatch table's min_confidence (bot/rules/dispatch.yml; intents does not read the bot's
# rules): below it a ticket waits in the triage queue instead of going to a department.
ROUTING_MIN_CONFIDENCE = 0.3


class SharedDataMissing(InputDataError):
    """The real evaluation text is not on this machine."""


@dataclass
class SetResult:
    name: str
    description: str
    n: int
    figures: dict[str, float]  # headline figures, printed in this order
    report: Report
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        figures = "  ".join(f"{k} {v:.3f}" for k, v in self.figures.items())
        return f"{self.name:<8} n={self.n:<5} {figures}"


# --------------------------------------------------------------------------------------------- reading
def written_rows() -> list[tuple[str, str]]:
    data = load_dir(EVAL_DIR / "written", complete=False)
    return [(e.text, e.intent) for e in data.examples]


def shanxi_rows(name: str = "shanxi") -> list[tuple[str, str]]:
    data = load_dir(EVAL_DIR / name, complete=False)
    return [(e.text, e.intent) for e in data.examples]


def split_rows() -> list[tuple[str, str]]:
    data = load_dir(PACKAGE_DATA_DIR / "test", complete=False)
    return [(e.text, e.intent) for e in data.examples]


def _labels(name: str) -> list[tuple[int, str]]:
    path = EVAL_DIR / name
    with path.open(encoding="utf-8", newline="") as fh:
        return [(int(r["row"]), r["label"]) for r in csv.DictReader(fh)]


def _shared_file(shared: Path, relative: Path) -> Path:
    path = shared / relative
    if not path.is_file():
        raise SharedDataMissing(f"{path}: not found (the real evaluation text is read from ../shared/data)")
    return path


def teddy_rows(shared: Path = DEFAULT_SHARED_DATA, labels: str = "teddy_titles.csv") -> list[tuple[str, str]]:
    path = _shared_file(shared, TEDDY_TITLES)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        titles = [r["title"] for r in csv.DictReader(fh)]
    return [(titles[row], label) for row, label in _labels(labels)]


def smp_records(shared: Path = DEFAULT_SHARED_DATA) -> list[dict[str, str]]:
    path = _shared_file(shared, SMP)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def smp_rows(shared: Path = DEFAULT_SHARED_DATA, labels: str = "smp2017.csv") -> list[tuple[str, str]]:
    records = smp_records(shared)
    return [(records[row]["text"], label) for row, label in _labels(labels)]


# ------------------------------------------------------------------------------------------ measuring
def _report(engine: IntentEngine, rows: list[tuple[str, str]], labels: list[str] | None = None) -> Report:
    texts = [t for t, _ in rows]
    results = engine.classify_many(texts)
    report = evaluate(texts, [label for _, label in rows], [c.intent for c in results],
                      [c.confidence for c in results], labels=labels)
    report.extra["decisions"] = dict(Counter(c.decision for c in results))
    return report


def _seven_way(name: str, description: str, engine: IntentEngine, rows: list[tuple[str, str]]) -> SetResult:
    report = _report(engine, rows, engine.intents)
    per = {label: m["f1"] for label, m in report.per_label.items() if m["support"]}
    figures = {"macro-F1": report.macro["f1"], "min F1": min(per.values()), "accuracy": report.accuracy}
    return SetResult(name, description, report.n, figures, report, {"f1": per})


def measure_written(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _seven_way("written", "held-out messages written before tuning, 7 intents", engine, written_rows())


def measure_shanxi(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _seven_way("shanxi", "residents' messages written without reading the training data, 7 intents", engine,
                      shanxi_rows())


def measure_shanxi2(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _seven_way("shanxi2", "more such messages, a hold-out (misses not printed), 7 intents", engine,
                      shanxi_rows("shanxi2"))


def measure_split(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _seven_way("split", "held-out split of the generated examples (intents/data/test)", engine, split_rows())


def measure_teddy(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _complaint_or_query("teddy", "real message titles, complaint vs query (hand labels; development set)",
                               engine, teddy_rows(shared))


def measure_teddy2(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _complaint_or_query("teddy2", "real message titles, complaint vs query (hand labels; second development set)",
                               engine, teddy_rows(shared, "teddy_titles_dev2.csv"))


def measure_teddy3(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _complaint_or_query("teddy3", "real message titles, complaint vs query (hand labels; third development set)",
                               engine, teddy_rows(shared, "teddy_titles_dev3.csv"))


def measure_teddy4(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _complaint_or_query("teddy4", "real message titles, complaint vs query (hand labels; fourth development set)",
                               engine, teddy_rows(shared, "teddy_titles_dev4.csv"))


def measure_teddy5(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _complaint_or_query("teddy5", "real message titles, complaint vs query (hand labels; fifth set, misses not printed)",
                               engine, teddy_rows(shared, "teddy_titles_dev5.csv"))


def measure_holdout(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    return _complaint_or_query("holdout", "more real titles, complaint vs query, labelled after development",
                               engine, teddy_rows(shared, "teddy_titles_holdout.csv"))


def _complaint_or_query(name: str, description: str, engine: IntentEngine, rows: list[tuple[str, str]]) -> SetResult:
    report = _report(engine, rows, ["complaint", "query"])
    predicted = Counter(e["predicted"] for e in report.errors)
    n = report.n
    figures = {
        "accuracy": report.accuracy,
        "macro-F1": (report.per_label["complaint"]["f1"] + report.per_label["query"]["f1"]) / 2,
        "fallback": predicted.get("fallback", 0) / n,
        "other intent": sum(v for k, v in predicted.items() if k not in ("complaint", "query", "fallback")) / n,
    }
    return SetResult(name, description, n, figures, report)


def measure_smp(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    rows = smp_rows(shared)
    return _out_of_scope("smp", "real voice-assistant queries, out of scope or chat (hand labels)", engine, shared, rows)


def measure_smp2(engine: IntentEngine, shared: Path = DEFAULT_SHARED_DATA) -> SetResult:
    rows = smp_rows(shared, "smp2017_dev2.csv")
    return _out_of_scope("smp2", "more voice-assistant queries, out of scope or chat (second development set)",
                         engine, shared, rows)


def _out_of_scope(name: str, description: str, engine: IntentEngine, shared: Path,
                  rows: list[tuple[str, str]]) -> SetResult:
    report = _report(engine, rows, ["fallback", "smalltalk"])
    core = set(engine.registry.core)
    out_rows = [t for t, label in rows if label == "fallback"]
    leaked = sum(c.intent in core for c in engine.classify_many(out_rows)) / max(1, len(out_rows))
    every = [r["text"] for r in smp_records(shared) if r["label"] != "chat"]
    results = engine.classify_many(every)
    leaked_all = sum(c.intent in core for c in results) / len(every)
    figures = {
        "accuracy": report.accuracy,
        "out of scope → core": leaked,
        "all non-chat → core": leaked_all,
        "all non-chat → fallback": sum(c.intent == "fallback" for c in results) / len(every),
        "smalltalk recall": report.per_label["smalltalk"]["recall"],
    }
    return SetResult(name, description, report.n, figures, report, {"all_non_chat": len(every)})


MEASURES: dict[str, Callable[[IntentEngine, Path], SetResult]] = {
    "written": measure_written,
    "shanxi": measure_shanxi,
    "shanxi2": measure_shanxi2,
    "split": measure_split,
    "teddy": measure_teddy,
    "teddy2": measure_teddy2,
    "teddy3": measure_teddy3,
    "teddy4": measure_teddy4,
    "teddy5": measure_teddy5,
    "holdout": measure_holdout,
    "smp": measure_smp,
    "smp2": measure_smp2,
}


def run(engine: IntentEngine, names: list[str], shared: Path = DEFAULT_SHARED_DATA,
        skipped: list[str] | None = None) -> list[SetResult]:
    """Measure ``engine`` on the named sets; sets whose real text is absent are skipped (their
    messages appended to ``skipped`` when given)."""
    results = []
    for name in names:
        if name not in MEASURES:
            raise InputDataError(f"unknown evaluation set {name!r} (known: {', '.join(SETS)})")
        try:
            results.append(MEASURES[name](engine, shared))
        except SharedDataMissing as exc:
            if skipped is not None:
                skipped.append(f"{name}: skipped, {exc}")
    return results


# -------------------------------------------------------------------------------------------- routing
def measure_routing_written(router: Router, min_confidence: float = ROUTING_MIN_CONFIDENCE,
                            path: Path = ROUTING_WRITTEN) -> SetResult:
    """Route the written complaints: macro-F1, accuracy, the share left for triage (confidence below
    ``min_confidence``) and the share a department gets right without triage."""
    texts, labels = load_categories(path)
    routes = router.route_many(texts)
    report = evaluate(texts, labels, [r.category for r in routes], [r.confidence for r in routes],
                      labels=router.categories)
    n = report.n
    below = sum(r.confidence < min_confidence for r in routes)
    dispatched_right = sum(r.confidence >= min_confidence and r.category == label
                           for r, label in zip(routes, labels, strict=True))
    figures = {"macro-F1": report.macro["f1"], "accuracy": report.accuracy,
               f"below {min_confidence:g}": below / n, "dispatched right": dispatched_right / n}
    return SetResult("routing-written", "residents' complaints written by hand, 11 dispatch categories", n,
                     figures, report, {"min_confidence": min_confidence})
