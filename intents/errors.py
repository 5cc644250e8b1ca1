"""Errors raised by the intents package."""

from __future__ import annotations

from pathlib import Path


class IntentsError(Exception):
    """Base class for errors the command line reports without a traceback."""


class TrainingDataError(IntentsError):
    """A training data file is malformed. The message names the file and, when known, the line."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


class InputDataError(IntentsError):
    """An input file given on the command line (CSV, XLSX, JSONL) cannot be used."""
