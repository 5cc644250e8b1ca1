"""Questions that say what an entry says are answered, not offered choices (issue 13, round 5):
typos of the same sound below the word level (老年正 for 老年证, even before 在哪); questions still
declined when no entry answers them.

The questions here are written for these tests, apart from the evaluation sets."""

from __future__ import annotations

import pytest

from knowledge.base import KnowledgeBase
from tests.knowledge.conftest import run_kb

TYPOS = [
    # 正 for 证 before a question of where: 正在 is no word there
    ("老年正在哪办", "elderly-card"),
    ("居住正在哪办", "residence-permit-apply"),
    ("结婚正在哪领", "marriage-registration"),
    # 正 for 证 after a verb with its measure word (办个): the verb says how to get one, which the
    # entry on its benefits does not
    ("我想办个老年正", "elderly-card"),
    ("俺想办个残疾正", "disability-card-apply"),
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


EXACT = [
    # the first question of the entry's own 低保怎么申请？要哪些材料？, word for word
    ("低保怎么申请", "dibao-apply"),
    # politeness, particles and the way a question word is said make no difference
    ("请问低保怎么申请呢", "dibao-apply"),
    ("积分能干嘛呀", "points-rules"),
    ("老年证在哪里办啊", "elderly-card"),
    ("你好 居住证在哪办？谢谢", "residence-permit-apply"),
    # an alternative phrasing with its typo (低报) repaired
    ("低报怎么申请", "dibao-apply"),
]


@pytest.mark.parametrize(("text", "expected"), EXACT, ids=[t for t, _ in EXACT])
def test_question_said_as_a_phrasing_is_answered(kb: KnowledgeBase, text: str, expected: str) -> None:
    answer = kb.answer(text)
    assert answer.kind == "answer", (answer.kind, [h.entry.id for h in answer.hits])
    assert answer.hits[0].entry.id == expected


@pytest.mark.parametrize("text", ["要哪些材料", "多久发一次？"])
def test_a_follow_up_sentence_of_a_phrasing_is_no_direct_answer(kb: KnowledgeBase, text: str) -> None:
    """The second question of 低保怎么申请？要哪些材料？ names no topic: no entry's own phrasing."""
    assert kb.answer(text).kind != "answer"


def test_cli_search_answers_a_phrasing_said_word_for_word() -> None:
    result = run_kb("search", "低保怎么申请")
    assert result.returncode == 0, result.stderr
    assert "decision: answer" in result.stdout
    assert "dibao-apply" in result.stdout.splitlines()[1]


SPOKEN = [
    # a spouse or parent who 没了 / 不在了 at a clause's end has died
    ("俺老伴前些天没了 得办些啥手续", "proof-death"),
    ("俺爹不在了 户口咋销", "proof-death"),
    # how long it has been so (好几天, 好长时间) and that nobody sees to it (没人修) tell the story of a
    # complaint; they are no topic an entry must hold
    ("小区门口的路灯坏了好几天了 没人修", "streetlight-facility"),
    ("楼道让人堆满了破烂 好长时间了没人管", "corridor-clutter"),
    # whether something costs money, however it is said (收钱, 要钱 for 收费, 交钱)
    ("上夜校的课收钱不", "night-school-fee"),
    # can't find work (找不下工作, 寻不下营生) is looking for work
    ("俺闺女找不下工作 社区能帮着找找不", "job-seeking"),
    # an e-bike taken up to the flat, however it is carried, is charged indoors
    ("电瓶车能弄到楼上去充不", "ebike-indoor-charging-ban"),
    # helping out a family in trouble (帮衬帮衬, 接济) is relief
    ("家里着火了 啥都烧光了 社区能给帮衬帮衬不", "temporary-assistance"),
]


@pytest.mark.parametrize(("text", "expected"), SPOKEN, ids=[t for t, _ in SPOKEN])
def test_spoken_story_gets_the_right_entry(kb: KnowledgeBase, text: str, expected: str) -> None:
    answer = kb.answer(text)
    assert answer.kind != "unknown", text
    assert answer.hits[0].entry.id == expected, [h.entry.id for h in answer.hits]


@pytest.mark.parametrize("text", ["俺娘出门了 到现在人没了", "俺娘没了 到处找不到", "俺老伴的低保没了"])
def test_someone_missing_or_a_lost_payment_gets_no_death_procedures(kb: KnowledgeBase, text: str) -> None:
    assert all(h.entry.id != "proof-death" for h in kb.answer(text).hits)


def test_how_many_years_is_still_asked() -> None:
    """几年 asks a number (交了几年), unlike 好几年 (a story's duration)."""
    from knowledge.text import Analyzer

    analysis = Analyzer().analyse_query("俺养老保险交了几年 好几年没查了")
    assert "几年" in analysis.topic and "好几年" not in analysis.topic
