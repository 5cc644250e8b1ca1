"""A request judged with the topic told before it, and a question split between entries (issue 13).

Elderly residents tell a story, name the thing early and ask at the end with a word that points back
at it (这个卡去哪补, 这个证去哪办, 这个去哪申请): the request is judged as asking about that thing. A
question whose distinguishing words no single entry holds (住院医保怎么报销: 住院 only in an
alternative of the entry on seeing a doctor elsewhere, 报销 in the chronic-illness entry's question)
gets no confident answer.

The questions here are written for these tests, apart from the evaluation sets."""

from __future__ import annotations

import pytest

from knowledge.base import KnowledgeBase
from knowledge.question import reduce_message

POINTING_BACK = [
    ("上礼拜去银行取钱 才发现社保卡不见了 家里也翻遍了 这个卡在哪补办", "social-security-card"),
    ("我外孙腿有毛病 走路一瘸一拐的 大夫说能办残疾证 这个证要去哪办", "disability-card-apply"),
    ("我家那口子腰不好 在家躺了半年 听邻居说可以申请低保 这个要带啥材料", "dibao-apply"),
]


@pytest.mark.parametrize(("text", "expected"), POINTING_BACK, ids=[e for _, e in POINTING_BACK])
def test_request_pointing_back_is_judged_with_its_topic(kb: KnowledgeBase, text: str, expected: str) -> None:
    """The story named the thing, the request points back at it: the reply gives that entry."""
    answer = kb.answer(text)
    assert answer.kind in ("answer", "choices") and answer.hits[0].entry.id == expected, (answer.kind, answer.hits)


def test_reference_said_as_the_thing_named() -> None:
    """这个卡 after 社保卡 is the 社保卡; the request alone is the focus, not the clause before it."""
    named = {"到了才发现社保卡没带": ["社保卡"]}
    reduced = reduce_message("到了才发现社保卡没带 估计是丢了 这个卡去哪补", lambda c: named.get(c, []))
    assert reduced.focus == "社保卡去哪补"
    # without knowing what the story names, the short request leans on the clause before it
    assert reduce_message("到了才发现社保卡没带 估计是丢了 这个卡去哪补").focus == "估计是丢了 这个卡去哪补"


def test_question_split_between_entries_gets_no_confident_answer(kb: KnowledgeBase) -> None:
    answer = kb.answer("住院医保怎么报销")
    assert answer.kind != "answer", answer.hits
    # the entry is still offered, and it answers when the question says it is about elsewhere
    assert [h.entry.id for h in answer.hits][:1] == ["medical-insurance-offsite"]
    for text in ("在外地住院医保能报吗", "我在外地住院了医保能报销吗要备案不"):
        said = kb.answer(text)
        assert said.kind == "answer" and said.hits[0].entry.id == "medical-insurance-offsite", text


def test_story_words_do_not_decide_against_the_request(kb: KnowledgeBase) -> None:
    """The story tells of the card's benefits, the request asks how to get one: the benefits entry,
    ahead on the story's words, is no confident answer; the how-to-get entry is offered too."""
    answer = kb.answer("我下个月就满六十了 楼里的老姐妹都办了老年证 坐公交逛公园都不花钱 我也想办一个 要带什么去办")
    assert answer.kind == "choices", answer.hits
    assert "elderly-card" in [h.entry.id for h in answer.hits]


def test_how_the_writer_feels_is_no_part_of_the_request() -> None:
    """急死了 / 愁坏了 after the request say how the writer feels; they are no topic words."""
    assert reduce_message("俺孙子叫邻家狗咬了一口 出了点血 去哪打针嘞 急死了").focus == "出了点血 去哪打针嘞"
    assert reduce_message("俺家暖气不热 愁坏了 找谁修").text == "俺家暖气不热 找谁修"
