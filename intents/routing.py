"""Complaint routing: map a complaint to a category/department label.

The default model is trained from ``intents/data/routing/categories.yml`` (our own examples; the category
names are the keys of the dispatch table in the bot's configuration). An operator can train on their
own historical tickets (CSV or XLSX) with ``routing train``; the trained model is saved as a plain
``.npz`` file (no pickle) under ``<data_dir>/models/routing.npz`` and preferred over the default.
More labelled tickets from other files (``--extra``, e.g. whole messages next to a file of titles) are
added to the training rows; in ``routing eval`` an extra row that repeats a test row (the same ticket's
title or text, see :func:`drop_overlapping`) is left out, so the figure stays a held-out one.
An operator's word-vectors file (``--vectors``) adds outside knowledge of words the tickets lack: see
:mod:`intents.vectors`; its block is saved in the same ``.npz``.
Topic words written by the project (``intents/data/routing/topics.yml``, :class:`TopicWords`) add one
feature per topic a ticket names, so a word the tickets rarely say counts like its topic's commoner
words; the words a model was trained with are saved in its ``.npz``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import StratifiedKFold, train_test_split

from intents import tables
from intents.classifier import LinearTextClassifier, ModelConfig, _macro_f1, _softmax
from intents.errors import InputDataError, TrainingDataError
from intents.evaluate import Report, evaluate
from intents.features import FeatureConfig, extract, extract_many
from intents.tokens import normalize
from intents.vectors import BLEND_WEIGHTS, VectorBlock, words_of

DEFAULT_CATEGORIES = Path(__file__).parent / "data" / "routing" / "categories.yml"
DEFAULT_TOPICS = Path(__file__).parent / "data" / "routing" / "topics.yml"
MODEL_FILE = Path("models") / "routing.npz"
# Whole messages (no truncation: the body carries the topic as much as the title): jieba words, word
# bigrams and character 1-3-grams, sublinear tf-idf, then NB-SVM (a linear SVM per category over
# naive-Bayes log-count-ratio scaled features). On teddy2020c this beats a plain TF-IDF + LinearSVC by
# about one point of macro-F1 (docs/benchmarks.md).
ROUTING_FEATURES = FeatureConfig(char_min=1, char_max=3, word_bigrams=True, max_chars=50_000)
ROUTING_MODEL = ModelConfig(kind="nbsvm", c=1.0)
# With many tickets, features seen in a single ticket are mostly noise (names, places): drop them, and
# fit per-category score offsets on 3-fold out-of-fold scores (the one-vs-rest SVMs favour a broad
# catch-all category such as 城乡建设 in close calls; see intents.classifier.fit_class_offsets).
LARGE_TRAINING_SET = 2000
OFFSET_FOLDS = 3
JOIN = "。"
# An extra row repeats a test row when the shorter of the two shares this much of its character bigrams
# with the longer one (a title inside its own message: median 0.78, 90 % of them >= 0.46 on teddy2020c),
# or, for texts too short to judge by bigrams, when one is the other or its first column.
OVERLAP_CONTAINMENT = 0.4
OVERLAP_MIN_BIGRAMS = 6
# The word-vectors block's weight in the mix: chosen on this many folds of the training rows; a weight
# is kept only when it gains this much out-of-fold macro-F1 over none.
BLEND_FOLDS = 3
BLEND_MIN_GAIN = 0.002
# Topic features are kept on many tickets only when they gain this much out-of-fold macro-F1.
TOPIC_FOLDS = 3
TOPIC_MIN_GAIN = 0.002


class TopicWords:
    """Words → topics (hand-written, ``topics.yml``): a ticket gets one feature ``t<topic>`` per topic
    one of its words names. Matched on the ticket's own features (:func:`intents.features.extract`):
    a topic word of up to three characters anywhere in the text (its character n-grams), a longer one
    as a jieba word. On teddy2020c titles, chosen by 3-fold cross-validation on the training split
    (docs/benchmarks.md): a rare word (磁浮, 环评) then counts like its topic's commoner words."""

    PREFIX = "t"

    def __init__(self, words: dict[str, tuple[str, ...]]) -> None:
        self.words = words
        # The features that name a topic: its words as jieba words, the short ones as character n-grams
        # too (ROUTING_FEATURES cuts 1-3-grams); one set intersection per ticket finds them.
        lookup: dict[str, set[str]] = {}
        for word, topics in words.items():
            keys = ["w" + word, "c" + word] if len(word) <= ROUTING_FEATURES.char_max else ["w" + word]
            for key in keys:
                lookup.setdefault(key, set()).update(topics)
        self._lookup = lookup
        self._keys = frozenset(lookup)

    @classmethod
    def load(cls, path: Path = DEFAULT_TOPICS) -> TopicWords:
        doc = _read_yaml(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("topics"), dict):
            raise TrainingDataError(path, 1, "expected 'topics:' mapping a topic to its words")
        words: dict[str, list[str]] = {}
        for topic, listed in doc["topics"].items():
            if not isinstance(listed, str):
                raise TrainingDataError(path, None, f"topic {topic!r} must give its words separated by spaces")
            for word in listed.split():
                key = normalize(word)
                if str(topic) not in words.setdefault(key, []):
                    words[key].append(str(topic))
        return cls({w: tuple(t) for w, t in words.items()})

    def features(self, feats: Sequence[str]) -> list[str]:
        """The topic features of a ticket's features (words ``w…`` and character n-grams ``c…``)."""
        hits = self._keys.intersection(feats)
        if not hits:
            return []
        lookup = self._lookup
        topics: set[str] = set()
        for f in hits:
            topics.update(lookup[f])
        return [self.PREFIX + t for t in sorted(topics)]

    def add_to(self, docs: list[list[str]]) -> list[list[str]]:
        return [d + self.features(d) for d in docs]

    def arrays(self) -> dict[str, np.ndarray]:
        pairs = [[w, t] for w, topics in self.words.items() for t in topics]
        return {"topic_words": np.array(pairs or np.empty((0, 2)), dtype=str)}

    @classmethod
    def from_arrays(cls, z: dict[str, np.ndarray] | np.lib.npyio.NpzFile) -> TopicWords | None:
        if "topic_words" not in z:
            return None
        words: dict[str, tuple[str, ...]] = {}
        for w, t in z["topic_words"]:
            words[str(w)] = (*words.get(str(w), ()), str(t))
        return cls(words)


@dataclass
class Route:
    category: str
    confidence: float
    runner_up: tuple[str, float] | None

    def to_dict(self) -> dict[str, object]:
        return {"category": self.category, "confidence": round(self.confidence, 4),
                "runner_up": [self.runner_up[0], round(self.runner_up[1], 4)] if self.runner_up else None}


class Router:
    def __init__(self, classifier: LinearTextClassifier, vectors: VectorBlock | None = None,
                 topics: TopicWords | None = None) -> None:
        self.classifier = classifier
        self.vectors = vectors
        self.topics = topics

    @property
    def categories(self) -> list[str]:
        return list(self.classifier.classes)

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], model: ModelConfig | None = None,
              features: FeatureConfig | None = None, vectors: tuple[Sequence[str], np.ndarray] | None = None,
              vector_weight: float | None = None, topics: TopicWords | bool | None = True) -> Router:
        """Train on tickets; with ``vectors`` (words, unit vectors: :func:`intents.vectors.read_vectors`)
        add their block, mixed in with ``vector_weight`` or else a weight chosen by cross-validation on
        these rows (:func:`choose_vector_weight`). ``topics``: the project's topic words (True: with
        ``LARGE_TRAINING_SET`` rows or more, only when they pay by cross-validation on these rows, see
        :func:`topics_pay`), the given ones, or none (False/None)."""
        if len(set(labels)) < 2:
            raise InputDataError("routing needs at least two different labels")
        if model is None:
            large = len(texts) >= LARGE_TRAINING_SET
            model = replace(ROUTING_MODEL, min_df=2 if large else 1, offset_folds=OFFSET_FOLDS if large else 0)
        fc = features or ROUTING_FEATURES
        topic_words = TopicWords.load() if topics is True else topics or None
        cache: dict[str, list[str]] = {}
        if topic_words is not None:  # the classifier reads each text's features from the cache
            plain = extract_many(texts, fc)
            if topics is True and len(texts) >= LARGE_TRAINING_SET and not topics_pay(plain, labels, model, fc,
                                                                                   topic_words):
                topic_words = None
            else:
                cache = dict(zip(texts, topic_words.add_to(plain), strict=True))
        classifier = LinearTextClassifier.train(texts, labels, fc, model, cache=cache)
        if vectors is None:
            return cls(classifier, topics=topic_words)
        docs = [words_of(f) for f in extract_many(texts, fc, classifier.rewrite, cache)]
        y = np.array([classifier.classes.index(label) for label in labels])
        if vector_weight is None:
            vector_weight = choose_vector_weight(texts, labels, model, fc, vectors, cache)
        block = VectorBlock.fit(docs, y, len(classifier.classes), vectors[0], vectors[1], weight=vector_weight)
        return cls(classifier, block, topic_words)

    @classmethod
    def default(cls) -> Router:
        texts, labels = load_categories(DEFAULT_CATEGORIES)
        return cls.train(texts, labels)

    @classmethod
    def load(cls, data_dir: Path | None) -> Router:
        """The operator-trained model under ``data_dir`` if present, else the default model."""
        if data_dir is not None and (data_dir / MODEL_FILE).is_file():
            return cls.load_file(data_dir / MODEL_FILE)
        return cls.default()

    @classmethod
    def load_file(cls, path: Path) -> Router:
        """A model saved by :meth:`save` (with its word-vectors block when it was trained with one)."""
        with np.load(path, allow_pickle=False) as z:
            vectors = VectorBlock.from_arrays(z)
            topics = TopicWords.from_arrays(z)
        return cls(LinearTextClassifier.load(path), vectors, topics)

    def vectors_summary(self) -> str | None:
        if self.vectors is None:
            return None
        return f"vectors: weight {self.vectors.weight:g} in the mix ({len(self.vectors.index)} words)"

    def save(self, path: Path) -> None:
        extra = {**(self.vectors.arrays() if self.vectors is not None else {}),
                 **(self.topics.arrays() if self.topics is not None else {})}
        self.classifier.save(path, extra=extra or None)

    def _features(self, texts: Sequence[str]) -> list[list[str]]:
        docs = extract_many(texts, self.classifier.feature_config, self.classifier.rewrite)
        return self.topics.add_to(docs) if self.topics is not None else docs

    def route(self, text: str) -> Route:
        clf = self.classifier
        feats = extract(text, clf.feature_config, clf.rewrite)
        if self.topics is not None:
            feats += self.topics.features(feats)
        scores = clf.feature_scores(feats) / clf.temperature
        probs = _softmax(scores) if self.vectors is None else self.vectors.mix_one(scores, words_of(feats))
        order = np.argsort(-probs)
        classes = self.classifier.classes
        runner = (classes[order[1]], float(probs[order[1]])) if len(order) > 1 else None
        return Route(classes[order[0]], float(probs[order[0]]), runner)

    def route_many(self, texts: Sequence[str]) -> list[Route]:
        clf = self.classifier
        docs = self._features(texts)
        if self.vectors is None:
            probs = clf.feature_proba_many(docs)
        else:
            main = np.log(np.clip(clf.feature_proba_many(docs), 1e-300, None))
            probs = self.vectors.mix(main, [words_of(d) for d in docs])
        classes = self.classifier.classes
        out = []
        for p in probs:
            order = np.argsort(-p)
            runner = (classes[order[1]], float(p[order[1]])) if len(order) > 1 else None
            out.append(Route(classes[order[0]], float(p[order[0]]), runner))
        return out

    def evaluate(self, texts: Sequence[str], labels: Sequence[str]) -> Report:
        routes = self.route_many(texts)
        return evaluate(texts, labels, [r.category for r in routes], [r.confidence for r in routes])


def topics_pay(docs: Sequence[list[str]], labels: Sequence[str], model: ModelConfig, features: FeatureConfig,
               topics: TopicWords, folds: int = TOPIC_FOLDS) -> bool:
    """Whether topic features gain ``TOPIC_MIN_GAIN`` out-of-fold macro-F1 on these tickets (their
    features ``docs``), the model trained on each fold's other rows as :meth:`Router.train` trains it
    without score offsets. On teddy2020c's titles they gain 0.4-0.9 points on every split; on its whole
    messages (title and text: words enough) they lose 0.2-0.5 on the test splits and are dropped."""
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in labels])
    if np.bincount(y, minlength=len(classes)).min() < folds:
        return True
    fold_model = replace(model, offset_folds=0, calibrate=False)  # argmax only: no temperature needed
    keys = [str(i) for i in range(len(docs))]  # the classifier reads features by text: one key per row
    variants = ({k: list(d) for k, d in zip(keys, docs, strict=True)},
                {k: d for k, d in zip(keys, topics.add_to(list(docs)), strict=True)})
    scores = [np.zeros((len(docs), len(classes))) for _ in variants]
    for tr, ho in StratifiedKFold(folds, shuffle=True, random_state=model.seed).split(np.zeros(len(y)), y):
        for cache, out in zip(variants, scores, strict=True):
            clf = LinearTextClassifier.train([keys[i] for i in tr], [labels[i] for i in tr], features, fold_model,
                                             cache=cache)
            out[ho] = np.log(np.clip(clf.feature_proba_many([cache[keys[i]] for i in ho]), 1e-300, None))
    return _macro_f1(scores[1], y) >= _macro_f1(scores[0], y) + TOPIC_MIN_GAIN


def choose_vector_weight(texts: Sequence[str], labels: Sequence[str], model: ModelConfig,
                         features: FeatureConfig, vectors: tuple[Sequence[str], np.ndarray],
                         cache: dict[str, list[str]] | None = None, folds: int = BLEND_FOLDS) -> float:
    """The word-vectors block's weight with the best out-of-fold macro-F1 on these rows (0 unless it
    gains ``BLEND_MIN_GAIN`` over none; 0 when a label has fewer rows than folds).

    Both models are trained on each fold's other rows as :meth:`Router.train` trains them (the main
    model without score offsets) and their log-probabilities mixed with each of ``BLEND_WEIGHTS``.
    """
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in labels])
    if np.bincount(y, minlength=len(classes)).min() < folds:
        return 0.0
    fold_model = replace(model, offset_folds=0)
    main = np.zeros((len(texts), len(classes)))
    vec = np.zeros((len(texts), len(classes)))
    found = np.zeros(len(texts), dtype=bool)
    for tr, ho in StratifiedKFold(folds, shuffle=True, random_state=model.seed).split(np.zeros(len(y)), y):
        tr_x = [texts[i] for i in tr]
        clf = LinearTextClassifier.train(tr_x, [labels[i] for i in tr], features, fold_model, cache=cache)
        docs_tr = extract_many(tr_x, features, clf.rewrite, cache)
        docs_ho = extract_many([texts[i] for i in ho], features, clf.rewrite, cache)
        main[ho] = np.log(np.clip(clf.feature_proba_many(docs_ho), 1e-300, None))
        block = VectorBlock.fit([words_of(d) for d in docs_tr], y[tr], len(classes), vectors[0], vectors[1])
        vec[ho], found[ho] = block.log_proba([words_of(d) for d in docs_ho])
    best_w, best = 0.0, _macro_f1(main, y)
    floor = best + BLEND_MIN_GAIN
    for w in BLEND_WEIGHTS:
        f1 = _macro_f1(np.where(found[:, None], (1.0 - w) * main + w * vec, main), y)
        if f1 >= floor and f1 > best:
            best_w, best = float(w), f1
    return best_w


def _read_yaml(path: Path) -> object:
    """A routing data file's YAML, or a :class:`TrainingDataError` naming the file and line."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise TrainingDataError(path, mark.line + 1 if mark else None, f"invalid YAML: {exc.problem}") from exc
    except OSError as exc:
        raise TrainingDataError(path, None, f"cannot read: {exc.strerror}") from exc


def load_categories(path: Path) -> tuple[list[str], list[str]]:
    """Read the default routing YAML: ``categories: {name: [example, …]}``."""
    doc = _read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), dict):
        raise TrainingDataError(path, 1, "expected 'categories:' mapping a category to a list of examples")
    texts, labels = [], []
    for name, examples in doc["categories"].items():
        if not isinstance(examples, list):
            raise TrainingDataError(path, None, f"category {name!r} must list examples")
        for example in examples:
            texts.append(str(example))
            labels.append(str(name))
    return texts, labels


# ------------------------------------------------------------------------------------------ tables
def _parse_text_columns(specs: Sequence[str]) -> list[str]:
    """``["title+text"]`` or ``["title", "text"]`` → ``["title", "text"]``."""
    columns: list[str] = []
    for spec in specs:
        columns.extend(c.strip() for c in spec.split("+") if c.strip())
    if not columns:
        raise InputDataError("no text column given")
    return columns


def read_table(path: Path, text_columns: Sequence[str], label_column: str | None) -> tuple[list[str], list[str]]:
    """Texts (given columns joined with '。') and labels from a CSV, XLSX or JSONL file.

    Rows with an empty text or label are skipped; missing columns raise :class:`InputDataError`.
    """
    columns = _parse_text_columns(text_columns)
    table = tables.read_table(Path(path))
    table.require(*columns, *([label_column] if label_column else []))
    texts: list[str] = []
    labels: list[str] = []
    for _, row in table.rows:
        text = JOIN.join(str(row.get(c) or "").strip() for c in columns).strip(JOIN)
        label = str(row.get(label_column) or "").strip() if label_column else ""
        if not text or (label_column and not label):
            continue
        texts.append(text)
        labels.append(label)
    if not texts:
        raise InputDataError(f"{path}: no usable rows")
    return texts, labels


def drop_overlapping(texts: Sequence[str], labels: Sequence[str], test_texts: Sequence[str],
                     containment: float = OVERLAP_CONTAINMENT) -> tuple[list[str], list[str], int]:
    """Leave out the rows of ``texts`` that repeat a test text (for an honest ``routing eval --extra``).

    Two files of one ticket system share tickets: a title in one file is the first column of a
    message in the other, or the message is there without its title. A row goes when the shorter of
    the two texts has at least ``OVERLAP_MIN_BIGRAMS`` distinct character bigrams and ``containment``
    of them occur in the longer; shorter texts go only on equality (also with the row's first column).
    Conservative: a few unrelated but similar tickets go too. Returns (texts, labels, dropped).
    """
    if not texts or not test_texts:
        return list(texts), list(labels), 0
    vec = CountVectorizer(analyzer="char", ngram_range=(2, 2), binary=True, lowercase=False)
    vec.fit([*texts, *test_texts])
    a = vec.transform(texts).astype(np.float32)
    b = vec.transform(test_texts).astype(np.float32)
    na = np.asarray(a.sum(axis=1)).ravel()
    nb = np.asarray(b.sum(axis=1)).ravel()
    exact = set(test_texts) | {t.split(JOIN, 1)[0] for t in test_texts}
    keep = np.ones(len(texts), dtype=bool)
    step = 2000  # rows of the dense shared-bigram block at a time
    for start in range(0, len(texts), step):
        shared = (a[start : start + step] @ b.T).toarray()
        shorter = np.minimum(na[start : start + step, None], nb[None, :])
        judged = shorter >= OVERLAP_MIN_BIGRAMS
        hit = judged & (shared >= containment * np.maximum(shorter, 1))
        keep[start : start + step] &= ~hit.any(axis=1)
    for i, text in enumerate(texts):
        if keep[i] and (text in exact or text.split(JOIN, 1)[0] in exact):
            keep[i] = False
    kept = [int(i) for i in np.flatnonzero(keep)]
    return [texts[i] for i in kept], [labels[i] for i in kept], int(len(texts) - len(kept))


def split(texts: Sequence[str], labels: Sequence[str], test_size: float = 0.2,
          seed: int = 42) -> tuple[list[str], list[str], list[str], list[str]]:
    """Stratified train/test split (fixed seed)."""
    if not 0.0 < test_size < 1.0:
        raise InputDataError("--test-size must be between 0 and 1")
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    stratify = list(labels) if min(counts.values()) >= 2 else None
    tr_x, te_x, tr_y, te_y = train_test_split(list(texts), list(labels), test_size=test_size, random_state=seed,
                                              stratify=stratify)
    return tr_x, te_x, tr_y, te_y
