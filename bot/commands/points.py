"""``python -m bot points export-service --unit U [--since D] [--until D] [--out FILE]``: the 双报到
service record of a work unit's in-service party members as CSV (or .xlsx); ``points check``
compares the ledger with the balances.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

from bot.config import Settings

HEADER = ("日期", "居民编号", "姓名", "活动", "志愿时长(小时)", "积分")


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    p = sub.add_parser("points", help="points: 双报到 service records, ledger check")
    psub = p.add_subparsers(dest="points_command", metavar="<action>", required=True)
    export = psub.add_parser(
        "export-service",
        help="export a work unit's service record (双报到) as CSV or .xlsx",
        description="Check-ins at community activities of the unit's in-service party members (在职党员).",
    )
    export.add_argument("--unit", required=True, help="the work unit, exactly as registered")
    export.add_argument("--since", type=_day, help="first day (YYYY-MM-DD, local time)")
    export.add_argument("--until", type=_day, help="last day (YYYY-MM-DD, local time), inclusive")
    export.add_argument("--out", type=Path, help="write to this .csv or .xlsx file instead of standard output")
    export.set_defaults(func=_export)
    check = psub.add_parser("check", help="check that every balance equals the sum of its ledger entries")
    check.set_defaults(func=_check)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _database_problem(exc: Exception) -> int:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    print(f"cannot use the database: {type(exc).__name__}: {text}", file=sys.stderr)
    print("is the schema up to date? run: python -m bot db upgrade", file=sys.stderr)
    return 1


async def _export(args: argparse.Namespace) -> int:
    from bot.services import courses, points
    from bot.storage.db import Database

    unit = " ".join(args.unit.split())
    if not unit:
        print("--unit must not be empty", file=sys.stderr)
        return 2
    if args.out is not None and args.out.suffix.lower() not in (".csv", ".xlsx"):
        print(f"{args.out}: the file must end in .csv or .xlsx", file=sys.stderr)
        return 2
    tz = points.rules().tz
    since = datetime.combine(args.since, time(), tz) if args.since else None
    until = datetime.combine(args.until + timedelta(days=1), time(), tz) if args.until else None
    db = Database(Settings.from_env().database_url)
    try:
        async with db.session() as session:
            rows = await courses.service_record(session, unit, since, until)
    except Exception as exc:
        return _database_problem(exc)
    finally:
        await db.dispose()
    table = [[r.day, r.resident_id, r.name or "", r.activity, r.hours, r.points] for r in rows]
    total = sum(r.hours for r in rows)
    try:
        if args.out is not None and args.out.suffix.lower() == ".xlsx":
            from openpyxl import Workbook

            book = Workbook()
            sheet = book.active
            assert sheet is not None
            sheet.title = "双报到"
            sheet.append([f"{unit} 在职党员社区服务记录"])
            sheet.append(list(HEADER))
            for row in table:
                sheet.append(row)
            sheet.append(["合计", "", "", "", total, ""])
            book.save(args.out)
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(HEADER)
            writer.writerows(table)
            writer.writerow(["合计", "", "", "", total, ""])
            if args.out is not None:
                args.out.write_text(buffer.getvalue(), encoding="utf-8-sig")
            else:
                sys.stdout.write(buffer.getvalue())
    except OSError as exc:
        print(f"{args.out}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if args.out is not None:
        print(f"{len(table)} check-ins, {total:g} hours → {args.out}", file=sys.stderr)
    return 0


async def _check(args: argparse.Namespace) -> int:
    from bot.services import points
    from bot.storage.db import Database

    db = Database(Settings.from_env().database_url)
    try:
        async with db.session() as session:
            wrong = await points.ledger_mismatches(session)
    except Exception as exc:
        return _database_problem(exc)
    finally:
        await db.dispose()
    for rid, total, balance in wrong:
        print(f"resident {rid}: ledger sums to {total}, balance is {balance}")
    print("ledger and balances agree" if not wrong else f"{len(wrong)} residents disagree")
    return 0 if not wrong else 1
