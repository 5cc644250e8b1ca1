"""Small memos for the question's analysis (folding, typo repair, the cut of a reduced question),
forgotten whenever jieba's vocabulary changes (``tokens.generation()``) and all at once when full."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from intents import tokens

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._answers: dict[K, V] = {}
        self._generation = -1

    def get(self, key: K, compute: Callable[[K], V]) -> V:
        """``compute(key)``, remembered for the same key while the vocabulary stays the same."""
        generation = tokens.generation()
        if generation != self._generation:
            self._answers, self._generation = {}, generation
        answer = self._answers.get(key)
        if answer is None:
            answer = compute(key)
            if len(self._answers) >= self.kept:
                self._answers.clear()
            self._answers[key] = answer
        return answer


class TextMemo(Memo[str, str]):
    """A memo of one text's transformation (its folded form, its repair)."""
