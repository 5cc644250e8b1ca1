"""The intent engine facade used by the bot: classify a message, decide, extract entities, hot-reload.

Two decisions (:mod:`intents.scope`): is the message out of scope at all (``p_out``), and which in-scope
intent it is (probabilities conditional on being in scope). The decision rule (thresholds in
:class:`EngineConfig`):

* ``p_out`` ≥ ``scope_threshold`` → ``fallback``, unless the message names one of the registry's
  in-domain ``evidence`` words (积分, 夜校, 医保 …) and ``p_out`` < ``evidence_scope_threshold``: in-domain
  evidence wins over an unfamiliar phrasing;
* otherwise, over the in-scope intents: top confidence ≥ ``threshold`` and ahead of the runner-up by
  ≥ ``margin`` → ``accept``; if at least two intents have confidence ≥ ``clarify_min`` → ``clarify``
  (``candidates`` lists them, best first, for a numbered clarifying question); confident enough
  (≥ ``threshold``) → ``accept``; else ``fallback``.

``Classification.confidence`` is the calibrated probability of the label acted on: for an intent,
``(1 - p_out) × p(intent | in scope)``; for ``fallback``, ``p_out`` (or, for a message no intent
fits well enough, one minus the top intent's probability). ``intent`` is the label to act on: the top
intent for ``accept`` and ``clarify`` (the best guess), ``"fallback"`` for ``fallback``;
``raw_intent`` is the most probable label before thresholds.

The intents, which one is out of scope and which are core services come from the registry
(``intents.yml``, :mod:`intents.registry`).

Thread safety: a trained model is immutable; :meth:`IntentEngine.reload` builds a complete new one and
swaps a single reference, so concurrent :meth:`classify` calls see either the old or the new model.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from intents.classifier import ModelConfig
from intents.dataset import TrainingData, load_dir
from intents.entities import Entities, EntityExtractor
from intents.features import FeatureConfig
from intents.registry import FALLBACK, Registry
from intents.scope import ScopedClassifier
from intents.tokens import add_words

Decision = Literal["accept", "clarify", "fallback"]


@dataclass(frozen=True)
class EngineConfig:
    threshold: float = 0.6
    margin: float = 0.15
    clarify_min: float = 0.2
    max_candidates: int = 3
    scope_threshold: float = 0.32  # chosen on the real development sets (docs/benchmarks.md)
    evidence_scope_threshold: float = 0.6  # for a message naming an evidence word of the registry
    evidence_decides: bool = True  # a clarifying question is not asked when only the leading intent's evidence is named
    evidence_accept_min: float = 0.45  # ... and the leading intent has at least this (in-scope) probability
    model: ModelConfig = field(default_factory=lambda: ModelConfig(kind="svm", c=0.5))
    scope_model: ModelConfig = field(default_factory=lambda: ModelConfig(kind="svm", c=0.5))
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(strip_openers=True))
    labelled_weight: int = 3  # an operator's labelled message counts as this many examples
    edges: str = "first-last2"  # intents.scope.EDGE_MODES: the first and last words as intent-head features


@dataclass
class Classification:
    text: str
    intent: str
    confidence: float
    runner_up: tuple[str, float] | None
    decision: Decision
    candidates: list[tuple[str, float]]
    found: Entities | Callable[[], Entities]  # the entities, or how to find them when first asked for
    raw_intent: str
    out_of_scope: float = 0.0  # p_out: the probability that the message is not for this assistant
    # The model's extractor, whose lookups name every course, merchant … the entities can hold (a
    # filter can tell that a text names none without extracting them); None when not known.
    extractor: EntityExtractor | None = None

    @property
    def entities(self) -> Entities:
        """Entities of the message, extracted on first use (most replies never ask)."""
        if not isinstance(self.found, Entities):
            self.found = self.found()
        return self.found

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
            "out_of_scope": round(self.out_of_scope, 4),
        }


@dataclass(frozen=True)
class _Model:
    """Everything one classification needs; replaced as a whole on reload."""

    classifier: ScopedClassifier
    extractor: EntityExtractor
    data: TrainingData
    fuzzy: dict[str, tuple[str, ...]]
    evidence: re.Pattern[str] | None = None  # the registry's evidence words, after synonym rewriting
    evidence_of: dict[str, re.Pattern[str]] = field(default_factory=dict)  # the same, per intent

    def has_evidence(self, text: str) -> bool:
        return self.evidence is not None and self.evidence.search(self.classifier.rewrite(text)) is not None

    def is_conversation(self, intent: str) -> bool:
        info = self.data.registry.get(intent)
        return info is not None and info.kind == "conversation"

    def evidence_for(self, text: str, intents: list[str]) -> list[str]:
        """Those of ``intents`` whose own evidence words ``text`` names."""
        rewritten = self.classifier.rewrite(text)
        return [i for i in intents if i in self.evidence_of and self.evidence_of[i].search(rewritten) is not None]


def _train(data: TrainingData, config: EngineConfig, labelled: Path | None,
           cache: dict[str, list[str]] | None = None) -> _Model:
    texts: list[str] = []
    labels: list[str] = []
    for e in data.examples:
        copies = config.labelled_weight if labelled is not None and e.path == labelled else 1
        texts.extend([e.text] * copies)
        labels.extend([e.intent] * copies)
    classifier = ScopedClassifier.train(texts, labels, FALLBACK, config.features, config.model,
                                        config.scope_model, data.synonyms, cache, config.edges)
    words = sorted({classifier.rewrite(w) for w in data.registry.evidence_words()} - {""}, key=len, reverse=True)
    evidence = re.compile("|".join(map(re.escape, words))) if words else None
    evidence_of = {}
    for spec in data.registry.intents:
        own = sorted({classifier.rewrite(w) for w in spec.evidence} - {""}, key=len, reverse=True)
        if own:
            evidence_of[spec.name] = re.compile("|".join(map(re.escape, own)))
    return _Model(classifier, EntityExtractor(data.lookups, data.synonyms), data, data.registry.fuzzy_lookups(), evidence,
                  evidence_of)


class IntentEngine:
    def __init__(self, model: _Model, data_dir: Path | None, config: EngineConfig,
                 labelled: Path | None = None) -> None:
        self._model = model
        self.data_dir = data_dir
        self.labelled = labelled
        self.config = config
        self._reload_lock = threading.Lock()
        self._feature_cache: dict[str, list[str]] = {}
        self._cache_synonyms: dict[str, str] = dict(model.classifier.synonyms)

    # ------------------------------------------------------------------ building
    @classmethod
    def load(cls, data_dir: Path | None = None, config: EngineConfig | None = None,
             labelled: Path | None = None) -> IntentEngine:
        """Train from the YAML files of ``data_dir`` (default: the packaged training data) and, when
        the file exists, an operator's labelled messages ``labelled`` (see ``intents train --extra``)."""
        config = config or EngineConfig()
        engine = cls.__new__(cls)
        engine.data_dir = data_dir
        engine.labelled = Path(labelled) if labelled is not None else None
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
        return cls(_train(data, config, None), None, config)

    def _build(self, data_dir: Path | Literal[False] | None = False,
               labelled: Path | Literal[False] | None = False) -> _Model:
        data = load_dir(self.data_dir if data_dir is False else data_dir,
                        self.labelled if labelled is False else labelled)
        add_words([w for words in data.lookups.values() for w in words])
        if data.synonyms != self._cache_synonyms:  # cached features depend on the synonym rewriting
            self._feature_cache = {}
            self._cache_synonyms = dict(data.synonyms)
        model = _train(data, self.config, self.labelled if labelled is False else labelled, self._feature_cache)
        live = set(data.texts())
        if len(self._feature_cache) > 2 * len(live):
            self._feature_cache = {k: v for k, v in self._feature_cache.items() if k in live}
        return model

    def reload(self) -> None:
        """Rebuild from the data files and swap atomically.

        Raises :class:`intents.errors.TrainingDataError` on a malformed file; the old model keeps serving.
        """
        with self._reload_lock:
            model = self._build()
            self._model = model  # a single reference assignment: atomic for readers

    def retarget(self, data_dir: Path | None, labelled: Path | None = None) -> None:
        """Rebuild from another data folder (and labelled file) and serve it from now on; on a
        malformed file raise :class:`intents.errors.TrainingDataError` and keep the old model and folder."""
        with self._reload_lock:
            model = self._build(data_dir, labelled)
            self.data_dir, self.labelled = data_dir, labelled
            self._model = model

    # ---------------------------------------------------------------- properties
    @property
    def intents(self) -> list[str]:
        return list(self._model.classifier.classes)

    @property
    def registry(self) -> Registry:
        return self._model.data.registry

    @property
    def training_data(self) -> TrainingData:
        return self._model.data

    @property
    def classifier(self) -> ScopedClassifier:
        return self._model.classifier

    def is_core(self, intent: str | None) -> bool:
        return self.registry.is_core(intent)

    # -------------------------------------------------------------- classifying
    def probabilities(self, text: str) -> dict[str, float]:
        """Calibrated probability of every label: ``fallback`` is p_out, an intent (1 - p_out) × p(intent)."""
        model = self._model
        p_out, p_in = model.classifier.proba(text)
        out = {label: (1.0 - p_out) * p for label, p in zip(model.classifier.intent.classes, p_in, strict=True)}
        out[FALLBACK] = p_out
        return out

    def classify(self, text: str, now: dt.datetime | None = None) -> Classification:
        model = self._model  # one read: the whole call uses one consistent model
        if not text.strip():
            return self._decide(model, text, None, now)
        return self._decide(model, text, model.classifier.proba(text), now)

    def classify_many(self, texts: list[str], now: dt.datetime | None = None) -> list[Classification]:
        model = self._model
        if not texts:
            return []
        p_out, p_in = model.classifier.proba_many(texts)
        return [self._decide(model, t, (float(po), pi.tolist()) if t.strip() else None, now)
                for t, po, pi in zip(texts, p_out, p_in, strict=True)]

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

    def _decide(self, model: _Model, text: str, probs: tuple[float, list[float]] | None,
                now: dt.datetime | None) -> Classification:
        if probs is None:  # empty message
            return Classification(text, FALLBACK, 1.0, None, "fallback", [], Entities(), FALLBACK, 1.0)
        p_out, p_in = probs
        classes = model.classifier.intent.classes
        conditional = sorted(zip(classes, p_in, strict=True), key=lambda lp: -lp[1])
        candidates: list[tuple[str, float]] = []
        cfg = self.config
        out_of_scope = p_out >= cfg.scope_threshold and (p_out >= cfg.evidence_scope_threshold
                                                          or not model.has_evidence(text))
        if out_of_scope:
            decision: Decision = "fallback"
            intent = FALLBACK
        else:
            decision, intent, candidates = self.decide(conditional)
            if (decision == "clarify" and cfg.evidence_decides and conditional[0][1] >= cfg.evidence_accept_min
                    and all(model.is_conversation(c) for c, _ in candidates[1:])
                    and model.evidence_for(text, [c for c, _ in candidates]) == [intent]):
                # a service's own words are named (高龄补贴) and the alternatives are talking or asking for
                # a person, whose words are not (转人工): the service, without a clarifying question
                decision, candidates = "accept", []
        scale = 1.0 - p_out
        top, p_top = conditional[0]
        if intent == FALLBACK:
            confidence = p_out if out_of_scope else 1.0 - p_top * scale
            runner: tuple[str, float] | None = (top, p_top * scale)
        else:
            confidence = dict(conditional)[intent] * scale
            second = next(((label, p * scale) for label, p in conditional if label != intent), None)
            runner = (FALLBACK, p_out) if second is None or p_out >= second[1] else second
        raw = FALLBACK if p_out >= p_top * scale else top
        def entities() -> Entities:
            return model.extractor.extract(text, now, fuzzy=model.fuzzy.get(top, ()))

        return Classification(text, intent, confidence, runner, decision,
                              [(label, p * scale) for label, p in candidates], entities, raw, p_out, model.extractor)

    def with_config(self, **changes: Any) -> IntentEngine:
        """A view of the same model with other thresholds (no retraining)."""
        return IntentEngine(self._model, self.data_dir, replace(self.config, **changes), self.labelled)
