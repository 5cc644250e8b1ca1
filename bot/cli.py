"""``python -m bot <command>``: the single command-line entry point."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import ConfigError, Settings
from bot.logmask import quiet_chatty_libraries

# Command groups, in the order --help lists them. Each module: register(subparsers, data_dir).
COMMAND_MODULES = (
    "bot.commands.serve",
    "bot.commands.db",
    "bot.commands.chat",
    "bot.commands.token",
    "bot.commands.user",
    "bot.commands.menu",
    "bot.commands.demo",
    "bot.commands.language",
    "bot.commands.points",
    "bot.commands.tuning",
)


def _default_data_dir() -> Path:
    try:
        return Settings.from_env().data_dir
    except ConfigError:
        return Settings().data_dir


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="社区服务助手: WeChat Official Account assistant for community service centres.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    data_dir = _default_data_dir()
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, data_dir)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_chatty_libraries()
    try:
        result = func(args)
        if inspect.isawaitable(result):
            result = asyncio.run(result)  # type: ignore[arg-type]
        return int(result or 0)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
