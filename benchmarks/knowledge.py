"""Knowledge-base search latency with 5,000 entries (the shipped ones plus synthesised ones).

Run: .venv/bin/python benchmarks/knowledge.py [--entries 5000] [--queries 2000]
Prints median and p99 of ``KnowledgeBase.search`` and ``answer``, plus the figures on the shipped eval
sets: questions.yml and dev.yml (the project's own paraphrases), residents_dev.yml and residents_dev2.yml
(residents' styles, tuned on) and residents_heldout.yml (residents' styles, written before tuning and
never tuned on).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the package.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO))

from knowledge.base import KnowledgeBase  # noqa: E402
from knowledge.entries import Entry  # noqa: E402
from knowledge.evaluation import DEFAULT_EVAL_FILE, evaluate, load_questions  # noqa: E402

DEV_FILE = DEFAULT_EVAL_FILE.parent / "dev.yml"
RESIDENTS_FILES = [
    DEFAULT_EVAL_FILE.parent / "residents_dev.yml",
    DEFAULT_EVAL_FILE.parent / "residents_dev2.yml",
    DEFAULT_EVAL_FILE.parent / "residents_heldout.yml",
]


def synthesise(base: list[Entry], n: int, seed: int = 7) -> list[Entry]:
    """``n`` entries: the real ones, then recombinations of their phrasings' halves (same vocabulary)."""
    rng = random.Random(seed)
    phrasings = [p for e in base for p in e.phrasings]
    answers = [e.answer for e in base]
    out = list(base)
    i = 0
    while len(out) < n:
        parts = []
        for _ in range(6):
            a, b = rng.choice(phrasings), rng.choice(phrasings)
            parts.append(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])
        out.append(
            replace(
                base[i % len(base)],
                id=f"synthetic-{i:05d}",
                question=parts[0],
                alternatives=tuple(parts[1:]),
                answer=rng.choice(answers),
            )
        )
        i += 1
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()

    shipped = KnowledgeBase.load()
    for path in (DEFAULT_EVAL_FILE, DEV_FILE, *RESIDENTS_FILES):
        if not path.exists():
            continue
        report = evaluate(shipped, load_questions(path))
        print(f"{path.name} ({len(shipped)} entries): {report.answerable} answerable + {report.unanswerable} unanswerable")
        print(
            f"  right entry given {report.right_entry:.3f}  don't know on answerable {report.false_unknown:.3f}  "
            f"top-1 {report.top1:.3f}  recall@3 {report.recall_at_3:.3f}  MRR {report.mrr:.3f}  "
            f"declined unanswerable {report.unknown_recall:.3f}  confident wrong {report.confident_wrong} "
            f"({report.confident_wrong_rate:.1%})"
        )
        if report.by_style:
            print("  " + report.style_table().replace("\n", "\n  "))
    questions = load_questions(DEFAULT_EVAL_FILE) + load_questions(DEV_FILE)

    t0 = time.perf_counter()
    kb = KnowledgeBase.from_entries(synthesise(list(shipped.entries), args.entries))
    build = time.perf_counter() - t0
    texts = [q.text for q in questions]
    rng = random.Random(1)
    sample = [rng.choice(texts) for _ in range(args.queries)]
    for text in sample[:100]:  # warm-up
        kb.search(text)
    search_t: list[float] = []
    for text in sample:
        t = time.perf_counter()
        kb.search(text, k=3)
        search_t.append((time.perf_counter() - t) * 1000)
    answer_t: list[float] = []
    for text in sample:
        t = time.perf_counter()
        kb.answer(text)
        answer_t.append((time.perf_counter() - t) * 1000)
    print(f"index of {len(kb)} entries built in {build:.1f} s")
    print(
        f"search (k=3), {len(sample)} queries: median {statistics.median(search_t):.3f} ms, "
        f"p99 {percentile(search_t, 0.99):.3f} ms"
    )
    print(
        f"answer, {len(sample)} queries: median {statistics.median(answer_t):.3f} ms, "
        f"p99 {percentile(answer_t, 0.99):.3f} ms"
    )


if __name__ == "__main__":
    main()
