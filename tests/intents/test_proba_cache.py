"""A classifier keeps the probabilities of texts it scored: the same answer again, computed afresh
once the tokenizer has learnt words (a text may then be cut differently)."""

from __future__ import annotations

from intents import tokens
from intents.engine import IntentEngine


def test_a_text_scored_again_gets_the_same_probabilities(engine: IntentEngine) -> None:
    classifier = engine.classifier
    for text in ["你好", "我还有多少积分", "3号楼电梯又停了", "怎么开居住证明", "今天天气怎么样"]:
        fresh = classifier._proba(text)
        first = classifier.proba(text)
        again = classifier.proba(text)
        assert first == again == (fresh[0], list(fresh[1]))
        again[1][0] = -1.0  # a caller's list is its own
        assert classifier.proba(text) == first


def test_words_taught_to_the_tokenizer_drop_what_was_kept(engine: IntentEngine) -> None:
    classifier = engine.classifier
    text = "我想报名蜡染扎染体验课"
    classifier.proba(text)
    before = tokens.generation()
    tokens.add_words(["蜡染扎染体验课"])
    assert tokens.generation() != before
    assert classifier.proba(text) == (lambda r: (r[0], list(r[1])))(classifier._proba(text))
    assert text not in classifier._answers or classifier._answers_generation == tokens.generation()
