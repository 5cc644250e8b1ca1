"""A small per-text memo for the question's analysis (folding, typo repair), forgotten whenever
jieba's vocabulary changes (``tokens.generation()``) and all at once when full."""

from __future__ import annotations

from collections.abc import Callable

from intents import tokens


class TextMemo:
    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._answers: dict[str, str] = {}
        self._generation = -1

    def get(self, text: str, compute: Callable[[str], str]) -> str:
        """``compute(text)``, remembered for the same text while the vocabulary stays the same."""
        generation = tokens.generation()
        if generation != self._generation:
            self._answers, self._generation = {}, generation
        answer = self._answers.get(text)
        if answer is None:
            answer = compute(text)
            if len(self._answers) >= self.kept:
                self._answers.clear()
            self._answers[text] = answer
        return answer
