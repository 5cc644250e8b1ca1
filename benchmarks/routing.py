"""Complaint routing benchmark: CPU time to route one complaint (``Router.route``, as the complaint flow
calls it), median over single calls.

Run: ``.venv/bin/python benchmarks/routing.py``. Always: the default model (trained on
``intents/data/routing/categories.yml``) over the written complaints (``intents/data/eval/routing_written.yml``).
When ``../shared/data/teddy2020c`` is there: a model trained on the titles file's seed-42 training split
over its test titles, and one trained on the first ``MESSAGES_TRAIN`` messages of the messages file's
split over its test messages (whole title + text, a few hundred characters each). Thread CPU time, so
other processes on a loaded machine count less than in wall time.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intents.evalsets import ROUTING_WRITTEN
from intents.routing import Router, load_categories, read_table, split

TEDDY = Path(__file__).resolve().parents[2] / "shared" / "data" / "teddy2020c"
MESSAGES_TRAIN = 1500  # enough for the vocabulary's size to matter, training in about a minute
SAMPLE = 300
ROUNDS = 3


def per_call_us(router: Router, texts: Sequence[str]) -> tuple[float, float]:
    """Median and 90th percentile thread CPU µs of one ``route`` call over ``ROUNDS`` passes."""
    for text in texts[:20]:  # warm-up
        router.route(text)
    times: list[float] = []
    for _ in range(ROUNDS):
        for text in texts:
            start = time.thread_time_ns()
            router.route(text)
            times.append((time.thread_time_ns() - start) / 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def report(name: str, router: Router, texts: Sequence[str]) -> None:
    median, p90 = per_call_us(router, texts)
    chars = statistics.median(len(t) for t in texts)
    print(f"{name:<40} {len(texts):>4} texts (median {chars:.0f} chars)  "
          f"median {median:8.1f} µs  p90 {p90:8.1f} µs CPU per call")


def main() -> int:
    texts, _ = load_categories(ROUTING_WRITTEN)
    report("default model, written complaints", Router.default(), texts[:SAMPLE])
    if not TEDDY.is_dir():
        print(f"({TEDDY} absent: teddy2020c models skipped)")
        return 0
    for name, columns, limit in (("titles", ["title"], None), ("messages", ["title", "text"], MESSAGES_TRAIN)):
        rows, labels = read_table(TEDDY / f"{name}_train.csv", columns, "label")
        tr_x, te_x, tr_y, _ = split(rows, labels, seed=42)
        router = Router.train(tr_x[:limit], tr_y[:limit])
        report(f"teddy2020c {name} ({len(tr_x[:limit])} trained)", router, te_x[:SAMPLE])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
