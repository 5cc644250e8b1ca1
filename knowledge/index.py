"""The retrieval index: BM25 over words and character bigrams, re-ranked with rapidfuzz.

First stage (cheap, every entry):
  * word BM25 over each phrasing (canonical question and alternatives), best phrasing per entry;
  * character-bigram BM25 over the phrasings (robust to jieba cutting a typo differently);
  * word BM25 over the answers and tags, weighted lower.
Each is normalised by the query's self score, so it reads as "how much of the query is covered".

Second stage (the best ``candidates`` entries): rapidfuzz similarity between the folded query and
each phrasing. The final score is a weighted mix in 0..1 (weights in ``RetrievalConfig``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from knowledge.bm25 import BM25
from knowledge.entries import Entry
from knowledge.text import Analyzer


@dataclass(frozen=True)
class IndexWeights:
    """Weights of the score features; they sum to 1 so the final score stays in 0..1."""

    words: float = 0.35
    grams: float = 0.15
    answer: float = 0.20
    fuzzy: float = 0.30


@dataclass(frozen=True)
class Scored:
    position: int  # index into SearchIndex.entries
    score: float
    features: dict[str, float]


class SearchIndex:
    """Immutable index over a fixed list of entries; build a new one to change content."""

    def __init__(
        self,
        entries: Sequence[Entry],
        analyzer: Analyzer,
        weights: IndexWeights | None = None,
        candidates: int = 30,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        self.entries = tuple(entries)
        self.analyzer = analyzer
        self.weights = weights or IndexWeights()
        self.candidates = candidates
        phrase_words: list[tuple[str, ...]] = []
        phrase_grams: list[tuple[str, ...]] = []
        phrase_texts: list[str] = []
        owner: list[int] = []
        starts: list[int] = []
        answer_words: list[tuple[str, ...]] = []
        for pos, entry in enumerate(self.entries):
            starts.append(len(owner))
            for phrasing in entry.phrasings:
                a = analyzer.analyse(phrasing)
                phrase_words.append(a.words)
                phrase_grams.append(a.grams)
                phrase_texts.append(a.text)
                owner.append(pos)
            answer_words.append(analyzer.analyse(" ".join((entry.answer, *entry.tags))).words)
        self._starts = np.asarray(starts, dtype=np.int64)
        self._owner = np.asarray(owner, dtype=np.int64)
        self._phrase_texts = phrase_texts
        self._words = BM25(phrase_words, k1=k1, b=b)
        self._grams = BM25(phrase_grams, k1=k1, b=b)
        self._answers = BM25(answer_words, k1=k1, b=b)

    def __len__(self) -> int:
        return len(self.entries)

    def _best_phrasing(self, doc_scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.maximum.reduceat(doc_scores, self._starts) if len(self._starts) else doc_scores[:0]

    def search(self, text: str, k: int) -> list[Scored]:
        """Best ``k`` entries for ``text``, best first, scores in 0..1."""
        if not self.entries or k <= 0:
            return []
        q = self.analyzer.analyse(text)
        if not q.text or (not q.words and not q.grams):
            return []
        n = len(self.entries)
        w_norm = self._words.self_score(q.words) or 1.0
        g_norm = self._grams.self_score(q.grams) or 1.0
        a_norm = self._answers.self_score(q.words) or 1.0
        words = np.minimum(self._best_phrasing(self._words.scores(q.words)) / w_norm, 1.0)
        grams = np.minimum(self._best_phrasing(self._grams.scores(q.grams)) / g_norm, 1.0)
        answer = np.minimum(self._answers.scores(q.words) / a_norm, 1.0)
        wt = self.weights
        first = wt.words * words + wt.grams * grams + wt.answer * answer
        m = min(self.candidates, n)
        if m < n:
            cand = np.argpartition(-first, m - 1)[:m]
        else:
            cand = np.arange(n)
        cand = cand[first[cand] > 0]
        if not len(cand):
            return []
        # Second stage: fuzzy similarity of the folded query to every phrasing of the candidates.
        ends = np.append(self._starts[1:], len(self._owner))
        spans = [(int(self._starts[c]), int(ends[c])) for c in cand]
        choices = [t for s, e in spans for t in self._phrase_texts[s:e]]
        sims = process.cdist([q.text], choices, scorer=fuzz.ratio, dtype=np.float64)[0] / 100.0
        out: list[Scored] = []
        offset = 0
        for c, (s, e) in zip(cand, spans, strict=True):
            fz = float(sims[offset : offset + e - s].max())
            offset += e - s
            pos = int(c)
            feats = {
                "words": float(words[pos]),
                "grams": float(grams[pos]),
                "answer": float(answer[pos]),
                "fuzzy": fz,
            }
            out.append(Scored(pos, float(first[pos]) + wt.fuzzy * fz, feats))
        out.sort(key=lambda s: (-s.score, s.position))
        return out[:k]
