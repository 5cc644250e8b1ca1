"""Reading an operator's labelled table: CSV (UTF-8, header row), XLSX (first sheet, header row) or
JSONL (one object per line). Every problem is an :class:`InputDataError` naming the file and, when
known, the line or row.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from intents.errors import InputDataError

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
XLSX_SUFFIXES = (".xlsx", ".xlsm")


@dataclass
class Table:
    path: Path
    columns: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line or row number as the operator sees it, values)

    def require(self, *columns: str) -> None:
        missing = [c for c in columns if c not in self.columns]
        if missing:
            found = ", ".join(self.columns) or "none"
            raise InputDataError(f"{self.path}:1: missing column(s) {', '.join(missing)} (found: {found})")


def read_table(path: Path) -> Table:
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return _read_xlsx(path)
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(path)
    return _read_csv(path)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _read_csv(path: Path) -> Table:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or [] if isinstance(h, str)]
            rows = []
            for row in reader:
                values = {k.strip(): _cell(v) for k, v in row.items() if isinstance(k, str)}
                rows.append((reader.line_num, values))
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from exc
    except csv.Error as exc:
        raise InputDataError(f"{path}: malformed CSV ({exc})") from exc
    return Table(path, header, rows)


def _read_jsonl(path: Path) -> Table:
    rows: list[tuple[int, dict[str, str]]] = []
    columns: dict[str, None] = {}
    try:
        with path.open(encoding="utf-8-sig") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputDataError(f"{path}:{n}: invalid JSON ({exc.msg})") from exc
                if not isinstance(obj, dict):
                    raise InputDataError(f"{path}:{n}: expected a JSON object per line")
                columns.update(dict.fromkeys(str(k) for k in obj))
                rows.append((n, {str(k): _cell(v) for k, v in obj.items()}))
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{path}: not UTF-8 text") from exc
    return Table(path, list(columns), rows)


def _read_xlsx(path: Path) -> Table:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise InputDataError(f"{path}: cannot read the workbook ({exc})") from exc
    try:
        sheet = wb.worksheets[0]
        it = sheet.iter_rows(values_only=True)
        first = next(it, None)
        if first is None:
            raise InputDataError(f"{path}: the first sheet is empty")
        header = [_cell(h).strip() for h in first]
        rows = [(n, {h: _cell(v) for h, v in zip(header, values, strict=False) if h})
                for n, values in enumerate(it, 2)]
    finally:
        wb.close()
    return Table(path, [h for h in header if h], rows)
