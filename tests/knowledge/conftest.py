from __future__ import annotations

import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from knowledge.base import KnowledgeBase
from knowledge.entries import DEFAULT_ENTRIES_DIR

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable


@lru_cache(maxsize=1)
def kb_command() -> list[str]:
    """``python -m bot kb`` once bot/cli.py mounts the group; the package's own harness until then."""
    probe = subprocess.run([PYTHON, "-m", "bot", "kb", "--help"], cwd=ROOT, capture_output=True, text=True)
    if probe.returncode == 0:
        return [PYTHON, "-m", "bot", "kb"]
    return [PYTHON, "-m", "knowledge.cli", "kb"]


def run_kb(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*kb_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture
def entries_copy(tmp_path: Path) -> Path:
    target = tmp_path / "entries"
    shutil.copytree(DEFAULT_ENTRIES_DIR, target)
    return target
