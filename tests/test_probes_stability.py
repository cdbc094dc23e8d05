"""Seed stability: accuracy spread over text splits, and top dimensions that must not move."""

import numpy as np
import pytest

from layerwise.probes.stability import jaccard, seed_stability


def test_jaccard_values():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == pytest.approx(0.5)
    assert jaccard({1}, {2}) == 0.0
    assert jaccard(set(), set()) == 1.0


def test_fixed_carrying_dimensions_are_found_by_every_seed():
    """Layer l is shifted along dimension l only: every split must rank dimension l first for layer l."""
    rng = np.random.default_rng(0)
    n_texts, per_text, n_layers = 60, 40, 4
    text_ids = np.repeat(np.arange(n_texts), per_text)
    y = np.tile(np.arange(n_layers), n_texts * per_text // n_layers)
    X = rng.standard_normal((y.size, 12)).astype(np.float32)
    X[np.arange(y.size), y] += 3.0
    seeds = (0, 1, 2)
    result = seed_stability(X, y, text_ids, seeds, top_n=1, k_frequent=n_layers)
    assert list(result.runs.columns) == ["seed", "accuracy", "macro_f1", "frequent_dims"]
    assert list(result.runs["seed"]) == list(seeds)
    assert (result.runs["accuracy"] > 0.85).all()
    assert set(result.runs["frequent_dims"]) == {"0,1,2,3"}
    assert len(result.overlap) == 3 * (n_layers + 1)  # 3 seed pairs x (4 layers + the frequent set)
    assert (result.overlap["jaccard"] == 1.0).all()
    summary = result.summary().iloc[0]
    assert summary["accuracy_mean"] == pytest.approx(result.runs["accuracy"].mean())
    assert summary["accuracy_std"] == pytest.approx(np.std(result.runs["accuracy"], ddof=1))
    assert summary["accuracy_std"] < 0.03
    assert summary["top_jaccard_mean"] == 1.0 and summary["frequent_jaccard_mean"] == 1.0


def test_needs_two_distinct_seeds():
    with pytest.raises(ValueError, match="two distinct seeds"):
        seed_stability(np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), np.arange(4), seeds=(1, 1))
