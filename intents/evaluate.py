"""Measuring classifiers: per-label precision/recall/F1, confusion matrix, errors, confidence histogram.

``evaluate`` works for any predictions; ``cross_validate`` runs stratified k-fold over the training data;
``check_training_data`` finds duplicate or conflicting examples and intents with too few examples.
Reports print as text and save as JSON plus PNG plots (matplotlib, Agg backend).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from intents.dataset import TrainingData
from intents.errors import InputDataError
from intents.tokens import normalize


@dataclass
class Report:
    labels: list[str]
    per_label: dict[str, dict[str, float]]
    macro: dict[str, float]
    accuracy: float
    confusion: list[list[int]]
    errors: list[dict[str, Any]]
    confidence_bins: list[float]
    confidence_correct: list[int]
    confidence_wrong: list[int]
    n: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "accuracy": self.accuracy, "macro": self.macro, "per_label": self.per_label,
            "labels": self.labels, "confusion_matrix": self.confusion,
            "confidence_histogram": {"bins": self.confidence_bins, "correct": self.confidence_correct,
                                     "wrong": self.confidence_wrong},
            "misclassified": self.errors, **self.extra,
        }

    def text(self, max_errors: int = 30) -> str:
        width = max(12, *(len(label) for label in self.labels))
        out = [f"{'label':<{width}} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>7}"]
        for label in self.labels:
            m = self.per_label[label]
            out.append(f"{label:<{width}} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:7.3f} {int(m['support']):7d}")
        out.append(f"{'macro avg':<{width}} {self.macro['precision']:9.3f} {self.macro['recall']:7.3f} "
                   f"{self.macro['f1']:7.3f} {self.n:7d}")
        out.append(f"accuracy {self.accuracy:.4f}   macro-F1 {self.macro['f1']:.4f}")
        for key, value in self.extra.items():
            if isinstance(value, int | float | str):
                out.append(f"{key}: {value}")
        out.append("")
        out.append("confusion matrix (rows: true, columns: predicted)")
        short = [label[:6] for label in self.labels]
        out.append(" " * (width + 1) + " ".join(f"{s:>6}" for s in short))
        for label, row in zip(self.labels, self.confusion, strict=True):
            out.append(f"{label:<{width}} " + " ".join(f"{v:6d}" for v in row))
        out.append("")
        out.append("confidence histogram (correct / wrong)")
        for lo, hi, c, w in zip(self.confidence_bins, self.confidence_bins[1:], self.confidence_correct,
                                self.confidence_wrong, strict=False):
            out.append(f"  {lo:.1f}-{hi:.1f}  {c:6d} / {w:<6d}")
        if self.errors:
            out.append("")
            out.append(f"misclassified ({len(self.errors)}, first {min(max_errors, len(self.errors))})")
            for e in self.errors[:max_errors]:
                out.append(f"  [{e['true']} → {e['predicted']} {e['confidence']:.2f}] {e['text']}")
        return "\n".join(out)

    def save(self, out_dir: Path, prefix: str = "report") -> list[Path]:
        """Write ``<prefix>.json`` and PNG plots (confusion matrix, confidence histogram)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [out_dir / f"{prefix}.json"]
        written[0].write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 6))
        matrix = np.asarray(self.confusion)
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(self.labels)), self.labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(self.labels)), self.labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
        ax.set_title(f"confusion matrix (macro-F1 {self.macro['f1']:.3f})")
        fig.tight_layout()
        path = out_dir / f"{prefix}_confusion.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

        fig, ax = plt.subplots(figsize=(7, 4))
        centers = [(a + b) / 2 for a, b in zip(self.confidence_bins, self.confidence_bins[1:], strict=False)]
        ax.bar(centers, self.confidence_correct, width=0.09, label="correct", color="#4c72b0")
        ax.bar(centers, self.confidence_wrong, width=0.09, bottom=self.confidence_correct, label="wrong",
               color="#dd8452")
        ax.set_xlabel("confidence")
        ax.set_ylabel("messages")
        ax.set_yscale("symlog")
        ax.legend()
        ax.set_title("confidence histogram")
        fig.tight_layout()
        path = out_dir / f"{prefix}_confidence.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
        return written


def evaluate(texts: Sequence[str], truth: Sequence[str], predicted: Sequence[str],
             confidence: Sequence[float], labels: Sequence[str] | None = None) -> Report:
    labels = sorted(set(truth) | set(predicted)) if labels is None else sorted(set(labels) | set(truth) | set(predicted))
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    per_label = {label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                 for i, label in enumerate(labels)}
    present = [i for i, label in enumerate(labels) if s[i] > 0]
    macro = {"precision": float(np.mean(p[present])), "recall": float(np.mean(r[present])),
             "f1": float(np.mean(f[present]))}
    cm = confusion_matrix(truth, predicted, labels=labels).tolist()
    conf = np.asarray(confidence, dtype=float)
    correct = np.asarray([a == b for a, b in zip(truth, predicted, strict=True)])
    bins = np.linspace(0.0, 1.0, 11)
    idx = np.clip(np.digitize(conf, bins[1:-1]), 0, 9) if len(conf) else np.zeros(0, dtype=int)
    hist_c = np.bincount(idx[correct], minlength=10).tolist() if len(conf) else [0] * 10
    hist_w = np.bincount(idx[~correct], minlength=10).tolist() if len(conf) else [0] * 10
    wrong = [(float(c), t, a, b) for t, a, b, c in zip(texts, truth, predicted, conf, strict=True) if a != b]
    wrong.sort(key=lambda w: -w[0])
    errors: list[dict[str, Any]] = [{"text": t, "true": a, "predicted": b, "confidence": c} for c, t, a, b in wrong]
    ece = 0.0
    for k in range(10):
        m = idx == k
        if m.any():
            ece += float(m.mean()) * abs(float(conf[m].mean()) - float(correct[m].mean()))
    return Report(list(labels), per_label, macro, float(correct.mean()) if len(correct) else 0.0, cm, errors,
                  [round(float(b), 2) for b in bins], hist_c, hist_w, len(truth),
                  {"expected_calibration_error": round(ece, 4)})


def cross_validate(data: TrainingData, folds: int = 5, seed: int = 13) -> Report:
    """Stratified k-fold over the training examples with the engine's model."""
    from intents.engine import IntentEngine

    texts, labels = data.texts(), data.labels()
    y = np.asarray(labels)
    n_splits = max(2, min(folds, int(min(Counter(labels).values()))))
    predicted: list[str] = [""] * len(texts)
    confidence: list[float] = [0.0] * len(texts)
    for train_idx, test_idx in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(texts, y):
        part = TrainingData([data.examples[i] for i in train_idx], data.synonyms, data.lookups, data.files, data.registry)
        engine = IntentEngine.from_data(part)
        for i, c in zip(test_idx, engine.classify_many([texts[i] for i in test_idx]), strict=True):
            predicted[i], confidence[i] = c.intent, c.confidence
    report = evaluate(texts, labels, predicted, confidence)
    report.extra["mode"] = f"{n_splits}-fold cross-validation of the training data"
    return report


# ------------------------------------------------------------------------------------------ input files
def read_labelled(path: Path, text_key: str = "text", label_key: str = "intent") -> list[tuple[str, str]]:
    """Labelled examples from CSV (header row), XLSX or JSONL; errors name the file and line."""
    from intents.tables import read_table

    table = read_table(path)
    table.require(text_key, label_key)
    rows = []
    for line, row in table.rows:
        text, label = row.get(text_key, "").strip(), row.get(label_key, "").strip()
        if not text and not label:
            continue
        if not text or not label:
            raise InputDataError(f"{path}:{line}: empty {text_key if not text else label_key!r}")
        rows.append((text, label))
    if not rows:
        raise InputDataError(f"{path}: no labelled rows")
    return rows


# ---------------------------------------------------------------------------------------------- check
@dataclass
class CheckResult:
    duplicates: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    too_few: dict[str, int]
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.conflicts and not self.too_few

    def text(self) -> str:
        out = ["examples per intent: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))]
        for c in self.conflicts:
            places = "; ".join(f"{p['intent']} at {p['file']}:{p['line']}" for p in c["places"])
            out.append(f"CONFLICT {c['text']!r}: {places}")
        for d in self.duplicates:
            places = ", ".join(f"{p['file']}:{p['line']}" for p in d["places"])
            out.append(f"duplicate {d['text']!r} ({d['intent']}): {places}")
        for intent, n in self.too_few.items():
            out.append(f"TOO FEW: intent {intent} has {n} examples")
        out.append("ok" if self.ok else "problems found")
        return "\n".join(out)


def check_training_data(data: TrainingData, min_examples: int = 20) -> CheckResult:
    by_text: dict[str, list[tuple[str, Path, int]]] = defaultdict(list)
    for e in data.examples:
        text = normalize(e.text)
        # Trailing punctuation aside; a message of punctuation only (…, ？？？) is compared as written.
        key = text.strip("，。？！,.?! ") or text
        by_text[key].append((e.intent, e.path, e.line))
    duplicates, conflicts = [], []
    for text, places in by_text.items():
        if len(places) < 2:
            continue
        entry = {"text": text, "places": [{"intent": i, "file": str(p), "line": n} for i, p, n in places]}
        if len({i for i, _, _ in places}) > 1:
            conflicts.append(entry)
        else:
            duplicates.append({**entry, "intent": places[0][0]})
    counts = Counter({name: 0 for name in data.registry.names})  # a registered intent without examples
    counts.update(e.intent for e in data.examples)
    too_few = {k: v for k, v in counts.items() if v < min_examples}
    return CheckResult(duplicates, conflicts, too_few, dict(counts))
