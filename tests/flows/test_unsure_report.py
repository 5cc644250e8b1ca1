"""A message the intent engine reads as a report without being sure, that names nothing reports are
about (a voice assistant's query: a line of a poem, a film's name, 这么任性), gets the clarifying
question with 反映问题 first, not the report's place question; a real report is one reply away.

The engine's reading is pinned per text (the model changes with its training data); the messages go
through /wechat as WeChat sends them. The texts are written for this test."""

from __future__ import annotations

from tests.flows.test_language_in_chat import pin, say

UNSURE_ACCEPT = {"decision": "accept", "intent": "complaint", "raw_intent": "complaint", "confidence": 0.66,
                 "candidates": [], "runner_up": ("smalltalk", 0.2)}
UNSURE_CLARIFY = {"decision": "clarify", "intent": "complaint", "raw_intent": "complaint", "confidence": 0.3,
                  "candidates": [("complaint", 0.3), ("query", 0.2)], "runner_up": ("query", 0.2)}
SURE = {"decision": "accept", "intent": "complaint", "raw_intent": "complaint", "confidence": 0.95,
        "candidates": [], "runner_up": ("fallback", 0.03)}


async def test_unsure_report_naming_nothing_is_asked_about_not_placed(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    pin(svc, {"花儿为啥这样红": UNSURE_ACCEPT, "猜心思的大师": UNSURE_CLARIFY, "楼道灯又不亮了": UNSURE_CLARIFY,
              "河边的柳树": SURE})
    reply = await say(svc, "o_ur1", "花儿为啥这样红")
    assert "您是想" in reply and "反映问题" in reply and "随便聊聊" in reply, reply
    assert "具体位置" not in reply and "几号楼" not in reply, reply
    # a real report is one reply away, and then asked as before
    assert "具体位置" in await say(svc, "o_ur1", "1")

    reply = await say(svc, "o_ur2", "猜心思的大师")
    assert "您是想" in reply and "反映问题" in reply and "咨询办事" in reply, reply
    assert "具体位置" not in reply, reply

    # unsure, but naming a problem: a report, asked where as before
    assert "具体位置" in await say(svc, "o_ur3", "楼道灯又不亮了")
    # a report the engine is sure of is asked where as before, however few its words
    assert "具体位置" in await say(svc, "o_ur4", "河边的柳树")
