"""Content checks: duplicate and near-duplicate phrasings across entries, missing or weak fields,
and canonical questions that retrieval sends to another entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from knowledge.base import KnowledgeBase
from knowledge.entries import Entry, iter_problems
from knowledge.transfer import NEAR_DUPLICATE, _key


@dataclass(frozen=True)
class Problem:
    kind: str  # duplicate | near-duplicate | field | shadowed
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def _where(e: Entry) -> str:
    return f"{e.source.name if e.source else '?'}:{e.line or '?'} {e.id}"


def check_entries(entries: Sequence[Entry], kb: KnowledgeBase | None = None) -> list[Problem]:
    problems = [Problem("field", p) for p in iter_problems(entries)]
    texts: list[str] = []
    owners: list[int] = []
    for i, e in enumerate(entries):
        for p in e.phrasings:
            texts.append(_key(p))
            owners.append(i)
    if texts:
        sims = process.cdist(texts, texts, scorer=fuzz.ratio, dtype=np.uint8, workers=1)
        rows, cols = np.nonzero(sims >= NEAR_DUPLICATE)
        seen: set[tuple[int, int]] = set()
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = owners[r], owners[c]
            if r >= c or a == b or (a, b) in seen:
                continue
            seen.add((a, b))
            exact = texts[r] == texts[c]
            problems.append(
                Problem(
                    "duplicate" if exact else "near-duplicate",
                    f"{_where(entries[a])} and {_where(entries[b])}: "
                    f"{texts[r]!r} ~ {texts[c]!r} ({int(sims[r, c])}%)",
                )
            )
    if kb is not None:
        for e in entries:
            hits = kb.search(e.question, k=1)
            if hits and hits[0].entry.id != e.id:
                problems.append(
                    Problem("shadowed", f"{_where(e)}: its own question finds {hits[0].entry.id} first")
                )
    return problems
