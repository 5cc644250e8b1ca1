"""Errors raised by the knowledge package."""

from __future__ import annotations

from pathlib import Path


class KnowledgeError(Exception):
    """Base class for knowledge-base errors."""


class KnowledgeDataError(KnowledgeError):
    """A content file is malformed; names the file and, when known, the line."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")
