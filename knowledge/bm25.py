"""Okapi BM25 over pre-tokenised documents, with postings held as numpy arrays.

Small and fast on purpose: a query touches only the postings of its own terms and one
``bincount`` produces the scores of every document. Scores can be normalised by the query's
"self score" (what a document made of exactly the query's terms would get), which makes them
comparable across queries: words the index has never seen count against the query.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class BM25:
    """Immutable BM25 index; safe to query from many threads."""

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.n_docs = len(docs)
        lengths = np.array([len(d) for d in docs], dtype=np.float64)
        self.avgdl = float(lengths.mean()) if self.n_docs and lengths.sum() else 1.0
        ids: dict[str, list[int]] = {}
        tfs: dict[str, list[int]] = {}
        for doc_id, doc in enumerate(docs):
            for term, tf in Counter(doc).items():
                ids.setdefault(term, []).append(doc_id)
                tfs.setdefault(term, []).append(tf)
        norm: FloatArray = k1 * (1.0 - b + b * lengths / self.avgdl)
        self._postings: dict[str, tuple[npt.NDArray[np.int64], FloatArray]] = {}
        self._idf: dict[str, float] = {}
        for term, doc_ids in ids.items():
            arr = np.asarray(doc_ids, dtype=np.int64)
            tf_arr = np.asarray(tfs[term], dtype=np.float64)
            idf = self._idf_for(len(doc_ids))
            self._idf[term] = idf
            self._postings[term] = (arr, idf * tf_arr * (k1 + 1.0) / (tf_arr + norm[arr]))
        # Unknown terms weigh as much as the rarest possible term.
        self.unknown_idf = self._idf_for(0)

    def _idf_for(self, df: int) -> float:
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    def idf(self, term: str) -> float:
        return self._idf.get(term, self.unknown_idf)

    def docs(self, term: str) -> npt.NDArray[np.int64]:
        """Ids of the documents holding ``term``."""
        found = self._postings.get(term)
        return found[0] if found is not None else np.zeros(0, dtype=np.int64)

    def __contains__(self, term: str) -> bool:
        return term in self._postings

    def scores(self, terms: Iterable[str]) -> FloatArray:
        """BM25 score of every document for the (de-duplicated) query terms."""
        found = [self._postings[t] for t in dict.fromkeys(terms) if t in self._postings]
        if not found:
            return np.zeros(self.n_docs)
        if len(found) == 1:
            out = np.zeros(self.n_docs)
            out[found[0][0]] = found[0][1]
            return out
        doc_ids = np.concatenate([p[0] for p in found])
        weights = np.concatenate([p[1] for p in found])
        return np.bincount(doc_ids, weights=weights, minlength=self.n_docs).astype(np.float64, copy=False)

    def sparse_scores(self, terms: Iterable[str]) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """(ids, scores) of the documents holding any of the (de-duplicated) query terms, ids sorted:
        the same scores as ``scores`` without touching the documents that score 0."""
        found = [self._postings[t] for t in dict.fromkeys(terms) if t in self._postings]
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        if len(found) == 1:
            return found[0]
        doc_ids = np.concatenate([p[0] for p in found])
        weights = np.concatenate([p[1] for p in found])
        ids, inverse = np.unique(doc_ids, return_inverse=True)
        sums: FloatArray = np.bincount(inverse, weights=weights, minlength=len(ids)).astype(np.float64)
        return ids.astype(np.int64, copy=False), sums

    def self_score(self, terms: Iterable[str]) -> float:
        """Score a single-occurrence, average-length document of the query terms would get."""
        return sum(self.idf(t) for t in dict.fromkeys(terms))
