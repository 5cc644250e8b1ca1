"""A reader's department labels for teddy2020c rows (intents/data/routing/teddy_reader_labels.csv), kept as
row numbers only (the text stays in ../shared/data): the evidence of how much of the routing error is
label noise (docs/benchmarks.md). The rows must keep pointing at the tickets that were read."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from intents import evalsets

LABELS = Path(__file__).resolve().parents[2] / "intents" / "data" / "routing" / "teddy_reader_labels.csv"
TEDDY = evalsets.DEFAULT_SHARED_DATA / "teddy2020c"
DEPARTMENTS = {"城乡建设", "环境保护", "交通运输", "教育文体", "劳动和社会保障", "商贸旅游", "卫生计生"}


def _reader_rows() -> list[dict[str, str]]:
    with LABELS.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_reader_labels_are_well_formed() -> None:
    rows = _reader_rows()
    assert Counter((r["file"], r["sample"]) for r in rows) == {
        ("messages", "errors"): 60, ("messages", "random"): 50, ("titles", "errors"): 60}
    assert len({(r["file"], r["row"], r["sample"]) for r in rows}) == len(rows)
    for r in rows:
        assert r["reader"] in DEPARTMENTS
        assert r["reader_alt"] in DEPARTMENTS | {""} and r["reader_alt"] != r["reader"]
        assert int(r["row"]) >= 0


@pytest.mark.skipif(not TEDDY.is_dir(), reason="../shared/data/teddy2020c is absent")
def test_rows_point_at_the_tickets_read() -> None:
    """On the random sample the reader's first choice agreed with the file's label on 45 of 50 rows and
    one of the two choices on 47; row numbers shifted by one agree on 24."""
    gold: dict[str, list[str]] = {}
    for name in ("messages", "titles"):
        with (TEDDY / f"{name}_train.csv").open(encoding="utf-8", newline="") as fh:
            gold[name] = [(r.get("label") or "").strip() for r in csv.DictReader(fh)]
    rows = _reader_rows()
    for r in rows:
        assert int(r["row"]) < len(gold[r["file"]])
    random_rows = [r for r in rows if r["sample"] == "random"]
    first = sum(gold["messages"][int(r["row"])] == r["reader"] for r in random_rows)
    either = sum(gold["messages"][int(r["row"])] in (r["reader"], r["reader_alt"]) for r in random_rows)
    assert (first, either) == (45, 47)
    # The error samples (rows the model got wrong): the reader's first choice is the file's label on 60
    # of 120, one of the two choices on 95.
    errors = [r for r in rows if r["sample"] == "errors"]
    first = sum(gold[r["file"]][int(r["row"])] == r["reader"] for r in errors)
    either = sum(gold[r["file"]][int(r["row"])] in (r["reader"], r["reader_alt"]) for r in errors)
    assert (first, either) == (60, 95)
