"""A question's analysis is cut once per reduced request: questions that differ only in what the
reduction drops (greetings, 请问, thanks, punctuation) share one analysis, the one a fresh analyser
gives each of them; their hits are made once, and every caller gets its own list; a change of
vocabulary forgets what was remembered."""

from __future__ import annotations

from intents import tokens
from knowledge.base import KnowledgeBase
from knowledge.text import Analyzer, load_synonyms

# One request, said with different openings and endings (our own wording).
SAID = ["低保怎么申请", "您好，请问低保怎么申请？", "麻烦问下低保怎么申请 谢谢"]


def test_same_request_cut_once_as_a_fresh_analyser_cuts_it(kb: KnowledgeBase) -> None:
    index = kb._state.index
    analyses = [index.analyzer.analyse_query(t, index.lexicon) for t in SAID]
    assert analyses[0] is analyses[1] is analyses[2]
    for text, got in zip(SAID, analyses, strict=True):
        assert Analyzer(load_synonyms()).analyse_query(text, index.lexicon) == got  # as if asked first
    other = index.analyzer.analyse_query("社保卡丢了怎么补办", index.lexicon)
    assert other != analyses[0]


def test_hits_made_once_and_callers_get_their_own_list(kb: KnowledgeBase) -> None:
    first = kb.search(SAID[0], k=4)
    assert first
    first.clear()
    again = kb.search(SAID[1], k=4)
    assert again and all(a is b for a, b in zip(again, kb.search(SAID[2], k=4), strict=True))
    assert [h.entry.id for h in again] == [h.entry.id for h in KnowledgeBase.load().search(SAID[2], k=4)]


def test_vocabulary_change_forgets(kb: KnowledgeBase) -> None:
    index = kb._state.index
    before = index.analyzer.analyse_query(SAID[0], index.lexicon)
    assert index.analyzer.analyse_query(SAID[1], index.lexicon) is before
    tokens.add_words(["甲乙丙丁戊己"])  # a word no question here holds: only the generation moves
    after = index.analyzer.analyse_query(SAID[1], index.lexicon)
    assert after == before and after is not before
