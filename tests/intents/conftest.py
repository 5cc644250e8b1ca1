from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from intents.dataset import PACKAGE_DATA_DIR
from intents.engine import IntentEngine

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def engine() -> IntentEngine:
    return IntentEngine.load()


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the training YAML files that a test may edit."""
    target = tmp_path / "training"
    target.mkdir()
    for path in PACKAGE_DATA_DIR.glob("*.yml"):
        shutil.copy(path, target / path.name)
    return target
