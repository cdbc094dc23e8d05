"""Norm statistics: the median shows the typical token when a few outliers pull the mean."""

import numpy as np
import pytest

from layerwise.norms import norm_growth, norm_summary_sentence, norm_table


def planted_layers() -> dict[int, np.ndarray]:
    """Layer 0: unit-norm rows; layer 1: rows of norm 2 plus one row of norm 1000 among 100."""
    rng = np.random.default_rng(0)
    unit = rng.standard_normal((100, 16))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    last = 2 * unit.copy()
    last[7] *= 500
    return {0: unit.astype(np.float16), 1: last.astype(np.float16)}


def test_median_growth_ignores_one_outlier_that_the_mean_follows():
    table = norm_table(planted_layers())
    assert norm_growth(table, "q50") == pytest.approx(2.0, rel=1e-3)
    assert norm_growth(table) == pytest.approx((99 * 2 + 1000) / 100, rel=1e-3)


def test_summary_names_both_curves_and_where_they_part():
    sentence = norm_summary_sentence(norm_table(planted_layers()), "M")
    assert "the median goes from 1 to 2" in sentence
    assert "most at layer 1 (5.99" in sentence  # mean / median = 11.98 / 2
