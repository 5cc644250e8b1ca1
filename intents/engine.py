"""The intent engine facade used by the bot: classify a message, decide, extract entities, hot-reload.

Decision rule (all thresholds in :class:`EngineConfig`):

* top label is ``fallback`` → ``fallback``;
* top confidence ≥ ``threshold`` and ahead of the runner-up by ≥ ``margin`` → ``accept``;
* otherwise, if at least two non-fallback labels have confidence ≥ ``clarify_min`` → ``clarify``
  (``candidates`` lists them, best first, for a numbered clarifying question);
* otherwise, confident enough (≥ ``threshold``, runner-up is ``fallback``) → ``accept``; else ``fallback``.

``Classification.intent`` is the label to act on: the top label for ``accept`` and ``clarify`` (the best
guess), ``"fallback"`` for ``fallback``. ``raw_intent`` is always the top label before thresholds.

Thread safety: a trained model is immutable; :meth:`IntentEngine.reload` builds a complete new one and
swaps a single reference, so concurrent :meth:`classify` calls see either the old or the new model.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from intents.classifier import LinearTextClassifier, ModelConfig
from intents.dataset import CORE_INTENTS, TrainingData, load_dir
from intents.entities import Entities, EntityExtractor
from intents.features import FeatureConfig
from intents.tokens import add_words

Decision = Literal["accept", "clarify", "fallback"]
FALLBACK = "fallback"
_FUZZY_KINDS: dict[str, tuple[str, ...]] = {
    "course_booking": ("courses", "activities"),
    "coupon": ("merchants", "coupons"),
}


@dataclass(frozen=True)
class EngineConfig:
    threshold: float = 0.6
    margin: float = 0.15
    clarify_min: float = 0.2
    max_candidates: int = 3
    model: ModelConfig = field(default_factory=lambda: ModelConfig(kind="svm", c=0.5))
    features: FeatureConfig = field(default_factory=FeatureConfig)


@dataclass
class Classification:
    text: str
    intent: str
    confidence: float
    runner_up: tuple[str, float] | None
    decision: Decision
    candidates: list[tuple[str, float]]
    entities: Entities
    raw_intent: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "runner_up": [self.runner_up[0], round(self.runner_up[1], 4)] if self.runner_up else None,
            "entities": self.entities.to_dict(),
            "decision": self.decision,
            "candidates": [[label, round(p, 4)] for label, p in self.candidates],
            "raw_intent": self.raw_intent,
        }


@dataclass(frozen=True)
class _Model:
    """Everything one classification needs; replaced as a whole on reload."""

    classifier: LinearTextClassifier
    extractor: EntityExtractor
    data: TrainingData


class IntentEngine:
    def __init__(self, model: _Model, data_dir: Path | None, config: EngineConfig) -> None:
        self._model = model
        self.data_dir = data_dir
        self.config = config
        self._reload_lock = threading.Lock()
        self._feature_cache: dict[str, list[str]] = {}
        self._cache_synonyms: dict[str, str] = dict(model.classifier.synonyms)

    # ------------------------------------------------------------------ building
    @classmethod
    def load(cls, data_dir: Path | None = None, config: EngineConfig | None = None) -> IntentEngine:
        """Train from the YAML files of ``data_dir`` (default: the packaged training data)."""
        config = config or EngineConfig()
        engine = cls.__new__(cls)
        engine.data_dir = data_dir
        engine.config = config
        engine._reload_lock = threading.Lock()
        engine._feature_cache = {}
        engine._cache_synonyms = {}
        engine._model = engine._build()
        return engine

    @classmethod
    def from_data(cls, data: TrainingData, config: EngineConfig | None = None) -> IntentEngine:
        """Train from already-loaded examples (cross-validation, benchmarks)."""
        config = config or EngineConfig()
        classifier = LinearTextClassifier.train(data.texts(), data.labels(), config.features, config.model,
                                                data.synonyms)
        return cls(_Model(classifier, EntityExtractor(data.lookups), data), None, config)

    def _build(self) -> _Model:
        data = load_dir(self.data_dir)
        add_words([w for words in data.lookups.values() for w in words])
        if data.synonyms != self._cache_synonyms:  # cached features depend on the synonym rewriting
            self._feature_cache = {}
            self._cache_synonyms = dict(data.synonyms)
        classifier = LinearTextClassifier.train(data.texts(), data.labels(), self.config.features,
                                                self.config.model, data.synonyms, cache=self._feature_cache)
        live = set(data.texts())
        if len(self._feature_cache) > 2 * len(live):
            self._feature_cache = {k: v for k, v in self._feature_cache.items() if k in live}
        return _Model(classifier, EntityExtractor(data.lookups), data)

    def reload(self) -> None:
        """Rebuild from the data files and swap atomically.

        Raises :class:`intents.errors.TrainingDataError` on a malformed file; the old model keeps serving.
        """
        with self._reload_lock:
            model = self._build()
            self._model = model  # a single reference assignment: atomic for readers

    # ---------------------------------------------------------------- properties
    @property
    def intents(self) -> list[str]:
        return list(self._model.classifier.classes)

    @property
    def training_data(self) -> TrainingData:
        return self._model.data

    @property
    def classifier(self) -> LinearTextClassifier:
        return self._model.classifier

    # -------------------------------------------------------------- classifying
    def probabilities(self, text: str) -> dict[str, float]:
        model = self._model
        probs = model.classifier.predict_proba(text)
        return {label: float(p) for label, p in zip(model.classifier.classes, probs, strict=True)}

    def classify(self, text: str, now: dt.datetime | None = None) -> Classification:
        model = self._model  # one read: the whole call uses one consistent model
        probs = model.classifier.predict_proba(text) if text.strip() else None
        return self._decide(model, text, probs, now)

    def classify_many(self, texts: list[str], now: dt.datetime | None = None) -> list[Classification]:
        model = self._model
        probs = model.classifier.predict_proba_many(texts) if texts else np.zeros((0, 0))
        return [self._decide(model, t, p if t.strip() else None, now) for t, p in zip(texts, probs, strict=True)]

    def decide(self, ranked: list[tuple[str, float]]) -> tuple[Decision, str, list[tuple[str, float]]]:
        """Apply threshold and margin to labels ranked by confidence: (decision, intent, candidates)."""
        cfg = self.config
        if not ranked:
            return "fallback", FALLBACK, []
        (top, p1) = ranked[0]
        p2 = ranked[1][1] if len(ranked) > 1 else 0.0
        if top == FALLBACK:
            return "fallback", FALLBACK, []
        if p1 >= cfg.threshold and p1 - p2 >= cfg.margin:
            return "accept", top, []
        candidates = [(label, p) for label, p in ranked if label != FALLBACK and p >= cfg.clarify_min]
        candidates = candidates[: cfg.max_candidates]
        if len(candidates) >= 2:
            return "clarify", top, candidates
        if p1 >= cfg.threshold:
            return "accept", top, []
        return "fallback", FALLBACK, []

    def _decide(self, model: _Model, text: str, probs: np.ndarray | None, now: dt.datetime | None) -> Classification:
        if probs is None:  # empty message
            return Classification(text, FALLBACK, 1.0, None, "fallback", [], Entities(), FALLBACK)
        order = np.argsort(-probs)
        classes = model.classifier.classes
        ranked = [(classes[i], float(probs[i])) for i in order]
        decision, intent, candidates = self.decide(ranked)
        top, p1 = ranked[0]
        runner = ranked[1] if len(ranked) > 1 else None
        entities = model.extractor.extract(text, now, fuzzy=_FUZZY_KINDS.get(top, ()))
        return Classification(text, intent, p1, runner, decision, candidates, entities, top)

    def with_config(self, **changes: Any) -> IntentEngine:
        """A view of the same model with other thresholds (no retraining)."""
        other = IntentEngine(self._model, self.data_dir, replace(self.config, **changes))
        return other


def is_core(intent: str) -> bool:
    return intent in CORE_INTENTS
