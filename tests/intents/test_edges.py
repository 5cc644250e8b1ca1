"""Edge features: the first and last words of a message are features of the intent head only
(intents.scope.edge_features, EngineConfig.edges); the scope decision is exactly the one without them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from intents import evalsets
from intents.engine import EngineConfig, IntentEngine
from intents.features import FeatureConfig, extract
from intents.scope import edge_features

MESSAGES = [t for t, _ in evalsets.written_rows()[::7]] + [
    "今天天气怎么样", "放一首周杰伦的歌", "你好", "转人工", "积分", "楼道灯坏了", "请问社保断缴了怎么补",
    "小区物业乱收费何时休", "合理吗？", "！！",
]


@pytest.fixture(scope="module")
def without_edges() -> IntentEngine:
    return IntentEngine.load(config=replace(EngineConfig(), edges=""))


def test_the_engine_learns_from_edges_by_default() -> None:
    assert EngineConfig().edges == "first-last2"


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(word_bigrams=False), FeatureConfig(char_min=2)])
def test_edge_features_are_the_first_and_last_words(config: FeatureConfig) -> None:
    for text in ["请问 社保 断缴了怎么补", "小区物业乱收费何时休", "积分", "？？", ""]:
        feats = extract(text, config)
        words = [f[1:] for f in feats if f.startswith("w")]
        expected = []
        if words:
            expected = ["E" + words[-1]]
            if len(words) > 1:
                expected.append("E" + words[-2] + "_" + words[-1])
            expected.append("S" + words[0])
        assert edge_features(feats, "first-last2") == expected
        assert edge_features(feats, "last") == expected[:1]
        assert edge_features(feats, "") == []


def test_the_scope_decision_is_the_one_without_edges(engine: IntentEngine, without_edges: IntentEngine) -> None:
    """Where a message's words stand says what it wants, not whether it is for this assistant: the
    out-of-scope probability is the same with and without edge features (up to the solver's rounding:
    the columns come in another order; 0.0015 at most seen on the packaged data), one message at a time
    and in a batch, while the intent probabilities differ."""
    assert engine.config.edges and not without_edges.config.edges
    one = [engine.classify(t).out_of_scope for t in MESSAGES]
    assert one == pytest.approx([without_edges.classify(t).out_of_scope for t in MESSAGES], abs=3e-3)
    many = [c.out_of_scope for c in engine.classify_many(MESSAGES)]
    assert many == pytest.approx(one, abs=1e-9)
    p_in = [engine.classifier.proba(t)[1] for t in MESSAGES]
    p_in_without = [without_edges.classifier.proba(t)[1] for t in MESSAGES]
    assert max(abs(a - b) for pa, pb in zip(p_in, p_in_without, strict=True) for a, b in zip(pa, pb, strict=True)) > 0.05


def test_one_message_and_a_batch_agree(engine: IntentEngine) -> None:
    for text, batch in zip(MESSAGES, engine.classify_many(MESSAGES), strict=True):
        single = engine.classify(text)
        assert (single.intent, single.decision) == (batch.intent, batch.decision)
        assert single.confidence == pytest.approx(batch.confidence, abs=1e-9)
