from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.base import Answer, KnowledgeBase
from knowledge.entries import load_entries
from knowledge.evaluation import DEFAULT_EVAL_FILE, evaluate, load_questions

DEV_FILE = DEFAULT_EVAL_FILE.parent / "dev.yml"


def test_loads_the_starting_set(kb: KnowledgeBase) -> None:
    assert len(kb) >= 120
    assert len(kb.entries) == len(kb)
    ids = [e.id for e in kb.entries]
    assert len(ids) == len(set(ids))
    for e in kb.entries:
        assert e.question and e.answer and e.department and e.reviewed
        assert len(e.answer) <= 300
        assert len(e.alternatives) >= 4


def test_get(kb: KnowledgeBase) -> None:
    entry = kb.get("proof-residence")
    assert entry is not None and "居住证明" in entry.question
    assert kb.get("no-such-entry") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("俺想问下咋开居住证明", "proof-residence"),
        ("暖气一点也不热了找谁", "heating-not-warm"),
        ("低保申请要带哪些材料", "dibao-apply"),
    ],
)
def test_clear_questions_are_answered(kb: KnowledgeBase, text: str, expected: str) -> None:
    answer = kb.answer(text)
    assert answer.kind == "answer"
    assert answer.hits[0].entry.id == expected


def test_close_entries_offer_the_best_first(kb: KnowledgeBase) -> None:
    # 低保 "how to apply" and "who may apply" both hold the question: choices, the apply entry first.
    answer = kb.answer("低宝咋申请")
    assert answer.kind in ("answer", "choices")
    assert answer.hits[0].entry.id == "dibao-apply"


def test_ambiguous_question_offers_choices(kb: KnowledgeBase) -> None:
    answer = kb.answer("积分")
    assert answer.kind == "choices"
    assert 1 < len(answer.hits) <= 3
    assert all(h.entry.id.startswith("points-") for h in answer.hits)
    scores = [h.score for h in answer.hits]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("text", ["明天大同天气怎么样", "给我讲个笑话", "", "   ", "？？？", "港澳通行证在哪办"])
def test_unanswerable_questions_get_unknown(kb: KnowledgeBase, text: str) -> None:
    assert kb.answer(text) == Answer("unknown", [])


@pytest.mark.parametrize(
    "text",
    [
        # The sentence frame of a real entry (…到期了怎么换证, …怎么办理, …在哪办) with a topic
        # no entry covers: no answer, and no choices of entries that merely share the frame.
        "驾照到期了怎么换证",
        "房产证怎么办理",
        "护照在哪里办",
        "社区图书室周末几点开门",
        "驾驶证丢了怎么补办",
    ],
)
def test_uncovered_topic_in_a_familiar_frame_gets_unknown(kb: KnowledgeBase, text: str) -> None:
    answer = kb.answer(text)
    assert (answer.kind, answer.hits) == ("unknown", [])


def test_shared_frame_keeps_the_right_entry_in_sight(kb: KnowledgeBase) -> None:
    # 商家 + 积分 + 兑换 is also the coupon entry's wording ("兑换商家优惠券"): the merchant entry
    # stays among the first five; the share of confident wrong answers is bounded by the eval tests.
    assert "merchant-join" in [h.entry.id for h in kb.search("商家咋参加积分兑换", k=5)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The generic "how to apply" entry, not a sub-case (payment, replacement) ...
        ("高龄补贴怎么申请", "elderly-allowance"),
        ("老年证怎么办理", "elderly-card"),
        # ... unless the question names the sub-case.
        ("高龄补贴什么时候发", "elderly-allowance-payment"),
        ("老年证丢了怎么补办", "elderly-card-replace"),
    ],
)
def test_generic_entry_preferred_unless_sub_case_named(kb: KnowledgeBase, text: str, expected: str) -> None:
    answer = kb.answer(text)
    assert answer.kind == "answer"
    assert answer.hits[0].entry.id == expected


def test_hits_report_topic_coverage(kb: KnowledgeBase) -> None:
    hits = kb.search("老年证丢了怎么补办", k=3)
    assert hits[0].coverage == 1.0
    assert all(0.0 < h.coverage <= 1.0 for h in hits)
    assert kb.search("护照", k=3) == []


def test_scores_are_normalised_and_ordered(kb: KnowledgeBase) -> None:
    for text in ["居住证明", "电动车能不能上楼充电", "夜校", "完全无关的句子比如火星探测"]:
        hits = kb.search(text, k=5)
        assert all(0.0 <= h.score <= 1.0 for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert kb.search("居住证明", k=0) == []


def test_eval_set_targets(kb: KnowledgeBase) -> None:
    """The figures the issue asks for, on the shipped evaluation set."""
    questions = load_questions(DEFAULT_EVAL_FILE)
    assert sum(q.expected is not None for q in questions) >= 300
    assert sum(q.expected is None for q in questions) >= 100
    report = evaluate(kb, questions)
    assert report.top1 >= 0.90
    assert report.recall_at_3 >= 0.97
    assert report.unknown_recall >= 0.90
    assert report.right_entry >= 0.82
    assert report.false_unknown <= 0.12
    assert report.confident_wrong_rate <= 0.02
    assert report.sensitive_offered == 0


def test_dev_set_targets(kb: KnowledgeBase) -> None:
    """The same targets on the development set written after the first tuning (fresh paraphrases)."""
    questions = load_questions(DEV_FILE)
    assert sum(q.expected is not None for q in questions) >= 150
    assert sum(q.expected is None for q in questions) >= 80
    report = evaluate(kb, questions)
    assert report.top1 >= 0.90
    assert report.recall_at_3 >= 0.97
    assert report.unknown_recall >= 0.90
    assert report.right_entry >= 0.85
    assert report.false_unknown <= 0.10
    assert report.confident_wrong_rate <= 0.02
    assert report.sensitive_offered == 0


RESIDENTS_FILES = [DEV_FILE.parent / "residents_dev.yml", DEV_FILE.parent / "residents_heldout.yml"]


@pytest.mark.parametrize(
    "path", [DEFAULT_EVAL_FILE, DEV_FILE, *RESIDENTS_FILES], ids=["questions", "dev", "residents_dev", "heldout"]
)
def test_eval_questions_are_not_copies_of_entry_phrasings(path: Path) -> None:
    phrasings = {"".join(p.split()).strip("？?。") for e in load_entries() for p in e.phrasings}
    labels = {e.id for e in load_entries()}
    for q in load_questions(path):
        assert "".join(q.text.split()).strip("？?。") not in phrasings, q.text
        assert q.expected is None or q.expected in labels, q.expected
