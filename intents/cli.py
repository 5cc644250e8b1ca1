"""Command line for the intents package, mounted by ``bot/cli.py`` under ``python -m bot``.

Commands: ``intents predict|eval|check|train`` and ``routing train|predict|eval``. Each handler returns
an exit code: 0 success, 1 a check that found problems, 2 bad input (printed to stderr, no traceback).

The intent training data is read from ``<data_dir>/intents/`` when that folder holds ``*.yml`` files
(an operator's copy), otherwise from the packaged ``intents/data/``; ``--training-dir`` overrides both.
A community's own labelled messages (``intents train --extra FILE``) are kept in
``<data_dir>/intents/labelled.jsonl`` and used by every command and by the running bot.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from intents.errors import InputDataError, IntentsError

if TYPE_CHECKING:
    from intents.engine import IntentEngine

# Building the parser must stay cheap (every ``python -m bot`` start builds it): numpy, scikit-learn,
# jieba, PyYAML and matplotlib are imported inside the command functions only.
PACKAGE_DATA_DIR = Path(__file__).parent / "data"  # same as intents.dataset.PACKAGE_DATA_DIR
LABELLED_FILE = Path("intents") / "labelled.jsonl"  # same as intents.dataset.LABELLED_FILE
SET_NAMES = ("written", "shanxi", "shanxi2", "split", "teddy", "teddy2", "teddy3", "teddy4", "teddy5", "holdout", "smp", "smp2")  # same as intents.evalsets.SETS
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # as in intents.evalsets

Handler = Callable[[argparse.Namespace], int]


def training_dir(data_dir: Path, override: Path | None = None) -> Path:
    if override is not None:
        return override
    operator = data_dir / "intents"
    if operator.is_dir() and any(operator.glob("*.yml")):
        return operator
    return PACKAGE_DATA_DIR


def _guarded(func: Handler) -> Handler:
    """Turn expected errors into a readable message on stderr and exit code 2."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except IntentsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130

    return run


def _lines(path: str | None) -> Iterator[str]:
    if path is None or path == "-":
        stream: TextIO = sys.stdin
        for line in stream:
            yield line.rstrip("\r\n")
        return
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"{p}: file not found")
    try:
        with p.open(encoding="utf-8-sig") as fh:
            for line in fh:
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{p}: not UTF-8 text") from exc


def _engine(args: argparse.Namespace) -> IntentEngine:
    from intents.engine import IntentEngine

    return IntentEngine.load(training_dir(args.data_dir, args.training_dir), labelled=args.data_dir / LABELLED_FILE)


# ---------------------------------------------------------------------------------------------- intents
def cmd_predict(args: argparse.Namespace) -> int:
    if args.file not in (None, "-") and not Path(args.file).is_file():
        raise InputDataError(f"{args.file}: file not found")
    engine = _engine(args)
    out = sys.stdout
    for line in _lines(args.file):
        if not line.strip():
            continue
        d = engine.classify(line).to_dict()
        record = {k: d[k] for k in ("text", "intent", "confidence", "runner_up", "entities", "decision")}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from intents.dataset import load_dir
    from intents.evaluate import cross_validate, evaluate, read_labelled

    out_dir = args.out or args.data_dir / "reports" / "intents"
    if args.sets:
        return _eval_sets(args, out_dir)
    tdir = training_dir(args.data_dir, args.training_dir)
    if args.file:
        path = Path(args.file)
        if path.is_dir() or path.suffix.lower() in (".yml", ".yaml"):  # a folder or file of intent YAML
            from intents.dataset import load_file

            examples = load_dir(path, complete=False).examples if path.is_dir() else load_file(path)[1]
            rows = [(e.text, e.intent) for e in examples]
        else:
            rows = read_labelled(path)
        engine = _engine(args)
        texts = [t for t, _ in rows]
        results = engine.classify_many(texts)
        report = evaluate(texts, [label for _, label in rows], [c.intent for c in results],
                          [c.confidence for c in results], labels=engine.intents)
        report.extra["mode"] = f"held-out file {args.file}"
        report.extra["decisions"] = dict(Counter(c.decision for c in results))
    else:
        report = cross_validate(load_dir(tdir), folds=args.folds)
    print(report.text(max_errors=args.errors))
    written = report.save(out_dir, "intents")
    print("\nwritten: " + ", ".join(str(w) for w in written))
    return 0


def _eval_sets(args: argparse.Namespace, out_dir: Path) -> int:
    from intents import evalsets

    names = list(evalsets.SETS) if args.sets == "all" else [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [n for n in names if n not in evalsets.SETS]
    if unknown:
        raise InputDataError(f"unknown evaluation set {unknown[0]!r} (known: {', '.join(evalsets.SETS)}, all)")
    engine = _engine(args)
    skipped: list[str] = []
    results = evalsets.run(engine, names, args.shared_data, skipped)
    for r in results:
        print(f"== {r.name}: {r.description}")
        hidden = r.name in evalsets.HIDDEN_MISSES
        print(r.report.text(max_errors=0 if hidden else args.errors))
        if hidden and r.report.errors:
            print(f"({len(r.report.errors)} misclassified, not listed: a hold-out set's errors are not read)")
        print()
    print("summary")
    for r in results:
        print("  " + r.line())
    for message in skipped:
        print(f"  {message}")
    written = []
    for r in results:
        r.report.extra["set"] = r.name
        r.report.extra["figures"] = {k: round(v, 4) for k, v in r.figures.items()}
        written += r.report.save(out_dir, f"intents_{r.name}")
    if written:
        print("\nwritten: " + ", ".join(str(w) for w in written))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from intents.dataset import load_dir
    from intents.evaluate import check_training_data

    data = load_dir(training_dir(args.data_dir, args.training_dir), args.data_dir / LABELLED_FILE, complete=False)
    result = check_training_data(data, args.min_examples)
    print(result.text())
    return 0 if result.ok else 1


def cmd_train(args: argparse.Namespace) -> int:
    """Add an operator's labelled messages (``--extra``), retrain, and say what changed."""
    from intents.dataset import merge_labelled, read_extra
    from intents.engine import IntentEngine
    from intents.registry import load_registry

    tdir = training_dir(args.data_dir, args.training_dir)
    stored = args.data_dir / LABELLED_FILE
    registry = load_registry(tdir)
    new = []
    for path in args.extra or []:
        rows = read_extra(Path(path), registry, args.text_column, args.intent_column)
        counts = Counter(e.intent for e in rows)
        print(f"{path}: {len(rows)} labelled messages (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")")
        new.extend(rows)
    before = None
    if new:
        before = IntentEngine.load(tdir, labelled=None if args.replace else stored)
    if new or args.replace:
        total, changed = merge_labelled(stored, new, replace_all=args.replace)
        print(f"stored: {stored} ({total} messages, {changed} added or relabelled)")
    started = time.perf_counter()
    engine = IntentEngine.load(tdir, labelled=stored)
    examples = engine.training_data.examples
    labelled = sum(e.path == stored for e in examples)
    print(f"trained on {len(examples) - labelled} examples from {tdir} and {labelled} labelled messages "
          f"in {time.perf_counter() - started:.1f} s")
    if before is not None:
        texts = [e.text for e in new]
        right_before = sum(c.intent == e.intent for c, e in zip(before.classify_many(texts), new, strict=True))
        right_after = sum(c.intent == e.intent for c, e in zip(engine.classify_many(texts), new, strict=True))
        print(f"the new messages classified as labelled: {right_before}/{len(new)} before, {right_after}/{len(new)} now")
    print("running servers pick this up after: python -m bot intents reload")
    return 0


# ---------------------------------------------------------------------------------------------- routing
def _routing_extra(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Rows of the ``--extra`` files (their own ``--extra-text-column``, else the main ``--text-column``)."""
    from intents.routing import read_table

    texts: list[str] = []
    labels: list[str] = []
    for path in args.extra or []:
        x, y = read_table(Path(path), args.extra_text_column or args.text_column, args.label_column)
        texts.extend(x)
        labels.extend(y)
    return texts, labels


def cmd_routing_train(args: argparse.Namespace) -> int:
    from intents.routing import MODEL_FILE, Router, read_table
    from intents.vectors import read_vectors_option

    texts, labels = read_table(Path(args.file), args.text_column, args.label_column)
    extra_x, extra_y = _routing_extra(args)
    if extra_x:
        print(f"extra: {len(extra_x)} rows from {len(args.extra)} file(s)")
    texts, labels = texts + extra_x, labels + extra_y
    vectors = read_vectors_option(args.vectors, args.vector_weight)
    router = Router.train(texts, labels, vectors=vectors, vector_weight=args.vector_weight)
    out = args.out or args.data_dir / MODEL_FILE
    router.save(out)
    counts = {c: labels.count(c) for c in router.categories}
    print(f"trained on {len(texts)} rows, {len(counts)} categories: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if (line := router.vectors_summary()) is not None:
        print(line)
    print(f"saved: {out}")
    return 0


def cmd_routing_predict(args: argparse.Namespace) -> int:
    from intents.routing import Router

    if args.model is not None:
        if not args.model.is_file():
            raise InputDataError(f"{args.model}: model file not found")
        router = Router.load_file(args.model)
    else:
        router = Router.load(args.data_dir)
    for line in _lines(args.file):
        if line.strip():
            record = {"text": line, **router.route(line).to_dict()}
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


def cmd_routing_eval(args: argparse.Namespace) -> int:
    from intents.routing import Router, drop_overlapping, read_table, split
    from intents.vectors import read_vectors_option

    if args.written:
        return _routing_eval_written(args)
    if not args.file or not args.text_column or not args.label_column:
        raise InputDataError("routing eval needs FILE, --text-column and --label-column (or --written)")
    texts, labels = read_table(Path(args.file), args.text_column, args.label_column)
    tr_x, te_x, tr_y, te_y = split(texts, labels, args.test_size, args.seed)
    mode = f"stratified split: {len(tr_x)} train / {len(te_x)} test, seed {args.seed}"
    extra_x, extra_y = _routing_extra(args)
    if extra_x:
        extra_x, extra_y, dropped = drop_overlapping(extra_x, extra_y, te_x)
        mode += f"; extra: {len(extra_x)} rows trained on, {dropped} left out as repeating a test row"
        tr_x, tr_y = tr_x + extra_x, tr_y + extra_y
    vectors = read_vectors_option(args.vectors, args.vector_weight)
    router = Router.train(tr_x, tr_y, vectors=vectors, vector_weight=args.vector_weight)
    if (line := router.vectors_summary()) is not None:
        print(line)
        mode += "; " + line
    report = router.evaluate(te_x, te_y)
    report.extra["mode"] = mode
    for e in report.errors:
        e["text"] = e["text"][:80]
    print(report.text(max_errors=args.errors))
    written = report.save(args.out or args.data_dir / "reports" / "routing", "routing")
    print("\nwritten: " + ", ".join(str(w) for w in written))
    return 0


def _routing_eval_written(args: argparse.Namespace) -> int:
    """The model ``routing predict`` uses (or ``--model``) on the written complaints."""
    from intents import evalsets
    from intents.routing import MODEL_FILE, Router

    if args.file:
        raise InputDataError("routing eval --written takes no FILE")
    if args.vectors is not None:
        raise InputDataError("routing eval --written measures a trained model: train it with --vectors")
    if args.model is not None:
        if not args.model.is_file():
            raise InputDataError(f"{args.model}: model file not found")
        router, which = Router.load_file(args.model), str(args.model)
    else:
        router = Router.load(args.data_dir)
        trained = args.data_dir / MODEL_FILE
        which = str(trained) if trained.is_file() else "default (intents/data/routing/categories.yml)"
    result = evalsets.measure_routing_written(router, args.min_confidence)
    report = result.report
    report.extra["mode"] = f"written complaints ({evalsets.ROUTING_WRITTEN.name}), model: {which}"
    report.extra["figures"] = {k: round(v, 4) for k, v in result.figures.items()}
    print(report.text(max_errors=args.errors))
    print("\n" + result.line())
    written = report.save(args.out or args.data_dir / "reports" / "routing", "routing_written")
    print("\nwritten: " + ", ".join(str(w) for w in written))
    return 0


# ----------------------------------------------------------------------------------------------- parser
def _training_dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--training-dir", type=Path, default=None,
                   help="folder of intent YAML files (default: <data_dir>/intents if present, else packaged)")


def _columns(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--text-column", action="append", required=required,
                   help="text column; repeat or write 'title+text' to join columns")
    p.add_argument("--label-column", required=required, help="category/department column")
    p.add_argument("--extra", action="append", metavar="FILE",
                   help="more labelled tickets to train on (repeatable; same label column)")
    p.add_argument("--extra-text-column", action="append", metavar="COLUMN",
                   help="text column(s) of the --extra files (default: the --text-column)")
    p.add_argument("--vectors", type=Path, default=None, metavar="FILE",
                   help="word vectors to add outside knowledge (text: a word and its numbers per line, "
                        "word2vec/fastText .vec); what the model learns from them is saved in the model")
    p.add_argument("--vector-weight", type=float, default=None, metavar="W",
                   help="weight of the vectors' model in the mix, 0-1 (default: chosen by cross-validation "
                        "on the training rows)")


def add_commands(subparsers: argparse._SubParsersAction, data_dir: Path) -> None:
    """Add the ``intents`` and ``routing`` command groups to a ``python -m bot`` parser."""
    common = {"data_dir": Path(data_dir)}
    intents_p = subparsers.add_parser("intents", help="intent classifier: predict, evaluate, check, train")
    sub = intents_p.add_subparsers(dest="intents_command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("predict", help="classify messages, one per line (stdin when no FILE) → JSON lines")
    p.add_argument("file", nargs="?", help="text file, one message per line")
    _training_dir_option(p)
    p.set_defaults(func=_guarded(cmd_predict), **common)

    p = sub.add_parser("eval", help="evaluate on a labelled file, on the built-in sets (--sets), "
                                    "or cross-validate (neither)")
    p.add_argument("file", nargs="?",
                   help="labelled CSV/XLSX/JSONL (text, intent) or a folder or file of intent YAML")
    p.add_argument("--sets", metavar="NAMES",
                   help=f"built-in evaluation sets, comma-separated: {', '.join(SET_NAMES)}, or all")
    p.add_argument("--shared-data", type=Path, default=DEFAULT_SHARED_DATA,
                   help=f"folder of the real evaluation text (default: {DEFAULT_SHARED_DATA})")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: <data_dir>/reports/intents)")
    p.add_argument("--folds", type=int, default=5, help="folds for cross-validation (no FILE)")
    p.add_argument("--errors", type=int, default=30, help="misclassified examples to print")
    _training_dir_option(p)
    p.set_defaults(func=_guarded(cmd_eval), **common)

    p = sub.add_parser("check", help="find duplicate/conflicting examples and intents with too few examples")
    p.add_argument("--min-examples", type=int, default=20)
    _training_dir_option(p)
    p.set_defaults(func=_guarded(cmd_check), **common)

    p = sub.add_parser("train", help="add a community's own labelled messages (--extra) and retrain")
    p.add_argument("--extra", action="append", metavar="FILE",
                   help="CSV/XLSX/JSONL with a text and an intent column (repeatable); kept in "
                        f"<data_dir>/{LABELLED_FILE}, a message labelled again takes its new intent")
    p.add_argument("--text-column", default="text", help="text column (default: text)")
    p.add_argument("--intent-column", default="intent", help="intent column (default: intent)")
    p.add_argument("--replace", action="store_true", help="replace the stored labelled messages instead of adding")
    _training_dir_option(p)
    p.set_defaults(func=_guarded(cmd_train), **common)

    routing_p = subparsers.add_parser("routing", help="complaint routing classifier: train, predict, evaluate")
    rsub = routing_p.add_subparsers(dest="routing_command", metavar="COMMAND")
    rsub.required = True

    p = rsub.add_parser("train", help="train on an operator's tickets (CSV/XLSX/JSONL)")
    p.add_argument("file")
    _columns(p)
    p.add_argument("--out", type=Path, default=None, help="model file (default: <data_dir>/models/routing.npz)")
    p.set_defaults(func=_guarded(cmd_routing_train), **common)

    p = rsub.add_parser("predict", help="route complaints, one per line (stdin when no FILE) → JSON lines")
    p.add_argument("file", nargs="?")
    p.add_argument("--model", type=Path, default=None, help="model file (default: trained model or built-in)")
    p.set_defaults(func=_guarded(cmd_routing_predict), **common)

    p = rsub.add_parser("eval", help="train/test split evaluation on a labelled CSV/XLSX/JSONL, or the "
                                     "model in use on the written complaints (--written)")
    p.add_argument("file", nargs="?")
    _columns(p, required=False)
    p.add_argument("--written", action="store_true",
                   help="measure the model routing predict uses (or --model) on the written complaints "
                        "(intents/data/eval/routing_written.yml); no FILE")
    p.add_argument("--model", type=Path, default=None, help="with --written: this model file")
    p.add_argument("--min-confidence", type=float, default=0.3,
                   help="with --written: below this a ticket goes to triage (default 0.3, as bot/rules/dispatch.yml)")
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=None, help="report folder (default: <data_dir>/reports/routing)")
    p.add_argument("--errors", type=int, default=20)
    p.set_defaults(func=_guarded(cmd_routing_eval), **common)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m intents.cli``) for use before the bot's CLI is wired."""
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument("--data-dir", type=Path, default=Path("var"))
    pre, _ = pre_parser.parse_known_args(argv)
    parser = argparse.ArgumentParser(prog="intents", parents=[pre_parser])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_commands(sub, pre.data_dir)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
