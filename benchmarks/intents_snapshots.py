"""Real-title accuracy of the intent engine measured on sets its training data never saw.

The development sets of real titles (``teddy`` … ``teddy4``) were read while examples were written, so
the current engine scores 0.93-0.97 on them and about 0.91-0.92 on real titles nobody read. This script
measures the current code trained on the training data as it stood *before* a development set was
added (the parent of the commit that added the set's labels, taken from git), on that set and the later
ones: titles that data never saw. Those figures are what to compare when a change to the method (the
model, the features, the decision rule) is meant to generalise; they came out at 0.907-0.923 on 4b9c9ce
(teddy5 0.906 and holdout 0.922 were measured on it once, at the end of the sixth session).

The held-out sets (``intents.evalsets.HIDDEN_MISSES``: holdout, teddy5, shanxi2) are never measured here.

Run: ``.venv/bin/python benchmarks/intents_snapshots.py`` (needs git history and ``../shared/data``;
about a minute). ``--option name=value`` changes an :class:`intents.engine.EngineConfig` number
(``--option scope_threshold=0.4``); ``measure(config)`` does the same from Python for other changes.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from intents import evalsets  # noqa: E402
from intents.engine import EngineConfig, IntentEngine  # noqa: E402

DATA = "intents/data"
# the development sets of real titles, in the order they were added, and their label files
TITLE_SETS = (("teddy2", "teddy_titles_dev2.csv"), ("teddy3", "teddy_titles_dev3.csv"),
              ("teddy4", "teddy_titles_dev4.csv"))
assert not {name for name, _ in TITLE_SETS} & evalsets.HIDDEN_MISSES


@dataclass
class Snapshot:
    before: str  # the set whose labels the next commit added
    commit: str  # the parent of that commit: the training data before the set existed
    data_dir: Path
    unseen: list[tuple[str, str]]  # (set name, label file) that data never saw


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True).stdout


def _training_digest(data_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(data_dir.glob("*.yml")) + sorted(data_dir.glob("*.txt")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def snapshots(workdir: Path) -> list[Snapshot]:
    """One snapshot per development set, skipping a snapshot whose training files equal the previous
    one's (no example changed between the two sets)."""
    out: list[Snapshot] = []
    seen: set[str] = set()
    for i, (name, labels) in enumerate(TITLE_SETS):
        added = _git("log", "--diff-filter=A", "--format=%H", "--", f"{DATA}/eval/{labels}").split()
        if not added:
            continue
        commit = _git("rev-parse", added[-1].decode() + "^").decode().strip()
        target = workdir / commit[:12]
        with tarfile.open(fileobj=BytesIO(_git("archive", "--format=tar", commit, DATA))) as tar:
            tar.extractall(target, filter="data")
        data_dir = target / DATA
        digest = _training_digest(data_dir)
        if digest in seen:
            continue
        seen.add(digest)
        out.append(Snapshot(name, commit, data_dir, list(TITLE_SETS[i:])))
    return out


def _accuracy(engine: IntentEngine, labels: str) -> tuple[int, int]:
    rows = evalsets.teddy_rows(labels=labels)
    results = engine.classify_many([t for t, _ in rows])
    return sum(c.intent == label for (_, label), c in zip(rows, results, strict=True)), len(rows)


def measure(config: EngineConfig | None = None, workdir: Path | None = None) -> list[tuple[str, str, int, int]]:
    """(snapshot, set, right, n) for every snapshot and every set its data never saw."""
    config = config or EngineConfig()
    with tempfile.TemporaryDirectory(prefix="intents-snapshots-") as tmp:
        rows = []
        for snap in snapshots(workdir or Path(tmp)):
            engine = IntentEngine.load(snap.data_dir, config)
            for name, labels in snap.unseen:
                right, n = _accuracy(engine, labels)
                rows.append((f"before {snap.before} ({snap.commit[:7]})", name, right, n))
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="an EngineConfig number to change (repeatable)")
    args = parser.parse_args()
    config = EngineConfig()
    for option in args.option:
        key, _, value = option.partition("=")
        config = replace(config, **{key: type(getattr(config, key))(value)})
    try:
        rows = measure(config)
    except evalsets.SharedDataMissing as exc:
        print(f"skipped: {exc}")
        return 0
    total_right = total = 0
    for snap, name, right, n in rows:
        print(f"{snap:<28} {name:<8} accuracy {right / n:.3f}  ({right}/{n})")
        total_right += right
        total += n
    if total:
        print(f"{'all':<28} {'':<8} accuracy {total_right / total:.4f}  ({total_right}/{total})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
