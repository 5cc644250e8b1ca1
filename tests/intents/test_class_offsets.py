"""Per-class score offsets (intents.classifier.fit_class_offsets), used by complaint routing."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from intents.classifier import fit_class_offsets, validated_class_offsets


def _scores(rng: np.random.Generator, n: int, favour: float) -> tuple[np.ndarray, np.ndarray]:
    """Three classes; class 0 (a broad catch-all) gets ``favour`` added to its score everywhere."""
    y = rng.integers(0, 3, n)
    scores = rng.normal(0.0, 0.5, (n, 3))
    scores[np.arange(n), y] += 1.0
    scores[:, 0] += favour
    return scores, y


def test_offsets_undo_a_score_advantage_of_a_broad_class():
    rng = np.random.default_rng(1)
    scores, y = _scores(rng, 3000, favour=0.4)
    offsets = validated_class_offsets(scores, y)
    assert offsets[0] - offsets[1:].mean() < -0.2  # the favoured class is pulled back
    test_scores, test_y = _scores(rng, 3000, favour=0.4)
    before = f1_score(test_y, test_scores.argmax(1), average="macro")
    after = f1_score(test_y, (test_scores + offsets).argmax(1), average="macro")
    assert after > before + 0.02  # and the gain holds on fresh scores


def test_no_offsets_when_the_gain_is_only_noise():
    rng = np.random.default_rng(2)
    scores, y = _scores(rng, 300, favour=0.0)  # no class is favoured, but on a small sample ...
    assert fit_class_offsets(scores, y, min_gain=0.0).any()  # ... the search "finds" a gain (1.4 points)
    assert not fit_class_offsets(scores, y, min_gain=0.03).any()


def test_offsets_kept_only_when_their_gain_holds_on_scores_not_searched():
    """A search fitted to noise clears the in-sample bar often (twice or more in three samples here)
    and the held-out check rarely (once in twelve): on teddy2020c titles the in-sample rule kept offsets
    on two splits of five and they cost 0.4-0.6 points of macro-F1 on the test split."""
    in_sample = held_out = 0
    for seed in range(2, 8):
        rng = np.random.default_rng(seed)
        for n in (300, 1000):
            scores, y = _scores(rng, n, favour=0.0)
            in_sample += bool(fit_class_offsets(scores, y).any())
            held_out += bool(validated_class_offsets(scores, y).any())
    assert in_sample >= 6
    assert held_out <= 2
