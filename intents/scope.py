"""Two decisions over one set of features: is a message for a community assistant at all (scope), and
if so, which intent.

Both are linear models over the same tf-idf vector (jieba words, word bigrams, character n-grams;
:mod:`intents.features`), so a message is tokenised once and costs two small dot products:

* the *scope* head separates the out-of-scope examples (``fallback``: weather, music, tickets, …)
  from everything in scope. It learns what out of scope looks like from its own examples, so a
  message counts as out of scope because it resembles them — not because it is unlike the in-scope
  examples;
* the *intent* head is trained on the in-scope examples only, so an unfamiliar but in-domain message
  (a formal complaint, a long spoken question) is never pulled towards ``fallback`` by the intent
  decision: ``fallback`` is not one of its classes.

Each head's confidence is calibrated by temperature scaling, fitted on held-out blocks of the
training files (see :func:`intents.classifier.calibration_split`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from intents import tokens
from intents.classifier import (
    ModelConfig,
    Vocabulary,
    _count_matrix,
    _fit_estimator,
    _idf,
    _softmax,
    _tfidf,
    calibration_split,
    fit_temperature,
)
from intents.features import (
    FeatureConfig,
    SynonymRewriter,
    extract_many,
    features_of,
    prepared,
    split_openers,
)

# Answers kept per classifier: residents send the same short messages again and again (你好, 谢谢,
# 转人工, 1); a message seen before costs a dictionary look-up instead of cutting and scoring it.
PROBA_CACHE = 4096
# Digits are folded to 0 before a message is cut (:func:`intents.features.extract`), so texts that
# differ only in their digits (138…, 3号楼 / 5号楼, a ticket number) score alike and share one
# remembered answer: the memory is keyed by the text with its digits folded.
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class _Head:
    classes: list[str]
    weights: np.ndarray  # features × classes, pre-multiplied by idf
    bias: np.ndarray
    temperature: float
    bias_list: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bias_list", [float(b) for b in self.bias])

    def proba(self, scores: np.ndarray) -> np.ndarray:
        return _softmax((scores + self.bias) / self.temperature)


EDGE_MODES = ("", "last", "last2", "first-last2")


def edge_features(feats: list[str], mode: str) -> list[str]:
    """Where a message's words stand, as features of their own: ``E`` + the last word (and ``E`` +
    the last two), ``S`` + the first. A title says what it wants at its edges (请问…, 关于…, …何时休,
    …合理吗, …是否还有效) while the words between name the topic, which complaints and questions share.
    ``feats`` is :func:`intents.features.extract`'s output: its words (``w…``) first, then the word
    bigrams (``b…``), then the character n-grams, the first of which is ``c^``."""
    if not mode or not feats or feats[0][0] != "w":
        return []
    try:
        end = feats.index("c^")  # words + bigrams: 2n - 1 features, or n without bigrams
        n = (end + 1) // 2 if end > 1 and feats[end - 1][0] == "b" else end
    except ValueError:
        n = next((i for i, f in enumerate(feats) if f[0] != "w"), len(feats))
    last = feats[n - 1][1:]
    out = ["E" + last]
    if mode != "last" and n > 1:
        out.append("E" + feats[n - 2][1:] + "_" + last)
    if mode == "first-last2":
        out.append("S" + feats[0][1:])
    return out


def _is_edge(name: str) -> bool:
    return name[:1] in ("E", "S")


def _train_head(counts: sp.csr_matrix, idf: np.ndarray, y: np.ndarray, classes: list[str],
                mc: ModelConfig) -> _Head:
    """Fit one linear head on ``counts`` (rows already selected) and calibrate its temperature."""
    temperature = 1.0
    if mc.calibrate and counts.shape[0] >= 20:
        tr, ho = calibration_split(y, mc.calibration_fraction)
        if len(tr) > mc.calibration_max_train:
            rng = np.random.default_rng(mc.seed)
            tr = np.sort(rng.choice(tr, mc.calibration_max_train, replace=False))
        part_idf = _idf(counts[tr], mc.min_df)
        w, b = _fit_estimator(_tfidf(counts[tr], part_idf, mc.sublinear_tf), y[tr], len(classes), mc)
        scores = _tfidf(counts[ho], part_idf, mc.sublinear_tf) @ w + b
        temperature = fit_temperature(np.asarray(scores), y[ho])
    w, b = _fit_estimator(_tfidf(counts, idf, mc.sublinear_tf), y, len(classes), mc)
    return _Head(classes, w * idf[:, None], b, temperature)


class ScopedClassifier:
    """Immutable once trained: safe to share between threads."""

    def __init__(self, vocab: Vocabulary, scope: _Head, intent: _Head, out_label: str,
                 feature_config: FeatureConfig, sublinear_tf: bool, synonyms: dict[str, str],
                 edges: str = "", edge_columns: np.ndarray | None = None) -> None:
        self.vocab = vocab
        self.edges = edges
        # which columns are edge features (none without edges): the scope head has no weight on them
        # and its vector is normalised without them
        self._edge_columns = edge_columns if edges and edge_columns is not None else None
        self.scope = scope
        self.intent = intent
        self.out_label = out_label
        self.feature_config = feature_config
        self.sublinear_tf = sublinear_tf
        self.synonyms = dict(synonyms)
        self.rewrite = SynonymRewriter(self.synonyms)
        self._out = scope.classes.index(out_label)
        # Both heads side by side: one gather of the message's rows, one small product.
        self._weights = np.hstack([scope.weights, intent.weights])
        self._n_scope = len(scope.classes)
        self._answers: dict[str, tuple[float, tuple[float, ...]]] = {}
        self._answers_generation = tokens.generation()
        # (p_out, intent probabilities) of the text a message is cut as (without its openers): a
        # question said with another greeting or "I'd like to ask" (请问, 想问问, 您好，请问) is cut and
        # scored once; only the whole message, openers included, is scored afresh (``_with_opener``).
        self._bodies: dict[str, tuple[float, tuple[float, ...]]] = {}
        # ... unless a synonym holds a digit: synonyms are rewritten before the digits are folded,
        # so 12号 and 13号 could then be cut differently.
        self._fold_digits = not any(_DIGIT.search(word) for pair in self.rewrite.synonyms.items() for word in pair)

    @property
    def classes(self) -> list[str]:
        """The in-scope intents, then the out-of-scope label."""
        return [*self.intent.classes, self.out_label]

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], out_label: str,
              feature_config: FeatureConfig | None = None, intent_model: ModelConfig | None = None,
              scope_model: ModelConfig | None = None, synonyms: dict[str, str] | None = None,
              cache: dict[str, list[str]] | None = None, edges: str = "") -> ScopedClassifier:
        """``edges``: one of :data:`EDGE_MODES`, the :func:`edge_features` the intent head learns
        from (the scope head does not: where a message's words stand says what it wants, not whether
        it is for this assistant)."""
        if edges not in EDGE_MODES:
            raise ValueError(f"edges must be one of {EDGE_MODES}")
        fc = feature_config or FeatureConfig()
        im = intent_model or ModelConfig(kind="svm", c=0.5)
        sm = scope_model or im
        if len(texts) != len(labels):
            raise ValueError("texts and labels differ in length")
        in_classes = sorted(set(labels) - {out_label})
        if len(in_classes) < 2 or out_label not in labels:
            raise ValueError(f"need {out_label!r} examples and at least two in-scope intents")
        rewrite = SynonymRewriter(synonyms or {})
        docs = extract_many(texts, replace(fc, strip_openers=False), rewrite, cache)
        if edges:
            docs = [d + edge_features(d, edges) for d in docs]
        counts, names = _count_matrix(docs)
        idf = _idf(counts, im.min_df)
        keep = np.flatnonzero(idf > 0)
        counts, idf = counts[:, keep], idf[keep]
        vocab = Vocabulary({names[j]: i for i, j in enumerate(keep)}, idf)
        edge_columns = np.fromiter((_is_edge(names[j]) for j in keep), dtype=bool, count=len(keep))
        base = np.flatnonzero(~edge_columns)

        label_array = np.asarray(labels)
        out = label_array == out_label
        scope_classes = sorted(["in_scope", out_label])
        y_scope = np.where(out, scope_classes.index(out_label), scope_classes.index("in_scope"))
        scope = _train_head(counts[:, base], idf[base], y_scope, scope_classes, sm)
        if len(base) < len(keep):  # the head trained without edge features (zero on theirs)
            weights = np.zeros((len(keep), scope.weights.shape[1]))
            weights[base] = scope.weights
            scope = _Head(scope.classes, weights, scope.bias, scope.temperature)

        rows = np.flatnonzero(~out)
        index = {c: i for i, c in enumerate(in_classes)}
        y_intent = np.fromiter((index[label] for label in label_array[rows]), dtype=np.int64, count=len(rows))
        intent = _train_head(counts[rows], idf, y_intent, in_classes, im)
        return cls(vocab, scope, intent, out_label, fc, im.sublinear_tf, synonyms or {}, edges, edge_columns)

    # ----------------------------------------------------------------- inference
    def _vector(self, feats: list[str]) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Feature ids of a message's features, their tf weights divided by the vector's norm, and the
        factor that turns the scope head's scores into those of the vector without edge features (1
        without)."""
        get = self.vocab.index.get
        counts = Counter([i for i in map(get, feats) if i is not None])
        edge_squared = 0.0  # the edge features' part of the squared norm (each occurs once: tf 1)
        if self.edges:
            idf = self.vocab.idf
            for i in map(get, edge_features(feats, self.edges)):
                if i is not None:
                    counts[i] = 1
                    edge_squared += float(idf[i]) ** 2
        if not counts:
            return None
        ids = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear_tf:
            tf = 1.0 + np.log(tf)
        weighted = tf * self.vocab.idf[ids]
        squared = float(np.dot(weighted, weighted))
        scale = 1.0
        if edge_squared:
            base = squared - edge_squared
            scale = math.sqrt(squared / base) if base > 1e-12 else 0.0
        return ids, tf / math.sqrt(squared), scale

    def proba(self, text: str) -> tuple[float, list[float]]:
        """(probability that the message is out of scope, in-scope intent probabilities)."""
        generation = tokens.generation()
        if generation != self._answers_generation:  # the tokenizer learnt words: cut afresh
            self._answers = {}
            self._bodies = {}
            self._answers_generation = generation
        key = _DIGIT.sub("0", text) if self._fold_digits else text
        known = self._answers.get(key)
        if known is None:
            if len(self._answers) >= PROBA_CACHE:
                self._answers = {}
            known = self._answers[key] = self._proba(text)
        return known[0], list(known[1])

    def _proba(self, text: str) -> tuple[float, tuple[float, ...]]:
        config = self.feature_config
        rewritten = self.rewrite(text)
        body, dropped = split_openers(rewritten) if config.strip_openers else (rewritten, False)
        body = prepared(body, config)
        known = self._bodies.get(body)
        if known is None:
            if len(self._bodies) >= PROBA_CACHE:
                self._bodies = {}
            known = self._bodies[body] = self._proba_of(body)
        if not dropped:
            return known
        return known[0], tuple(self._with_opener(rewritten, list(known[1])))

    def _proba_of(self, body: str) -> tuple[float, tuple[float, ...]]:
        """(p_out, intent probabilities) of a :func:`prepared` text, openers stripped."""
        vec = self._vector(features_of(body, self.feature_config))
        scale = 1.0
        if vec is None:
            scores = [0.0] * self._weights.shape[1]
        else:
            ids, tf, scale = vec
            scores = (tf @ self._weights[ids]).tolist()
        k = self._n_scope
        scope_scores = scores[:k] if scale == 1.0 else [v * scale for v in scores[:k]]
        p_scope = _softmax_list(scope_scores, self.scope.bias_list, self.scope.temperature)
        p_intent = _softmax_list(scores[k:], self.intent.bias_list, self.intent.temperature)
        return p_scope[self._out], tuple(p_intent)

    def _with_opener(self, rewritten: str, p_intent: list[float]) -> list[float]:
        """A greeting or an "I'd like to ask" opening is half the intent decision: the intent
        probabilities of the message without it and with it, averaged (the scope decision is the one
        without: a greeting or asking is no sign that a message is for this assistant).
        想咨询下个人续保的问题 stays a question, 想咨询一下 积分明细在哪里查 is about points, 你好，交医保
        is a question, 想咨询一下 今天股市咋样 is out of scope. ``rewritten``: the message as
        ``self.rewrite`` gives it."""
        vec = self._vector(features_of(prepared(rewritten, self.feature_config), self.feature_config))
        if vec is None:
            return p_intent
        ids, tf, _ = vec
        scores = (tf @ self.intent.weights[ids]).tolist()
        whole = _softmax_list(scores, self.intent.bias_list, self.intent.temperature)
        return [(a + b) / 2 for a, b in zip(p_intent, whole, strict=True)]

    def proba_many(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        docs = extract_many(texts, self.feature_config, self.rewrite)
        if self.edges:
            docs = [d + edge_features(d, self.edges) for d in docs]
        counts = self.vocab.count_matrix(docs)
        x = _normalised_tf(counts, self.vocab.idf, self.sublinear_tf)
        x_scope = x
        if self._edge_columns is not None:  # the scope head's vector is the one without edge features
            x_scope = _normalised_tf(counts @ sp.diags((~self._edge_columns).astype(np.float64)), self.vocab.idf,
                                     self.sublinear_tf)
        p_out = self.scope.proba(np.asarray(x_scope @ self.scope.weights))[:, self._out]
        p_intent = self.intent.proba(np.asarray(x @ self.intent.weights))
        if self.feature_config.strip_openers:
            for i, text in enumerate(texts):
                rewritten = self.rewrite(text)
                if split_openers(rewritten)[1]:
                    p_intent[i] = self._with_opener(rewritten, p_intent[i].tolist())
        return p_out, p_intent


def _softmax_list(scores: list[float], bias: list[float], temperature: float) -> list[float]:
    """Softmax of a few scores in plain Python (cheaper than numpy for one message)."""
    z = [(s + b) / temperature for s, b in zip(scores, bias, strict=True)]
    top = max(z)
    e = [math.exp(v - top) for v in z]
    total = sum(e)
    return [v / total for v in e]


def _normalised_tf(counts: sp.csr_matrix, idf: np.ndarray, sublinear_tf: bool) -> sp.csr_matrix:
    """tf weights divided by the norm of the tf-idf vector (the idf itself is in the heads' weights)."""
    x = counts.copy().astype(np.float64)
    if sublinear_tf:
        x.data = 1.0 + np.log(x.data)
    weighted = x.multiply(idf[None, :])
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ x)
