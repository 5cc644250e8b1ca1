"""``python -m bot db upgrade|current``: the schema, only through Alembic migrations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.config import Settings


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    p = sub.add_parser("db", help="database schema")
    dsub = p.add_subparsers(dest="db_command", metavar="<db command>", required=True)
    up = dsub.add_parser("upgrade", help="migrate the schema to the newest revision")
    up.add_argument("revision", nargs="?", default="heads")
    up.set_defaults(func=_upgrade)
    cur = dsub.add_parser("current", help="print the schema revision")
    cur.set_defaults(func=_current)
    roll = dsub.add_parser("rollup", help="bring the dashboard's daily roll-ups up to date (the scheduler does it "
                                          "every few minutes; the first run fills every finished day)")
    roll.set_defaults(func=_rollup)


async def _upgrade(args: argparse.Namespace) -> int:
    from bot.storage.db import Database
    from bot.storage.migrate import current, upgrade

    db = Database(Settings.from_env().database_url)
    try:
        await upgrade(db, args.revision)
        print(f"schema at {await current(db)}")
    except Exception as exc:
        print(f"cannot upgrade the database: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    return 0


async def _current(args: argparse.Namespace) -> int:
    from bot.storage.db import Database
    from bot.storage.migrate import current

    db = Database(Settings.from_env().database_url)
    try:
        print(await current(db) or "empty")
    finally:
        await db.dispose()
    return 0


async def _rollup(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from bot.services.dashboard_rollup import rollup
    from bot.storage.db import Database

    db = Database(Settings.from_env().database_url)
    try:
        days = await rollup(db, datetime.now(UTC))
        print(f"rolled up {days} day(s)")
    finally:
        await db.dispose()
    return 0
