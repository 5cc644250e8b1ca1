"""The hazards' quick test (every alternative's first pattern in one expression) changes no answer."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from bot.services import hazards

REPO = Path(__file__).resolve().parents[2]


def test_the_joined_first_patterns_change_no_answer() -> None:
    rules = hazards.load()
    assert rules._any_first is not None
    slow = dataclasses.replace(rules)
    object.__setattr__(slow, "_any_first", None)
    texts: set[str] = set()
    for path in [*(REPO / "tests" / "conversations").glob("*.yml"), *(REPO / "intents" / "data").rglob("*.yml")]:
        texts.update(re.findall(r"[\u4e00-\u9fff0-9A-Za-z，。？！ ]{2,60}", path.read_text(encoding="utf-8")))
    found = 0
    for text in sorted(texts):
        hazard = rules.recognise(text)
        assert hazard == slow.recognise(text), text
        found += hazard is not None
    assert found >= 20  # the texts hold emergencies too


def test_patterns_that_cannot_be_joined_are_tried_one_by_one() -> None:
    rules = hazards.load()
    alt = hazards.Alternative((re.compile(r"(.)\1着火"),))
    odd = dataclasses.replace(rules, hazards=(dataclasses.replace(rules.hazards[0], when=(alt,)),))
    assert odd._any_first is None
    assert odd.recognise("快快着火了") is not None and odd.recognise("着火了") is None
