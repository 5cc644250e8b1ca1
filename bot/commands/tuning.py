"""``python -m bot tuning export|versions``: the console's tuning loop on the command line.

``export`` writes the data files the active version (or, with ``--draft``, the draft) changes over
the configured data folders — in a checkout, the packaged ``intents/data`` and ``knowledge/entries``
— so the changes can be reviewed with ``git diff`` and committed; ``--to DIR`` writes them under
DIR instead (``DIR/intents/…``, ``DIR/knowledge/…``). ``versions`` lists the published versions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.config import Settings
from bot.storage.db import Database


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    p = sub.add_parser("tuning", help="the console's tuning loop: export published changes to the data files")
    tsub = p.add_subparsers(dest="tuning_command", metavar="<action>", required=True)
    export = tsub.add_parser("export", help="write the files the active version (or the draft) changes")
    export.add_argument("--draft", action="store_true", help="export the draft instead of the active version")
    export.add_argument("--to", type=Path, help="write under this folder instead of over the data folders")
    export.set_defaults(func=_export)
    versions = tsub.add_parser("versions", help="list the published versions")
    versions.set_defaults(func=_versions)


async def _export(args: argparse.Namespace) -> int:
    from bot.language import active_number, overlay_of, sources_of
    from bot.services import tuning, tuning_data

    settings = Settings.from_env()
    db = Database(settings.database_url)
    try:
        if args.draft:
            overlay = (await tuning.draft(db)).overlay
        else:
            overlay = await overlay_of(db, await active_number(db))
    except Exception as exc:
        print(f"cannot read the tuning data ({type(exc).__name__}); is the schema up to date? "
              "run: python -m bot db upgrade", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    sources = sources_of(settings)
    files = await asyncio.to_thread(tuning_data.export, overlay, sources)
    if not files:
        print("nothing to export: the files already hold every change")
        return 0
    if args.to is not None:
        target = tuning_data.Sources(args.to / "intents", args.to / "knowledge")
    else:
        target = sources
    for path in tuning_data.write_export(files, target):
        print(f"wrote {path}")
    return 0


async def _versions(args: argparse.Namespace) -> int:
    from bot.services import tuning, tuning_data
    from bot.services.tickets import CHINA

    db = Database(Settings.from_env().database_url)
    try:
        rows = await tuning.versions(db)
        active = (await tuning.draft(db)).active
    finally:
        await db.dispose()
    if not rows:
        print("no version published yet: the servers use the data files")
    for v in rows:
        changes = ", ".join(f"{k} {n}" for k, n in tuning_data.summary(v.overlay).items() if n)
        mark = "*" if v.id == active else " "
        print(f"{mark} v{v.id}  {v.published_at.astimezone(CHINA):%Y-%m-%d %H:%M}  {v.published_by}  "
              f"{v.note or ''}  [{changes or 'no changes: the files'}]")
    return 0
