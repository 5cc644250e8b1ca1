"""A classifier keeps the probabilities of texts it scored: the same answer again, computed afresh
once the tokenizer has learnt words (a text may then be cut differently)."""

from __future__ import annotations

import pytest

from intents import tokens
from intents.engine import IntentEngine
from intents.scope import ScopedClassifier


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


def test_texts_differing_only_in_digits_share_one_answer(engine: IntentEngine) -> None:
    """Digits are folded before a message is cut, so two phone numbers (or 3号楼 / 5号楼) score alike:
    the second is a look-up, with the answer it would have had on its own."""
    classifier = engine.classifier
    classifier._answers = {}
    pairs = [("13800000017", "13911112222"), ("3号楼电梯又停了", "5号楼电梯又停了"), ("12号楼", "27号楼"), ("GD20261207", "GD20250101")]
    for first, second in pairs:
        assert classifier.proba(first) == (lambda r: (r[0], list(r[1])))(classifier._proba(first))
        assert classifier.proba(second) == (lambda r: (r[0], list(r[1])))(classifier._proba(second))
    assert len(classifier._answers) == len(pairs)


def test_a_synonym_with_a_digit_keeps_digits_apart(engine: IntentEngine) -> None:
    """A synonym is rewritten before the digits are folded: with one that holds a digit, texts that
    differ only in their digits may be cut differently, so each is scored on its own."""
    base = engine.classifier
    classifier = ScopedClassifier(
        base.vocab, base.scope, base.intent, base.out_label, base.feature_config, base.sublinear_tf,
        {**base.synonyms, "我想12": "今天天气"}, base.edges, base._edge_columns,
    )
    one, other = "我想12号楼电梯坏了", "我想13号楼电梯坏了"
    assert classifier._proba(one) != classifier._proba(other)  # the synonym makes them differ
    for text in (one, other):
        assert classifier.proba(text) == (lambda r: (r[0], list(r[1])))(classifier._proba(text))


def test_a_question_said_with_other_openings_is_cut_once_without_them(
    engine: IntentEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scope decision and half the intent decision are the message's without its opening (请问,
    想问问, 您好，请问): said again with another opening, that part is remembered and only the whole
    message is cut and scored afresh, to the probabilities it would have had on its own."""
    import intents.features as features

    classifier = engine.classifier
    said = ["请问老年证在哪办理呀", "想问问老年证在哪办理呀", "您好，请问老年证在哪办理呀", "老年证在哪办理呀"]
    alone = []
    for text in said:
        classifier._answers, classifier._bodies = {}, {}
        alone.append(classifier.proba(text))
    classifier._answers, classifier._bodies = {}, {}
    cut: list[str] = []
    real = features.cut
    monkeypatch.setattr(features, "cut", lambda text, **kw: cut.append(text) or real(text, **kw))
    assert [classifier.proba(text) for text in said] == alone
    # one cut of 老年证在哪办理呀 and one of each whole message with an opening (it was two each)
    assert len(cut) == 4 and cut.count("老年证在哪办理呀") == 1
