"""Command line for the intents package, mounted by ``bot/cli.py`` under ``python -m bot``.

Commands: ``intents predict|eval|check`` and ``routing train|predict|eval``. Each handler returns an exit
code: 0 success, 1 a check that found problems, 2 bad input (printed to stderr, no traceback).

The intent training data is read from ``<data_dir>/intents/`` when that folder holds ``*.yml`` files
(an operator's copy), otherwise from the packaged ``intents/data/``; ``--training-dir`` overrides both.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from intents.errors import IntentsError

# Building the parser must stay cheap (every ``python -m bot`` start builds it): numpy, scikit-learn,
# jieba, PyYAML and matplotlib are imported inside the command functions only.
PACKAGE_DATA_DIR = Path(__file__).parent / "data"  # same as intents.dataset.PACKAGE_DATA_DIR

Handler = Callable[[argparse.Namespace], int]


def training_dir(data_dir: Path, override: Path | None = None) -> Path:
    if override is not None:
        return override
    operator = data_dir / "intents"
    if operator.is_dir() and any(operator.glob("*.yml")):
        return operator
    return PACKAGE_DATA_DIR


def _guard(func: Handler) -> Handler:
    """Turn expected errors into a readable message on stderr and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except IntentsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
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
        from intents.errors import InputDataError

        raise InputDataError(f"{p}: file not found")
    try:
        with p.open(encoding="utf-8-sig") as fh:
            for line in fh:
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        from intents.errors import InputDataError

        raise InputDataError(f"{p}: not UTF-8 text") from exc


def add_commands(subparsers: argparse._SubParsersAction, data_dir: Path) -> None:
    """Add the ``intents`` and ``routing`` command groups to a ``python -m bot`` parser."""
    data_dir = Path(data_dir)

    # ------------------------------------------------------------------ intents
    intents_p = subparsers.add_parser("intents", help="intent classifier: predict, evaluate, check training data")
    isub = intents_p.add_subparsers(dest="intents_command", metavar="COMMAND")
    isub.required = True

    def add_training_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--training-dir", type=Path, default=None,
                       help="folder of intent YAML files (default: <data_dir>/intents if present, else packaged)")

    p = isub.add_parser("predict", help="classify messages, one per line (stdin when no FILE) → JSON lines")
    p.add_argument("file", nargs="?", help="text file, one message per line")
    add_training_dir(p)

    @_guard
    def predict(args: argparse.Namespace) -> int:
        from intents.engine import IntentEngine

        engine = IntentEngine.load(training_dir(data_dir, args.training_dir))
        out = sys.stdout
        for line in _lines(args.file):
            if not line.strip():
                continue
            c = engine.classify(line)
            d = c.to_dict()
            record = {k: d[k] for k in ("text", "intent", "confidence", "runner_up", "entities")}
            record["decision"] = d["decision"]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
        return 0

    p.set_defaults(func=predict)

    p = isub.add_parser("eval", help="evaluate on a labelled CSV/JSONL (text, intent); no FILE: cross-validate")
    p.add_argument("file", nargs="?", help="labelled CSV/JSONL (text, intent) or a folder of intent YAML files (held-out split)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: <data_dir>/reports/intents)")
    p.add_argument("--folds", type=int, default=5, help="folds for cross-validation (no FILE)")
    p.add_argument("--errors", type=int, default=30, help="misclassified examples to print")
    add_training_dir(p)

    @_guard
    def eval_(args: argparse.Namespace) -> int:
        from intents.dataset import load_dir
        from intents.engine import IntentEngine
        from intents.evaluate import cross_validate, evaluate, read_labelled

        tdir = training_dir(data_dir, args.training_dir)
        if args.file:
            path = Path(args.file)
            if path.is_dir() or path.suffix.lower() in (".yml", ".yaml"):  # held-out YAML split
                from intents.dataset import load_file

                examples = load_dir(path).examples if path.is_dir() else load_file(path)[1]
                rows = [(e.text, e.intent) for e in examples]
            else:
                rows = read_labelled(path)
            engine = IntentEngine.load(tdir)
            texts = [t for t, _ in rows]
            results = engine.classify_many(texts)
            report = evaluate(texts, [label for _, label in rows], [c.intent for c in results],
                              [c.confidence for c in results], labels=engine.intents)
            report.extra["mode"] = f"held-out file {args.file}"
            report.extra["decisions"] = {d: sum(c.decision == d for c in results) for d in ("accept", "clarify", "fallback")}
        else:
            report = cross_validate(load_dir(tdir), folds=args.folds)
        print(report.text(max_errors=args.errors))
        out = args.out or data_dir / "reports" / "intents"
        written = report.save(out, "intents")
        print("\nwritten: " + ", ".join(str(w) for w in written))
        return 0

    p.set_defaults(func=eval_)

    p = isub.add_parser("check", help="find duplicate/conflicting examples and intents with too few examples")
    p.add_argument("--min-examples", type=int, default=20)
    add_training_dir(p)

    @_guard
    def check(args: argparse.Namespace) -> int:
        from intents.dataset import load_dir
        from intents.evaluate import check_training_data

        result = check_training_data(load_dir(training_dir(data_dir, args.training_dir)), args.min_examples)
        print(result.text())
        return 0 if result.ok else 1

    p.set_defaults(func=check)

    # ------------------------------------------------------------------ routing
    routing_p = subparsers.add_parser("routing", help="complaint routing classifier: train, predict, evaluate")
    rsub = routing_p.add_subparsers(dest="routing_command", metavar="COMMAND")
    rsub.required = True

    def add_columns(p: argparse.ArgumentParser, label: bool = True) -> None:
        p.add_argument("--text-column", action="append", required=True,
                       help="text column; repeat or write 'title+text' to join columns")
        if label:
            p.add_argument("--label-column", required=True, help="category/department column")

    p = rsub.add_parser("train", help="train on an operator's tickets (CSV/XLSX)")
    p.add_argument("file")
    add_columns(p)
    p.add_argument("--out", type=Path, default=None, help="model file (default: <data_dir>/models/routing.npz)")

    @_guard
    def rtrain(args: argparse.Namespace) -> int:
        from intents.routing import MODEL_FILE, Router, read_table

        texts, labels = read_table(Path(args.file), args.text_column, args.label_column)
        router = Router.train(texts, labels)
        out = args.out or data_dir / MODEL_FILE
        router.save(out)
        counts = {c: labels.count(c) for c in router.categories}
        print(f"trained on {len(texts)} rows, {len(counts)} categories: "
              + ", ".join(f"{k} {v}" for k, v in counts.items()))
        print(f"saved: {out}")
        return 0

    p.set_defaults(func=rtrain)

    p = rsub.add_parser("predict", help="route complaints, one per line (stdin when no FILE) → JSON lines")
    p.add_argument("file", nargs="?")
    p.add_argument("--model", type=Path, default=None, help="model file (default: trained model or built-in)")

    @_guard
    def rpredict(args: argparse.Namespace) -> int:
        from intents.classifier import LinearTextClassifier
        from intents.errors import InputDataError
        from intents.routing import Router

        if args.model is not None:
            if not args.model.is_file():
                raise InputDataError(f"{args.model}: model file not found")
            router = Router(LinearTextClassifier.load(args.model))
        else:
            router = Router.load(data_dir)
        for line in _lines(args.file):
            if line.strip():
                record = {"text": line, **router.route(line).to_dict()}
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return 0

    p.set_defaults(func=rpredict)

    p = rsub.add_parser("eval", help="train/test split evaluation on a labelled CSV/XLSX")
    p.add_argument("file")
    add_columns(p)
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=None, help="report folder (default: <data_dir>/reports/routing)")
    p.add_argument("--errors", type=int, default=20)

    @_guard
    def reval(args: argparse.Namespace) -> int:
        from intents.routing import Router, read_table, split

        texts, labels = read_table(Path(args.file), args.text_column, args.label_column)
        tr_x, te_x, tr_y, te_y = split(texts, labels, args.test_size, args.seed)
        report = Router.train(tr_x, tr_y).evaluate(te_x, te_y)
        report.extra["mode"] = f"stratified split: {len(tr_x)} train / {len(te_x)} test, seed {args.seed}"
        for e in report.errors:
            e["text"] = e["text"][:80]
        print(report.text(max_errors=args.errors))
        written = report.save(args.out or data_dir / "reports" / "routing", "routing")
        print("\nwritten: " + ", ".join(str(w) for w in written))
        return 0

    p.set_defaults(func=reval)


def main(argv: list[str] | None = None) -> int:
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
