from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from intents.engine import Classification, EngineConfig, IntentEngine
from intents.errors import TrainingDataError


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("为啥路灯一直不修？", "complaint"),
        ("俺家楼上漏水咋整", "complaint"),
        ("我的工单进度怎么样了", "complaint"),
        ("查进度", "complaint"),  # the bot itself tells residents to send this: never "not understood"
        ("机分咋查", "coupon"),
        ("社区超市的理发券怎么用", "coupon"),
        ("我想报名书法课", "course_booking"),
        ("下周的义诊还有号吗", "course_booking"),
        ("开居住证明要带什么", "query"),
        ("转人工", "handoff"),
        ("你好", "smalltalk"),
        ("明天北京天气怎么样", "fallback"),
        ("放一首周杰伦的歌", "fallback"),
    ],
)
def test_classifies_obvious_messages(engine, text, intent):
    c = engine.classify(text)
    assert isinstance(c, Classification)
    assert c.intent == intent, c.to_dict()
    assert c.decision in ("accept", "fallback")


def test_to_dict_is_json(engine):
    c = engine.classify("3号楼2单元501漏水，电话13812345678")
    d = c.to_dict()
    assert {"text", "intent", "confidence", "runner_up", "entities", "decision"} <= set(d)
    json.dumps(d, ensure_ascii=False)
    assert d["entities"]["phones"] == ["13812345678"]
    assert 0.0 <= d["confidence"] <= 1.0
    assert d["runner_up"][0] != d["intent"]


def test_empty_message_is_fallback(engine):
    c = engine.classify("   ")
    assert (c.intent, c.decision) == ("fallback", "fallback")


@pytest.mark.parametrize(
    ("ranked", "decision", "intent", "n_candidates"),
    [
        ([("complaint", 0.9), ("query", 0.05), ("fallback", 0.05)], "accept", "complaint", 0),
        ([("fallback", 0.9), ("complaint", 0.1)], "fallback", "fallback", 0),
        ([("complaint", 0.5), ("query", 0.45), ("fallback", 0.05)], "clarify", "complaint", 2),
        ([("complaint", 0.7), ("query", 0.6)], "clarify", "complaint", 2),  # inside the margin
        ([("complaint", 0.45), ("fallback", 0.4), ("query", 0.15)], "fallback", "fallback", 0),
        ([("complaint", 0.65), ("fallback", 0.3), ("query", 0.05)], "accept", "complaint", 0),
        ([("coupon", 0.4), ("course_booking", 0.3), ("query", 0.25), ("complaint", 0.05)], "clarify", "coupon", 3),
    ],
)
def test_decision_rule(engine, ranked, decision, intent, n_candidates):
    e = engine.with_config(threshold=0.6, margin=0.15, clarify_min=0.2, max_candidates=3)
    got_decision, got_intent, candidates = e.decide(ranked)
    assert (got_decision, got_intent, len(candidates)) == (decision, intent, n_candidates)
    assert all(label != "fallback" for label, _ in candidates)


def test_threshold_is_configurable(engine):
    text = "积分"
    assert engine.classify(text).decision == "accept"
    strict = engine.with_config(threshold=1.01, clarify_min=1.01)
    c = strict.classify(text)
    assert (c.decision, c.intent) == ("fallback", "fallback")
    assert c.raw_intent == "coupon"


def _without_evidence(data_dir: Path) -> None:
    registry = data_dir / "intents.yml"
    text = registry.read_text(encoding="utf-8")
    registry.write_text(re.sub(r"(?m)^    evidence: .*\n(?: {8,}\S.*\n)*", "", text), encoding="utf-8")
    assert "evidence:" not in registry.read_text(encoding="utf-8").split("intents:", 1)[1]


def test_in_domain_evidence_keeps_an_unfamiliar_phrasing_in_scope(engine, data_copy: Path):
    """打开优惠券 is phrased like a voice-assistant command (open an app): the scope model puts it out of
    scope with a probability between the two thresholds, but 优惠券 is one of the coupon intent's evidence
    words in the registry, so the resident gets the coupons."""
    c = engine.classify("打开优惠券")
    assert engine.config.scope_threshold <= c.out_of_scope < engine.config.evidence_scope_threshold
    assert (c.intent, c.decision) == ("coupon", "accept"), c.to_dict()
    assert engine.with_config(evidence_scope_threshold=0.0).classify("打开优惠券").intent == "fallback"
    _without_evidence(data_copy)
    assert IntentEngine.load(data_copy).classify("打开优惠券").intent == "fallback"
    # an evidence word does not keep in scope what the scope model is sure of
    c = engine.classify("打开淘宝看看优惠券")
    assert c.out_of_scope >= engine.config.evidence_scope_threshold and c.intent == "fallback"


def test_evidence_words_belong_to_in_scope_intents(data_copy: Path):
    registry = data_copy / "intents.yml"
    text = registry.read_text(encoding="utf-8")
    registry.write_text(text.replace("    kind: out_of_scope", "    kind: out_of_scope\n    evidence: [天气]"),
                        encoding="utf-8")
    with pytest.raises(TrainingDataError, match="out-of-scope intent has no 'evidence' words"):
        IntentEngine.load(data_copy)


def test_load_with_config(data_copy: Path):
    e = IntentEngine.load(data_copy, EngineConfig(threshold=0.9))
    assert e.config.threshold == 0.9
    assert set(e.intents) == {"complaint", "coupon", "course_booking", "query", "smalltalk", "handoff", "fallback"}


def _break(path: Path) -> int:
    """Append a malformed YAML line; return its 1-based line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.append("- [unclosed")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def test_malformed_file_names_file_and_line_and_old_model_keeps_serving(data_copy: Path):
    e = IntentEngine.load(data_copy)
    before = e.classify("我想报名书法课").intent
    line = _break(data_copy / "coupon.yml")
    with pytest.raises(TrainingDataError) as info:
        e.reload()
    message = str(info.value)
    assert "coupon.yml" in message
    assert f":{line}" in message or f":{line + 1}" in message
    assert e.classify("我想报名书法课").intent == before


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("intent: coupon\nexamples: 积分\n", "coupon.yml:2"),
        ("intent: coupon\nexamples:\n  - 积分\n  - {a: b}\n", "coupon.yml:4"),
        ("intent: coupon\nexample:\n  - 积分\n", "coupon.yml:2"),
        ("", "coupon.yml:1"),
    ],
)
def test_structural_errors_name_line(data_copy: Path, content, needle):
    (data_copy / "coupon.yml").write_text(content, encoding="utf-8")
    with pytest.raises(TrainingDataError, match=needle.replace(".", r"\.")):
        IntentEngine.load(data_copy)


def test_reload_picks_up_new_examples(data_copy: Path):
    e = IntentEngine.load(data_copy)
    text = "咕噜咕噜小火车呜呜呜"
    assert e.classify(text).intent != "course_booking"
    path = data_copy / "course_booking.yml"
    extra = "".join(f"- {text}{suffix}\n" for suffix in ("", "吧", "呀", "哦", "啊", "嘛", "呢", "哈"))
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    e.reload()
    assert e.classify(text).intent == "course_booking"


def test_hot_reload_under_concurrent_classification(data_copy: Path):
    e = IntentEngine.load(data_copy)
    texts = ["为啥路灯一直不修", "机分咋查", "我想报名书法课", "开居住证明要带什么", "转人工", "今天天气"]
    expected = {t: e.classify(t).intent for t in texts}
    stop = threading.Event()
    errors: list[BaseException] = []
    mismatches: list[tuple[str, str]] = []
    counts = [0]

    def worker() -> None:
        while not stop.is_set():
            for t in texts:
                try:
                    c = e.classify(t)
                except BaseException as exc:  # pragma: no cover - the assertion reports it
                    errors.append(exc)
                    return
                counts[0] += 1
                if c.intent != expected[t]:
                    mismatches.append((t, c.intent))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for th in threads:
        th.start()
    try:
        for _ in range(3):
            e.reload()
        line = _break(data_copy / "smalltalk.yml")
        with pytest.raises(TrainingDataError, match=f"smalltalk.yml:({line}|{line + 1})"):
            e.reload()
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert not errors
    assert not mismatches
    assert counts[0] > 0


def test_packaged_training_data_has_no_duplicates_or_conflicts():
    """`intents check` flags nothing on the packaged data; messages of punctuation only (…, ？？？, 。。。)
    are different examples, not one empty text repeated."""
    from intents.dataset import load_dir
    from intents.evaluate import check_training_data

    result = check_training_data(load_dir())
    assert not result.duplicates and not result.conflicts, result.text()
