"""Questions that say what an entry says are answered, not offered choices (issue 13, round 5):
typos of the same sound below the word level (老年正 for 老年证, even before 在哪); questions still
declined when no entry answers them.

The questions here are written for these tests, apart from the evaluation sets."""

from __future__ import annotations

import pytest

from knowledge.base import KnowledgeBase

TYPOS = [
    # 正 for 证 before a question of where: 正在 is no word there
    ("老年正在哪办", "elderly-card"),
    ("居住正在哪办", "residence-permit-apply"),
    ("结婚正在哪领", "marriage-registration"),
]


@pytest.mark.parametrize(("text", "expected"), TYPOS, ids=[t for t, _ in TYPOS])
def test_same_sound_typo_is_answered(kb: KnowledgeBase, text: str, expected: str) -> None:
    answer = kb.answer(text)
    assert answer.kind == "answer", (answer.kind, [h.entry.id for h in answer.hits])
    assert answer.hits[0].entry.id == expected


@pytest.mark.parametrize("text", ["身份正在审核", "他正在哪呢", "房产正在哪办"])
def test_no_typo_invented_where_none_is(kb: KnowledgeBase, text: str) -> None:
    """正在 stays 正在 when no question of where follows; a misspelt word no entry covers is declined."""
    assert kb.answer(text).kind == "unknown"
