"""The issue's done-when figures, measured on the real evaluation data (skipped when it is absent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from intents import evalsets
from intents.dataset import PACKAGE_DATA_DIR, load_dir
from intents.routing import Router, read_table, split

from .conftest import REPO, SHARED

SMP = SHARED / "smp2017" / "train.jsonl"
TEDDY = SHARED / "teddy2020c"
# Measured 0.914 (development titles) and 0.922 (hold-out), docs/benchmarks.md; the issue aims at 0.93.
TEDDY_ACCURACY = 0.90
NO_SHARED = "shared evaluation data (../shared/data) not present"


def test_written_held_out_set(engine):
    """Messages written for evaluation before tuning: the 7-way target of the issue."""
    result = evalsets.measure_written(engine)
    assert result.figures["macro-F1"] >= 0.93, result.report.text()
    assert result.figures["min F1"] >= 0.85, result.extra["f1"]


def test_shanxi_set_shares_no_message_with_the_training_data(engine):
    """The Shanxi residents' sets measure generalisation: none of their messages is a training example
    or a message of the written set (or of the other), and they cover the seven intents."""
    training = {e.text for e in load_dir(PACKAGE_DATA_DIR, complete=False).examples}
    written = {t for t, _ in evalsets.written_rows()}
    rows = evalsets.shanxi_rows()
    rows2 = evalsets.shanxi_rows("shanxi2")
    assert not {t for t, _ in rows} & (training | written)
    assert not {t for t, _ in rows2} & (training | written | {t for t, _ in rows})
    assert len(rows) == len({t for t, _ in rows}) == 300
    assert len(rows2) == len({t for t, _ in rows2}) == 150
    assert {label for _, label in rows} == {label for _, label in rows2} == set(engine.intents)


def test_shanxi_set(engine):
    """Residents' messages written without reading the training data (issue 13's 7-way target). At
    46ce340 it measured 0.937 with fallback at 0.833 (coupon, course and handoff messages put out of
    scope, voice-assistant requests read as complaints or questions); 0.967 / 0.939 after."""
    result = evalsets.measure_shanxi(engine)
    assert result.figures["macro-F1"] >= 0.95, result.report.text()
    assert result.figures["min F1"] >= 0.90, result.extra["f1"]


def test_generated_split(engine):
    result = evalsets.measure_split(engine)
    assert result.figures["macro-F1"] >= 0.93, result.report.text()


@pytest.mark.skipif(not (TEDDY / "titles_train.csv").is_file(), reason=NO_SHARED)
def test_real_titles_complaint_or_query(engine):
    result = evalsets.measure_teddy(engine, SHARED)
    assert result.figures["accuracy"] >= TEDDY_ACCURACY, result.report.text(max_errors=60)
    assert result.figures["fallback"] <= 0.05


@pytest.mark.skipif(not (TEDDY / "titles_train.csv").is_file(), reason=NO_SHARED)
def test_second_development_titles_complaint_or_query(engine):
    result = evalsets.measure_teddy2(engine, SHARED)
    assert result.figures["accuracy"] >= TEDDY_ACCURACY, result.report.text(max_errors=60)
    assert result.figures["fallback"] <= 0.05


@pytest.mark.skipif(not (TEDDY / "titles_train.csv").is_file(), reason=NO_SHARED)
def test_third_development_titles_complaint_or_query(engine):
    """407 more titles labelled in the fourth session: 0.929 when first measured (f1b12e9)."""
    result = evalsets.measure_teddy3(engine, SHARED)
    assert result.n == 407
    assert result.figures["accuracy"] >= TEDDY_ACCURACY, result.report.text(max_errors=60)
    assert result.figures["fallback"] <= 0.05


@pytest.mark.skipif(not (TEDDY / "titles_train.csv").is_file(), reason=NO_SHARED)
def test_fourth_development_titles_complaint_or_query(engine):
    """402 more titles labelled in the fifth session: 0.896 when first measured (55499f7)."""
    result = evalsets.measure_teddy4(engine, SHARED)
    assert result.n == 402
    assert result.figures["accuracy"] >= 0.88, result.report.text(max_errors=0)
    assert result.figures["fallback"] <= 0.05


@pytest.mark.skipif(not (TEDDY / "titles_train.csv").is_file(), reason=NO_SHARED)
def test_fifth_titles_complaint_or_query(engine):
    """298 more titles labelled in the sixth session, errors not read: 0.906 when first measured (7ae2073)."""
    result = evalsets.measure_teddy5(engine, SHARED)
    assert result.n == 298
    assert result.figures["accuracy"] >= 0.88, result.report.text(max_errors=0)
    assert result.figures["fallback"] <= 0.05


@pytest.mark.skipif(not (TEDDY / "titles_train.csv").is_file(), reason=NO_SHARED)
def test_development_title_sets_share_no_row(engine):
    """The six title sets are drawn from distinct rows and share no title."""
    names = ("teddy_titles.csv", "teddy_titles_dev2.csv", "teddy_titles_dev3.csv", "teddy_titles_dev4.csv",
             "teddy_titles_dev5.csv", "teddy_titles_holdout.csv")
    rows = [r for name in names for r, _ in evalsets._labels(name)]
    assert len(rows) == len(set(rows))
    titles = {name: {t.strip() for t, _ in evalsets.teddy_rows(SHARED, name)} for name in names}
    for newer in ("teddy_titles_dev4.csv", "teddy_titles_dev5.csv"):
        assert not titles[newer] & set().union(*(t for n, t in titles.items() if n != newer))


@pytest.mark.skipif(not (TEDDY / "titles_train.csv").is_file(), reason=NO_SHARED)
def test_hold_out_titles_complaint_or_query(engine):
    result = evalsets.measure_holdout(engine, SHARED)
    assert result.figures["accuracy"] >= TEDDY_ACCURACY, result.report.text(max_errors=0)
    assert result.figures["fallback"] <= 0.05


@pytest.mark.skipif(not SMP.is_file(), reason=NO_SHARED)
def test_voice_assistant_queries_stay_out_of_core_intents(engine):
    result = evalsets.measure_smp(engine, SHARED)
    assert result.figures["out of scope → core"] <= 0.05, result.report.text()
    assert result.figures["all non-chat → core"] <= 0.05
    assert result.figures["smalltalk recall"] >= 0.7


@pytest.mark.skipif(not SMP.is_file(), reason=NO_SHARED)
def test_more_voice_assistant_queries_stay_out_of_core_intents(engine):
    """The second smp development set (254 rows): 2.9 % into a core intent when first measured."""
    result = evalsets.measure_smp2(engine, SHARED)
    assert result.n == 254
    assert result.figures["out of scope → core"] <= 0.05, result.report.text()
    assert result.figures["smalltalk recall"] >= 0.7
    smp_rows = {r for r, _ in evalsets._labels("smp2017.csv")}
    assert not smp_rows & {r for r, _ in evalsets._labels("smp2017_dev2.csv")}


@pytest.mark.skipif(not TEDDY.is_dir(), reason="shared evaluation data not present")
def test_routing_titles_macro_f1():
    texts, labels = read_table(TEDDY / "titles_train.csv", ["title"], "label")
    tr_x, te_x, tr_y, te_y = split(texts, labels, 0.2, 42)
    report = Router.train(tr_x, tr_y).evaluate(te_x, te_y)
    assert report.macro["f1"] >= 0.885  # measured 0.893; plain TF-IDF + LinearSVC baseline 0.884


@pytest.mark.skipif(not TEDDY.is_dir(), reason="shared evaluation data not present")
def test_routing_titles_no_offsets_fitted_to_noise(tmp_path: Path) -> None:
    """Seed 1's training split: per-category offsets gain 0.0056 macro-F1 on their own out-of-fold scores
    but lose on scores they were not searched on; kept, they cost 0.6 points on the test split (0.8732).
    Through the CLI, in a process of its own (other tests' jieba words change the features)."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "routing", "eval", str(TEDDY / "titles_train.csv"),
         "--text-column", "title", "--label-column", "label", "--seed", "1", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("BOT_")}, "BOT_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    macro_f1 = json.loads((tmp_path / "routing.json").read_text(encoding="utf-8"))["macro"]["f1"]
    assert macro_f1 >= 0.877  # measured 0.8796 (0.8732 with the offsets)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not TEDDY.is_dir(), reason="shared evaluation data not present")
def test_routing_messages_macro_f1(tmp_path: Path) -> None:
    """Through the CLI, in a process of its own: words other tests add to the shared jieba
    dictionary change the features (0.9196 after the whole suite against 0.924 alone)."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "routing", "eval", str(TEDDY / "messages_train.csv"),
         "--text-column", "title+text", "--label-column", "label", "--seed", "42", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=800,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("BOT_")}, "BOT_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    macro_f1 = json.loads((tmp_path / "routing.json").read_text(encoding="utf-8"))["macro"]["f1"]
    # measured 0.924 with per-category offsets (0.917 without); plain TF-IDF + LinearSVC 0.908 (aim 0.93)
    assert macro_f1 >= 0.92
