"""Mounts the language packages' own commands: ``intents``, ``routing`` and ``kb``."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    for name in ("intents.cli", "knowledge.cli"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.add_commands(sub, data_dir)
