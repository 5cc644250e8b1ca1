"""Outside knowledge for routing: an operator-supplied word-vectors file blended into the model.

A routing model learns words only from its own tickets; a word it never saw (医疗保险 when the tickets say
医保) adds nothing. Pretrained word vectors know such words. Nothing is downloaded: the operator gives a
file (``routing train --vectors FILE``) in the common text format, one word and its floats per line, an
optional ``count dim`` first line (word2vec / fastText ``.vec``).

The vectors feed a small model of their own: a message is the mean of its words' unit vectors,
standardised, then a multinomial logistic regression over the departments. That model is linear in the
mean, so each word's contribution can be computed once, at training: ``table[word] = vector @ W``
(departments' scores per word). Only the table is saved (words × departments, float32), not the
vectors, and routing one message adds a lookup per word and one mean. Its log-probabilities are mixed
with the main model's, ``(1 - weight) * main + weight * vectors``, the weight chosen by cross-validation
on the training rows only (0 when the vectors do not help there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from intents.errors import InputDataError
from intents.tokens import normalize, tokenizer

BLEND_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
VECTOR_C = 1.0
_DIGIT_RE = re.compile(r"\d")


def _word_key(word: str) -> str:
    """A vectors file's word as the routing features spell it (normalised, digits folded to 0)."""
    return _DIGIT_RE.sub("0", normalize(word))


def routable(word: str) -> bool:
    """Whether the routing features can ever produce ``word``: jieba without its HMM emits dictionary
    words (the intents vocabulary, with the community dictionary) and single characters only."""
    return len(word) == 1 or tokenizer().FREQ.get(word, 0) > 0


def read_vectors(path: Path, keep: Callable[[str], bool] | None = routable) -> tuple[list[str], np.ndarray]:
    """Words and their vectors (float32) from a text file: ``word f1 f2 …`` per line.

    A first line of two integers (``count dim``) is skipped. Words are normalised as the features are;
    the first vector of a word wins. ``keep`` filters words (default: those the features can produce).
    A malformed line raises :class:`InputDataError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: vectors file not found")
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim = 0
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                parts = line.rstrip("\n").rstrip().split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue
                if not parts or parts == [""]:
                    continue
                if len(parts) < 2:
                    raise InputDataError(f"{path}:{number}: expected a word and its numbers")
                try:
                    vec = np.array(parts[1:], dtype=np.float32)
                except ValueError:
                    raise InputDataError(f"{path}:{number}: not a number after the word {parts[0]!r}") from None
                if dim == 0:
                    dim = len(vec)
                elif len(vec) != dim:
                    raise InputDataError(f"{path}:{number}: {len(vec)} numbers, the first line had {dim}")
                word = _word_key(parts[0])
                if word in seen or (keep is not None and not keep(word)):
                    continue
                norm = float(np.linalg.norm(vec))
                if not math.isfinite(norm) or norm == 0.0:
                    continue
                seen.add(word)
                words.append(word)
                rows.append(vec / norm)
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if not words:
        raise InputDataError(f"{path}: no usable word vectors")
    return words, np.vstack(rows)


def read_vectors_option(path: Path | None, weight: float | None) -> tuple[list[str], np.ndarray] | None:
    """The command line's ``--vectors FILE`` / ``--vector-weight W``: the file read (and said so), or None."""
    if weight is not None and not 0.0 <= weight <= 1.0:
        raise InputDataError("--vector-weight must be between 0 and 1")
    if path is None:
        if weight is not None:
            raise InputDataError("--vector-weight needs --vectors FILE")
        return None
    words, matrix = read_vectors(path)
    print(f"vectors: {len(words)} words of {matrix.shape[1]} dimensions from {path}")
    return words, matrix


def words_of(features: Sequence[str]) -> list[str]:
    """The words among a message's routing features: the leading ``w…`` ones (:func:`intents.features.extract`
    puts a message's words first, then its word bigrams and character n-grams)."""
    words = []
    for f in features:
        if f[0] != "w":
            break
        words.append(f[1:])
    return words


def _mean_vectors(docs: Iterable[Sequence[str]], index: dict[str, int], matrix: np.ndarray) -> np.ndarray:
    rows = []
    for words in docs:
        ids = [i for i in (index.get(w) for w in words) if i is not None]
        rows.append(matrix[ids].mean(axis=0) if ids else np.zeros(matrix.shape[1], dtype=matrix.dtype))
    return np.vstack(rows) if rows else np.zeros((0, matrix.shape[1]), dtype=matrix.dtype)


@dataclass
class VectorBlock:
    """Per-word department scores learned from outside word vectors, and their weight in the mix."""

    index: dict[str, int]
    table: np.ndarray  # words × classes (float32)
    bias: np.ndarray  # classes
    weight: float

    @classmethod
    def fit(cls, docs: Sequence[Sequence[str]], y: np.ndarray, n_classes: int, words: Sequence[str],
            matrix: np.ndarray, c: float = VECTOR_C, weight: float = 0.0) -> VectorBlock:
        """Fit on the training messages' words (``docs``) and labels ``y`` (class indices)."""
        index = {w: i for i, w in enumerate(words)}
        x = _mean_vectors(docs, index, matrix).astype(np.float64)
        mu = x.mean(axis=0)
        sd = x.std(axis=0) + 1e-6
        lr = LogisticRegression(C=c, max_iter=2000).fit((x - mu) / sd, y)
        coef = np.zeros((n_classes, x.shape[1]))
        bias = np.full(n_classes, -1e3)
        coef[lr.classes_] = lr.coef_
        bias[lr.classes_] = lr.intercept_
        w = coef.T / sd[:, None]  # dims × classes, on the unscaled mean
        bias = bias - mu @ w
        # Keep only the words of the vectors file; the table is what inference reads.
        table = (matrix.astype(np.float64) @ w).astype(np.float32)
        return cls(index, table, bias, weight)

    def log_proba(self, docs: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Log-probabilities of each message and whether any of its words has a vector."""
        out = np.zeros((len(docs), len(self.bias)))
        found = np.zeros(len(docs), dtype=bool)
        index = self.index
        for row, words in enumerate(docs):
            ids = [i for i in (index.get(w) for w in words) if i is not None]
            if ids:
                out[row] = self.table[ids].mean(axis=0)
                found[row] = True
        return log_softmax(out + self.bias), found

    def mix_one(self, main_scores: np.ndarray, words: Sequence[str]) -> np.ndarray:
        """Probabilities of the mix for one message, from the main model's tempered scores.

        ``(1 - w) * log p_main + w * log p_vectors`` differs from ``(1 - w) * main_scores + w * scores``
        by a constant, which the softmax removes: one softmax instead of three.
        """
        index = self.index
        ids = [i for i in map(index.get, words) if i is not None]
        z = main_scores
        if ids and self.weight > 0.0:
            # sum / n rather than .mean(): numpy's mean costs more than the rest of the mix on 7 numbers
            z = (1.0 - self.weight) * main_scores + self.weight * (self.table[ids].sum(axis=0) / len(ids) + self.bias)
        e = np.exp(z - z.max())
        return np.asarray(e / e.sum())

    def mix(self, main_log_proba: np.ndarray, docs: Sequence[Sequence[str]], weight: float | None = None) -> np.ndarray:
        """Probabilities of the mix (rows without a known word keep the main model's)."""
        w = self.weight if weight is None else weight
        if w <= 0.0:
            return np.exp(main_log_proba)
        lp, found = self.log_proba(docs)
        mixed = np.where(found[:, None], (1.0 - w) * main_log_proba + w * lp, main_log_proba)
        return np.exp(log_softmax(mixed))

    # ------------------------------------------------------------------ persistence (inside the .npz)
    def arrays(self) -> dict[str, np.ndarray]:
        words = sorted(self.index, key=self.index.__getitem__)
        return {"vec_words": np.array(words, dtype=str), "vec_table": self.table.astype(np.float32),
                "vec_bias": self.bias, "vec_weight": np.array(self.weight)}

    @classmethod
    def from_arrays(cls, z: dict[str, np.ndarray] | np.lib.npyio.NpzFile) -> VectorBlock | None:
        if "vec_words" not in z:
            return None
        words = [str(w) for w in z["vec_words"]]
        return cls({w: i for i, w in enumerate(words)}, np.asarray(z["vec_table"], dtype=np.float32),
                   np.asarray(z["vec_bias"], dtype=np.float64), float(z["vec_weight"]))


def log_softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=-1, keepdims=True)
    return np.asarray(z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))
