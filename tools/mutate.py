"""Mutation testing (``make mutate``): how many deliberate mistakes in a module its tests catch.

For each module in ``TARGETS``, mutmut 3 runs in a work folder of its own (``var/mutate/<name>/``):
the repository's sources, tests and ``pyproject.toml`` are copied there, and mutmut copies them again
into ``mutants/`` with the module's mutants (every mutated copy of a function sits beside the
original; which one runs is chosen at run time). It runs the module's test subset once to learn which
tests reach which function, then, for every mutant, only those tests, stopping at the first failure.
Nothing in the working tree is changed, so other work can go on while it runs.

Usage::

    .venv/bin/python tools/mutate.py                 # every module
    .venv/bin/python tools/mutate.py points crypto   # some of them
    .venv/bin/python tools/mutate.py --workers 2 --keep points

``--keep`` reuses the last run's folder, so mutmut tests again only the functions that changed;
``--retest`` also tests the last run's survivors again (mutmut keeps a verdict until the function
changes, so new tests need this). ``--rev HEAD --overlay tests/mutation_guard`` measures the last
commit plus the tests being written, leaving out unfinished changes elsewhere in the working tree.

The summary is printed and written to ``var/mutate/summary.json``; each module's surviving mutants,
as diffs, go to ``var/mutate/<name>/survivors.txt``. The exit status is 1 when a module scores below
``--min-score``. Inspect one mutant with ``cd var/mutate/<name> && ../../../.venv/bin/mutmut show NAME``.

The score is (killed + timed out) / all mutants; a mutant that no test reaches counts as survived.
The PostgreSQL and Redis variants of tests are left out (``-k``): the rules under test are the same
on both databases, and every mutant then runs once instead of twice.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# What the work folder gets (test data, rules and migrations are inside these). intents/ and
# knowledge/ are copied along so the tests import them from the same tree as bot/.
COPIED = ("bot", "intents", "knowledge", "tests", "pyproject.toml")
DESELECT = "not postgres and not redis"


@dataclass(frozen=True)
class Target:
    path: str  # the module mutated
    tests: tuple[str, ...]  # the test subset that covers it (files or folders under tests/)


GUARD = "tests/mutation_guard"

TARGETS: dict[str, Target] = {
    "points": Target(
        "bot/services/points.py",
        ("tests/points", "tests/tickets/test_numbers_and_points.py", f"{GUARD}/test_points_rules.py"),
    ),
    "coupons": Target("bot/services/coupons.py", ("tests/points", f"{GUARD}/test_coupons.py")),
    "courses": Target("bot/services/courses.py", ("tests/points", f"{GUARD}/test_courses.py")),
    "tickets": Target("bot/services/tickets.py", ("tests/tickets", f"{GUARD}/test_tickets.py")),
    "crypto": Target(
        "bot/wechat/crypto.py",
        (
            "tests/wechat/test_endpoint.py",
            "tests/wechat/test_bad_input.py",
            "tests/wechat/test_hardening.py",
            f"{GUARD}/test_crypto.py",
        ),
    ),
    "parsing": Target(
        "bot/wechat/parsing.py",
        (
            "tests/wechat/test_endpoint.py",
            "tests/wechat/test_bad_input.py",
            "tests/wechat/test_hardening.py",
            f"{GUARD}/test_parsing.py",
        ),
    ),
    "delivery": Target(
        "bot/handler/delivery.py",
        (
            "tests/wechat/test_endpoint.py",
            "tests/wechat/test_hardening.py",
            "tests/handler/test_crash_recovery.py",
            "tests/tickets/test_status_pushes.py",
            f"{GUARD}/test_delivery.py",
        ),
    ),
}

KILLED = {"killed", "timeout"}


def _toml_list(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _sync(src: Path, dst: Path) -> None:
    """Make ``dst`` a copy of ``src``, touching only files whose content differs (they get the
    current time, so mutmut's cache, which compares modification times, sees exactly those)."""
    if src.is_file():
        if not dst.is_file() or dst.read_bytes() != src.read_bytes():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        return
    skip = {"__pycache__", ".pytest_cache"}
    wanted = set()
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if skip & set(rel.parts) or path.suffix == ".pyc" or not path.is_file():
            continue
        wanted.add(rel)
        _sync(path, dst / rel)
    if dst.is_dir():
        for path in sorted(dst.rglob("*"), reverse=True):
            rel = path.relative_to(dst)
            if path.is_file() and rel not in wanted:
                path.unlink()


def _export(rev: str, dst: Path) -> None:
    """The sources and tests as committed in ``rev``."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", rev, *COPIED], cwd=REPO, capture_output=True, check=False
        )
        if archive.returncode != 0:
            sys.exit(f"git archive {rev}: {archive.stderr.decode(errors='replace').strip()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        for name in COPIED:
            _sync(Path(tmp) / name, dst / name)


def prepare(
    work: Path, target: Target, keep: bool, rev: str | None, overlay: list[str], deselect: list[str]
) -> None:
    """A copy of the repository's sources and tests with a [tool.mutmut] section for ``target``."""
    if work.exists() and not keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    mutated = work / "mutants" / target.path
    if mutated.is_file() and mutated.stat().st_size == 0:
        mutated.unlink()  # a run stopped while writing it: mutmut would take it as up to date
    if rev:
        _export(rev, work)
        for path in overlay:
            _sync(REPO / path, work / path)
    else:
        for name in COPIED:
            _sync(REPO / name, work / name)
    # Tests find the evaluation data at <repo>/../shared/data; the tests run in <work>/mutants.
    shared = REPO.parent / "shared"
    link = work / "shared"
    if shared.is_dir() and not link.exists():
        link.symlink_to(shared)
    tests = [t for t in target.tests if (work / t).exists()]
    pytest_args = ["-p", "no:cacheprovider", "-k", DESELECT]
    for node in deselect:
        pytest_args += ["--deselect", node]
    config = (
        "\n\n[tool.mutmut]\n"
        'source_paths = ["bot"]\n'
        'also_copy = ["intents", "knowledge"]\n'
        f"only_mutate = {_toml_list([target.path])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        f"pytest_add_cli_args = {_toml_list(pytest_args)}\n"
        "use_git_change_detection = false\n"
    )
    pyproject = work / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + config, encoding="utf-8")


def mutmut_bin() -> str:
    candidate = Path(sys.executable).with_name("mutmut")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("mutmut")
    if not found:
        sys.exit("mutmut is not installed: run `make install` (it is in the dev extras)")
    return found


def previous_survivors(work: Path, target: Target) -> list[str]:
    meta = work / "mutants" / (target.path + ".meta")
    if not meta.exists():
        return []
    from mutmut.stats import status_by_exit_code

    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return sorted(k for k, code in codes.items() if status_by_exit_code[code] not in KILLED)


def run(work: Path, workers: int, log: Path, mutants: list[str]) -> int:
    env = dict(os.environ)
    env.pop("CI", None)  # PostgreSQL/Redis variants are deselected; don't fail on their absence
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.run(
            [mutmut_bin(), "run", "--max-children", str(workers), *mutants],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return proc.returncode


@dataclass
class Score:
    name: str
    path: str
    counts: dict[str, int]
    survivors: list[str]
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.counts.items() if status in KILLED)

    @property
    def score(self) -> float:
        return self.killed / self.total if self.total else 0.0


def read_results(work: Path, name: str, target: Target, seconds: float) -> Score:
    from mutmut.stats import status_by_exit_code

    meta = work / "mutants" / (target.path + ".meta")
    data = json.loads(meta.read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    survivors = []
    for key, code in sorted(data["exit_code_by_key"].items()):
        status = status_by_exit_code[code]
        counts[status] = counts.get(status, 0) + 1
        if status not in KILLED:
            survivors.append(key)
    return Score(name, target.path, counts, survivors, seconds)


# Run in the work folder by one interpreter: the diff of every survivor (``mutmut show`` per mutant
# would start a process each).
_SHOW = """
import sys
from mutmut.__main__ import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
path, keys = sys.argv[1], sys.argv[2:]
import json
codes = json.load(open("mutants/" + path + ".meta"))["exit_code_by_key"]
for key in keys:
    print(f"# {key}: {status_by_exit_code[codes[key]]}")
    print(get_diff_for_mutant(key, path=path))
    print()
"""


def write_survivors(work: Path, score: Score) -> None:
    shown = subprocess.run(
        [sys.executable, "-c", _SHOW, score.path, *score.survivors],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    text = shown.stdout if shown.returncode == 0 else shown.stdout + shown.stderr
    (work / "survivors.txt").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "modules", nargs="*", metavar="MODULE", help=f"some of: {', '.join(TARGETS)} (default: all)"
    )
    parser.add_argument("--workers", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--keep", action="store_true", help="reuse the last run's results where unchanged")
    parser.add_argument(
        "--retest",
        action="store_true",
        help="implies --keep: test the last run's survivors again (after adding tests)",
    )
    parser.add_argument("--min-score", type=float, default=0.85, help="fail below this score (default 0.85)")
    parser.add_argument(
        "--rev", help="take the sources, tests and pyproject.toml from this commit, not the working tree"
    )
    parser.add_argument(
        "--overlay",
        action="append",
        default=[],
        metavar="PATH",
        help="with --rev: take PATH from the working tree all the same (repeatable)",
    )
    parser.add_argument(
        "--deselect",
        action="append",
        default=[],
        metavar="NODEID",
        help="leave out a test (one that fails without the mutants, say) (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "var" / "mutate", help="work folders")
    args = parser.parse_args(argv)
    names = args.modules or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    scores: list[Score] = []
    failed_runs: list[str] = []
    for name in names:
        target = TARGETS[name]
        work = args.out / name
        print(f"== {name}: {target.path} against {' '.join(target.tests)}", flush=True)
        started = time.monotonic()
        retest = previous_survivors(work, target) if args.retest else []
        prepare(work, target, args.keep or args.retest, args.rev, args.overlay, args.deselect)
        code = run(work, args.workers, work / "mutmut.log", retest)
        if code == 0 and retest:
            # Mutants not yet tested (of functions changed since the last run, or new ones).
            code = run(work, args.workers, work / "mutmut-rest.log", [])
        seconds = time.monotonic() - started
        if code != 0:
            print(f"   mutmut failed (exit {code}); see {work / 'mutmut.log'}", flush=True)
            failed_runs.append(name)
            continue
        score = read_results(work, name, target, seconds)
        write_survivors(work, score)
        scores.append(score)
        print(
            f"   {score.killed}/{score.total} killed, score {score.score:.2f} in {seconds:.0f} s; "
            f"survivors: {work / 'survivors.txt'}",
            flush=True,
        )

    print()
    print(f"{'module':<26} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} {'score':>6}")
    for s in scores:
        print(
            f"{s.path:<26} {s.total:>7} {s.killed:>6} {s.counts.get('survived', 0):>8} "
            f"{s.counts.get('no tests', 0):>8} {s.score:>6.2f}"
        )
    summary = args.out / "summary.json"
    previous = json.loads(summary.read_text(encoding="utf-8")) if summary.exists() else {}
    for s in scores:
        previous[s.name] = {
            "path": s.path,
            "total": s.total,
            "killed": s.killed,
            "counts": s.counts,
            "score": round(s.score, 3),
            "survivors": s.survivors,
            "seconds": round(s.seconds),
        }
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps(previous, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    low = [s.name for s in scores if s.score < args.min_score]
    if failed_runs:
        print(f"mutmut did not finish for: {', '.join(failed_runs)}")
    if low:
        print(f"below {args.min_score}: {', '.join(low)}")
    return 1 if failed_runs or low else 0


if __name__ == "__main__":
    sys.exit(main())
