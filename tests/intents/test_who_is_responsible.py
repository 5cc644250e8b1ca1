"""Who is responsible, whom to turn to (归谁管, 谁负责, 找谁, 归哪个部门): asked about a kind of matter,
it is a question, answered without a clarifying question; told together with a concrete problem that
waits to be handled (…坏了三个月了没人修, 积水半尺深了), or after a named harm, it stays a report.

The sentences are written for this test (none is a training example). Before the examples of
intents/data/query.yml's block "who is responsible / whom to turn to" the questions went to
``complaint`` or to the 咨询办事 / 反映问题 clarifying question (老小区没物业有事找谁啊, asked by the
realistic mix, benchmarks/mix_questions.py)."""

from __future__ import annotations

import pytest

from intents.engine import IntentEngine

QUESTIONS = [
    "老小区没物业有事找谁啊",
    "没物业的小区归谁管呀",
    "小区下水道归谁管理呀",
    "暖气管道归谁维修",
    "小区水泵房归谁管",
    "楼顶的太阳能归谁负责",
    "居民楼的避雷设施谁负责检测",
    "老家属院现在归哪个单位管理啊",
]

REPORTS = [
    "小区的监控坏了三个月了一直没人修，到底谁负责",
    "地下车库积水半尺深了，物业说不归他们，我们该找谁",
    "单元门口的信报箱被砸烂了好久也没人管，归谁管啊",
    "村边的石料厂天天放炮把房子都震裂了，这归谁管？",
    "老家属院的路烂得没法走，单位说不归他们管，街道也不管",
]


@pytest.mark.parametrize("text", QUESTIONS)
def test_asking_who_is_responsible_is_a_question(engine: IntentEngine, text: str) -> None:
    result = engine.classify(text)
    assert (result.intent, result.decision) == ("query", "accept"), result.to_dict()


@pytest.mark.parametrize("text", REPORTS)
def test_a_concrete_problem_with_who_is_responsible_stays_a_report(engine: IntentEngine, text: str) -> None:
    result = engine.classify(text)
    assert (result.intent, result.decision) == ("complaint", "accept"), result.to_dict()
