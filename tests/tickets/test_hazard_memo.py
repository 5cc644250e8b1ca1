"""recognise() keeps its answers per text: the same answers, asked again without a search, bounded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.services import hazards

REPO = Path(__file__).resolve().parents[2]


def test_answers_kept_are_the_answers_worked_out() -> None:
    rules = hazards.load()
    texts: set[str] = set()
    for path in (REPO / "tests" / "conversations").glob("*.yml"):
        texts.update(re.findall(r"[\u4e00-\u9fff0-9A-Za-z，。？！ ]{2,60}", path.read_text(encoding="utf-8")))
    found = 0
    for _ in range(2):  # the second time from what was kept
        for text in sorted(texts):
            hazard = rules.recognise(text)
            assert hazard == rules._recognise(text), text
            found += hazard is not None
    assert found >= 20


def test_a_text_seen_is_not_searched_again_and_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = hazards.load()
    searched: list[str] = []
    real = hazards.HazardRules._recognise

    def counting(self: hazards.HazardRules, text: str) -> hazards.Hazard | None:
        searched.append(text)
        return real(self, text)

    monkeypatch.setattr(hazards.HazardRules, "_recognise", counting)
    gas = rules.recognise("厨房煤气泄漏了好大味道")
    assert gas is not None and rules.recognise("厨房煤气泄漏了好大味道") is gas
    assert rules.recognise("谢谢") is None and rules.recognise("谢谢") is None
    assert searched == ["厨房煤气泄漏了好大味道", "谢谢"]
    long = "楼道" * hazards.SEEN_LONGEST
    rules.recognise(long)
    rules.recognise(long)
    assert searched.count(long) == 2  # long texts are not kept
    monkeypatch.setattr(hazards, "SEEN_TEXTS", 3)
    for text in ("一", "二", "三", "四"):
        rules.recognise(text)
    assert len(rules._seen) <= 3
