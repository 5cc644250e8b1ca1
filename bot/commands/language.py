"""Mounts the language packages' own commands (``intents``, ``routing``, ``kb``) and adds the
service's part: ``intents reload`` and ``kb reload`` tell every running server to rebuild."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

from bot.config import Settings


def _subcommands(sub: argparse._SubParsersAction, name: str) -> argparse._SubParsersAction | None:
    parser = sub.choices.get(name)
    if parser is None:
        return None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    for name in ("intents.cli", "knowledge.cli"):
        importlib.import_module(name).add_commands(sub, data_dir)
    for group, target in (("intents", "intents"), ("kb", "knowledge")):
        actions = _subcommands(sub, group)
        if actions is None:
            continue
        p = actions.add_parser(
            "reload",
            help="check the data files, then make every running server reload them (no restart)",
        )
        p.set_defaults(func=_reload, reload_target=target)


def _validate(target: str, settings: Settings) -> str | None:
    """Build the model from the files as a server would; the error (file and line) or None."""
    try:
        if target == "intents":
            from bot.language import labelled_messages
            from intents.engine import IntentEngine

            IntentEngine.load(settings.intents_dir, labelled=labelled_messages(settings))
        else:
            from knowledge.base import KnowledgeBase

            KnowledgeBase.load(settings.knowledge_dir)
    except Exception as exc:
        return str(exc)
    return None


async def _reload(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    target = args.reload_target
    error = await asyncio.to_thread(_validate, target, settings)
    if error is not None:
        print(f"not reloaded: {error}", file=sys.stderr)
        return 2
    from bot.language import request_reload
    from bot.storage.db import Database
    from bot.storage.migrate import upgrade

    db = Database(settings.database_url)
    try:
        await upgrade(db)
        generation = await request_reload(db, target)
    finally:
        await db.dispose()
    print(f"{target} reload requested (generation {generation}); running servers switch within a few seconds")
    return 0
