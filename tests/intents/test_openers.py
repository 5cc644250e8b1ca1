"""A greeting or an "I'd like to ask" opening does not decide a message's intent (issue 13)."""

from __future__ import annotations

import pytest

from intents.features import FeatureConfig, extract, strip_openers


@pytest.mark.parametrize(("text", "stripped"), [
    ("你好，高龄补贴怎么申请", "高龄补贴怎么申请"),
    ("想咨询一下 我家楼上漏水怎么办", "我家楼上漏水怎么办"),
    ("您好，我想咨询一下，社保卡怎么补", "社保卡怎么补"),
    ("你好请问低保怎么申请", "请问低保怎么申请"),  # a bare 请问 stays: real titles ask with it
    ("请问一下 夜校几点上课", "夜校几点上课"),
    ("在吗 我要报修", "我要报修"),
    ("你好", "你好"),  # nothing follows
    ("你好，在吗", "在吗"),
    ("我想咨询一下", "我想咨询一下"),
    ("咨询养老保险缴费情况", "咨询养老保险缴费情况"),  # a title's 咨询 is what it wants
])
def test_strip_openers(text, stripped):
    assert strip_openers(text) == stripped


def test_only_the_intent_engine_strips():
    """Routing's features (the default config) keep the whole text."""
    assert "c你好" in extract("你好，楼道灯坏了", FeatureConfig())
    assert "c你好" not in extract("你好，楼道灯坏了", FeatureConfig(strip_openers=True))


@pytest.mark.parametrize(("text", "intent"), [
    ("想咨询一下 积分明细在哪里查", "coupon"),  # query before: 咨询 decided it
    ("想咨询一下 今天股市咋样", "fallback"),  # query before
    ("你好，交医保", "query"),  # smalltalk before: 你好 decided it
    ("我想咨询下个人续保的问题", "query"),  # the opening still counts for half: not a complaint
    ("我想问一下 有线电视怎么报停", "query"),  # fallback before
])
def test_an_opening_does_not_decide(engine, text, intent):
    assert engine.classify(text).intent == intent


def test_a_service_named_is_not_asked_about_against_a_person(engine):
    """Only the service's own words (高龄补贴) are named and the alternative is asking for a person
    (让人上门, whose words 转人工/工作人员 are not named): the service, without a clarifying question."""
    for text in ("我腿脚不好 能不能让人上门帮我办个高龄补贴", "我走不动路 能不能派人来家里办残疾证"):
        c = engine.classify(text)
        assert (c.intent, c.decision) == ("query", "accept"), text
        # The evidence rule never turns it into anything else (the model alone may be sure by now).
        assert engine.with_config(evidence_decides=False).classify(text).intent == "query", text


GRIEVANCE_WORDS = ("扰民", "污染", "乱收费", "违规", "拖欠", "偷排", "隐患", "举报", "反映", "强烈要求", "不合理",
                   "谁来管", "讨要", "克扣", "敲诈")


def test_grievance_words_are_evidence_a_voice_assistant_never_hears(engine):
    """Complaints name grievances (扰民, 乱收费, 拖欠 …): evidence of the complaint service, so a title
    such as a report of a polluting factory is not put out of scope by the scope head's doubt alone.
    None of them is in an out-of-scope training example or in a voice-assistant query of smp2017."""
    from .conftest import SHARED

    complaint = engine.registry.get("complaint")
    assert complaint is not None and set(GRIEVANCE_WORDS) <= set(complaint.evidence)
    out = [e.text for e in engine.training_data.examples if e.intent == "fallback"]
    assert not [(w, t) for w in GRIEVANCE_WORDS for t in out if w in t]
    smp = SHARED / "smp2017" / "train.jsonl"
    if smp.is_file():
        text = smp.read_text(encoding="utf-8")
        assert not [w for w in GRIEVANCE_WORDS if w in text]
