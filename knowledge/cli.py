"""``kb`` commands: search, eval, import, export, check.

``bot/cli.py`` mounts them with ``add_commands(subparsers, data_dir)``; ``python -m knowledge.cli``
runs them standalone. Every leaf sets ``func`` to ``(args) -> int``; bad input prints one
readable line to stderr and returns 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# Light imports only: retrieval (numpy, rapidfuzz), jieba and spreadsheets are imported inside the
# commands, so that mounting the group (and ``python -m bot --help``) does not pay for them.
from knowledge.entries import DEFAULT_ENTRIES_DIR
from knowledge.errors import KnowledgeError
from knowledge.evaluation import DEFAULT_EVAL_FILE

Handler = Callable[[argparse.Namespace], int]


def _guarded(func: Handler) -> Handler:
    """Turn expected errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except KnowledgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
            return 2

    return run


def _entries_dir(args: argparse.Namespace) -> Path:
    return Path(args.entries) if args.entries else DEFAULT_ENTRIES_DIR


def cmd_search(args: argparse.Namespace) -> int:
    from knowledge.base import KnowledgeBase

    if args.k < 1:
        print("error: -k must be at least 1", file=sys.stderr)
        return 2
    kb = KnowledgeBase.load(_entries_dir(args))
    decision = kb.answer(args.question)
    hits = kb.search(args.question, k=args.k)
    print(f"decision: {decision.kind}")
    if not hits:
        print("(no matching entries)")
    for n, hit in enumerate(hits, 1):
        print(f"{n}. {hit.score:.3f}  {hit.entry.id}  {hit.entry.question}")
    if decision.hits:  # what the resident gets: the answer first, or the numbered choices
        print("offered: " + ", ".join(h.entry.id for h in decision.hits))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from knowledge.base import KnowledgeBase
    from knowledge.evaluation import evaluate, load_questions

    kb = KnowledgeBase.load(_entries_dir(args))
    questions = load_questions(Path(args.file))
    report = evaluate(kb, questions)
    unknown_ids = sorted({q.expected for q in questions if q.expected and kb.get(q.expected) is None})
    if unknown_ids:
        print(f"warning: labels not in the knowledge base: {', '.join(unknown_ids)}", file=sys.stderr)
    print(report.summary())
    if args.by_style and report.by_style:
        print(report.style_table())
    if args.show_misses:
        for m in report.misses:
            top = ", ".join(f"{i} {s:.2f}" for i, s in m.top)
            style = f"{m.style}: " if m.style else ""
            print(f"  miss [{m.decision}] {style}{m.question!r} expected={m.expected or 'none'} top: {top}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"wrote {out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from knowledge.entries import dump_entries, load_entries
    from knowledge.transfer import DEFAULT_DEPARTMENT, Columns, plan_import, read_rows, rows_to_entries

    source = Path(args.file)
    reviewed = dt.date.fromisoformat(args.reviewed) if args.reviewed else None
    columns = Columns(
        question=args.question_col,
        answer=args.answer_col,
        alternatives=args.alternatives_col,
        tags=args.tags_col,
        department=args.department_col,
        id=args.id_col,
    )
    department = args.department or DEFAULT_DEPARTMENT
    incoming = rows_to_entries(read_rows(source, args.sheet), source, columns, department, reviewed)
    target_dir = Path(args.dir) if args.dir else _entries_dir(args)
    existing = load_entries(target_dir) if target_dir.is_dir() else []
    plan = plan_import(incoming, existing)
    for d in plan.duplicates:
        kind = "duplicate" if d.exact else f"near-duplicate ({d.similarity:.0f}%)"
        print(f"{source}:{d.entry.line}: {kind} of {d.other_id}: {d.entry.question!r} ~ {d.other_text!r}")
    if plan.duplicates and not args.skip_duplicates:
        print(
            f"error: {len(plan.duplicates)} duplicate(s) found; nothing written "
            "(fix them, or pass --skip-duplicates to import the rest)",
            file=sys.stderr,
        )
        return 1
    if not plan.new:
        print("nothing new to import")
        return 0
    out = target_dir / f"{args.name or 'imported-' + source.stem}.yml"
    if out.exists() and not args.force:
        print(f"error: {out} exists (use --name or --force)", file=sys.stderr)
        return 2
    if args.dry_run:
        print(f"would write {len(plan.new)} entries to {out}")
        return 0
    target_dir.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_entries(plan.new, theme=f"imported from {source.name}"), encoding="utf-8")
    print(f"wrote {len(plan.new)} entries to {out} ({len(plan.duplicates)} duplicates skipped)")
    return 0


def cmd_export(args: argparse.Namespace, data_dir: Path) -> int:
    from knowledge.entries import load_entries
    from knowledge.transfer import export_text, export_xlsx

    entries = load_entries(_entries_dir(args))
    fmt = args.format or (Path(args.file).suffix.lstrip(".").replace("yml", "yaml") if args.file else "csv")
    if fmt not in ("csv", "yaml", "xlsx"):
        print(f"error: unknown format {fmt!r} (csv, yaml or xlsx)", file=sys.stderr)
        return 2
    if fmt == "xlsx":
        out = Path(args.file) if args.file else data_dir / "exports" / "knowledge.xlsx"
        out.parent.mkdir(parents=True, exist_ok=True)
        export_xlsx(entries, out)
        print(f"wrote {len(entries)} entries to {out}")
        return 0
    text = export_text(entries, fmt)
    if args.file:
        out = Path(args.file)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {len(entries)} entries to {out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from knowledge.base import KnowledgeBase
    from knowledge.check import check_entries
    from knowledge.entries import load_entries

    directory = _entries_dir(args)
    entries = load_entries(directory)  # load errors (missing fields, bad YAML) exit 2 with file:line
    kb = KnowledgeBase.from_entries(entries)
    problems = check_entries(entries, kb)
    for p in problems:
        print(p)
    print(f"{len(entries)} entries in {directory}: {len(problems)} problem(s)")
    return 1 if problems else 0


def add_commands(subparsers: argparse._SubParsersAction, data_dir: Path) -> None:
    """Mount the ``kb`` command group on a parent parser's subparsers."""
    kb = subparsers.add_parser("kb", help="knowledge base: search, evaluate, import/export, check")
    kb.add_argument("--entries", metavar="DIR", help=f"entries directory (default: {DEFAULT_ENTRIES_DIR})")
    sub = kb.add_subparsers(dest="kb_command", metavar="<kb command>")
    sub.required = True

    p = sub.add_parser("search", help="top entries for a question, with scores")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=3, help="how many entries (default 3)")
    p.set_defaults(func=_guarded(cmd_search))

    p = sub.add_parser("eval", help="accuracy on labelled questions (entry id or 'none')")
    p.add_argument("file", nargs="?", default=str(DEFAULT_EVAL_FILE), help="YAML or CSV (default: shipped set)")
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    p.add_argument("--show-misses", action="store_true", help="list the questions that went wrong")
    p.add_argument("--by-style", action="store_true", help="figures per style (files grouped by style)")
    p.set_defaults(func=_guarded(cmd_eval))

    p = sub.add_parser("import", help="import question–answer pairs (CSV, XLSX or YAML) as entries")
    p.add_argument("file")
    p.add_argument("--dir", help="where to write the entry file (default: the entries directory)")
    p.add_argument("--name", help="file name without .yml (default: imported-<source name>)")
    p.add_argument("--sheet", help="XLSX sheet (default: the first)")
    p.add_argument("--question-col", help="question column (default: question/问题)")
    p.add_argument("--answer-col", help="answer column (default: answer/答案)")
    p.add_argument("--alternatives-col", help="alternative phrasings column, '|'-separated (default: alternatives/相似问法)")
    p.add_argument("--tags-col", help="tags column, '|'-separated (default: tags/标签)")
    p.add_argument("--department-col", help="department column (default: department/部门)")
    p.add_argument("--id-col", help="id column (default: id; generated from the question when absent)")
    p.add_argument("--department", help="department when the file has none (default: 社区服务中心综合窗口)")
    p.add_argument("--reviewed", help="review date YYYY-MM-DD (default: today)")
    p.add_argument("--skip-duplicates", action="store_true", help="import the rest when some rows are duplicates")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--dry-run", action="store_true", help="report without writing")
    p.set_defaults(func=_guarded(cmd_import))

    p = sub.add_parser("export", help="export entries as CSV, YAML or XLSX")
    p.add_argument("file", nargs="?", help="output file (default: stdout; XLSX goes to DATA_DIR/exports/)")
    p.add_argument("--format", choices=("csv", "yaml", "xlsx"), help="default: from the file name, else csv")
    p.set_defaults(func=_guarded(functools.partial(cmd_export, data_dir=data_dir)))

    p = sub.add_parser("check", help="duplicates, near-duplicates and missing fields across entries")
    p.set_defaults(func=_guarded(cmd_check))


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone harness: ``python -m knowledge.cli kb ...``."""
    parser = argparse.ArgumentParser(prog="python -m knowledge.cli")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    add_commands(sub, Path("var"))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
