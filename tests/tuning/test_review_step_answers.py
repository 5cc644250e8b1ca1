"""The review queue leaves out a resident's answers to the bot's own questions when they then ask for
a person: the place and the phone a report asked for, then 转人工, are no misunderstood messages
(the intent engine never judged them); a message the engine did judge, then 转人工, still is."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.tuning.test_tuning_api import say


async def test_step_answers_before_a_handoff_are_not_reviewed(api: Api) -> None:
    openid = "oTuningApi0000000000000041"
    assert "位置" in await say(api, "楼道的灯坏了好几天了", openid)
    assert "电话" in await say(api, "12号楼3单元", openid)
    await say(api, "13800001111", openid)
    other = "oTuningApi0000000000000042"
    await say(api, "我家那个东西又不行了", other)
    await say(api, "转人工", other)
    await say(api, "转人工", openid)
    queue = await api.ok("/tuning/review", "operator", kind="intent")
    texts = {i["text"]: g["reasons"] for g in queue["groups"] for i in g["items"]}
    assert "12号楼3单元" not in texts and "138****1111" not in texts, texts
    assert "handoff" in texts.get("我家那个东西又不行了", {}), texts


async def test_an_answer_to_the_phone_question_is_not_reviewed(api: Api) -> None:
    """不留 at "请留一个联系电话" is taken by the report's step (the engine reads it as unsure small
    talk): an answer to the bot's own question, not a message the bot understood poorly."""
    openid = "oTuningApi0000000000000043"
    assert "电话" in await say(api, "5号楼楼道灯坏了 黑乎乎的", openid)
    assert "GD" in await say(api, "不留", openid)
    other = "oTuningApi0000000000000044"
    await say(api, "不留", other)  # the same words with no question asked: still the engine's to judge
    queue = await api.ok("/tuning/review", "operator", kind="intent")
    items = [i for g in queue["groups"] for i in g["items"] if i["text"] == "不留"]
    assert [i["count"] for i in items] == [1], items
