"""The search remembers its ranking per analysed question: questions that differ only in what the
analysis drops (greetings, 请问, thanks, punctuation) are ranked once, with the same hits as a
fresh knowledge base gives each of them; a change of vocabulary forgets what was remembered."""

from __future__ import annotations

from typing import Any

import pytest

from intents import tokens
from knowledge.base import KnowledgeBase
from knowledge.index import SearchIndex

# One request, said with different openings and endings (our own wording).
SAID = ["居住证明怎么开", "您好，请问居住证明怎么开？", "你好 居住证明怎么开 谢谢"]


def _hits(kb: KnowledgeBase, text: str) -> list[tuple[str, float, float]]:
    return [(h.entry.id, h.score, h.coverage) for h in kb.search(text, k=4)]


@pytest.fixture
def ranked(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The analyses that were ranked (not answered from memory)."""
    calls: list[Any] = []
    rank = SearchIndex._rank

    def counted(self: SearchIndex, q: Any, k: int) -> Any:
        calls.append(q)
        return rank(self, q, k)

    monkeypatch.setattr(SearchIndex, "_rank", counted)
    return calls


def test_same_request_ranked_once_with_a_fresh_base_hits(ranked: list[Any]) -> None:
    kb = KnowledgeBase.load()
    index = kb._state.index
    analyses = {index.analyzer.analyse_query(t, index.lexicon) for t in SAID}
    assert len(analyses) == 1  # the premise: the analysis drops the openings and endings
    hits = [_hits(kb, t) for t in SAID]
    assert len(ranked) == 1
    assert hits[0] and hits[0] == hits[1] == hits[2]
    for text, got in zip(SAID, hits, strict=True):
        assert _hits(KnowledgeBase.load(), text) == got  # as if asked first


def test_a_different_request_is_ranked_afresh(ranked: list[Any]) -> None:
    kb = KnowledgeBase.load()
    first, other = _hits(kb, SAID[0]), _hits(kb, "社保卡丢了怎么补办")
    assert len(ranked) == 2 and first != other


def test_callers_get_their_own_list(ranked: list[Any]) -> None:
    kb = KnowledgeBase.load()
    index = kb._state.index
    got = index.search(SAID[0], 4)
    got.clear()
    assert index.search(SAID[1], 4) and len(ranked) == 1


def test_vocabulary_change_forgets(ranked: list[Any]) -> None:
    kb = KnowledgeBase.load()
    before = _hits(kb, SAID[0])
    tokens.add_words(["乙丙丁戊己庚"])  # a word no question here holds: only the generation moves
    assert _hits(kb, SAID[1]) == before
    assert len(ranked) == 2
