"""Known answers for norms.py, which writes the paper's norm-growth numbers and sentence: rows with planted
norms, tables with a planted peak (first, middle, last layer), ties, a flat profile and a non-layer key."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from layerwise.norms import norm_growth, norm_statistics, norm_summary_sentence, norm_table


def rows_with_norms(norms: np.ndarray, width: int = 8, seed: int = 0) -> np.ndarray:
    """Random directions scaled to exactly the given norms."""
    x = np.random.default_rng(seed).standard_normal((len(norms), width))
    return x / np.linalg.norm(x, axis=1, keepdims=True) * np.asarray(norms, dtype=np.float64)[:, None]


def test_statistics_of_planted_norms():
    stats = norm_statistics(rows_with_norms(np.arange(1, 102)))  # norms 1..101: quantile q sits at 1 + 100 q
    assert stats["min"] == pytest.approx(1) and stats["max"] == pytest.approx(101)
    assert stats["mean"] == pytest.approx(51)
    for name, q in (("q05", 0.05), ("q25", 0.25), ("q50", 0.5), ("q75", 0.75), ("q95", 0.95)):
        assert stats[name] == pytest.approx(1 + 100 * q), name


def test_float16_rows_whose_squared_norm_overflows_keep_their_norm():
    stats = norm_statistics(rows_with_norms(np.full(4, 1000.0), width=4).astype(np.float16))
    assert stats["mean"] == pytest.approx(1000, rel=1e-3)  # ‖x‖² = 1e6 > float16 max


@pytest.mark.parametrize("shape", [(0, 4), (4,), (2, 3, 4)])
def test_statistics_refuse_empty_flat_or_unflattened_input(shape):
    """Not a [n, width] matrix: refused, not reduced over the wrong axis ([texts, positions, width] included)."""
    with pytest.raises(ValueError):
        norm_statistics(np.zeros(shape))


def test_a_single_row_is_a_valid_layer():
    stats = norm_statistics(rows_with_norms(np.array([7.0])))
    assert stats["min"] == stats["q50"] == stats["max"] == pytest.approx(7)


def test_table_uses_only_the_selected_rows():
    layer = rows_with_norms(np.array([1.0, 2.0, 3.0, 400.0]))
    table = norm_table({5: layer}, rows=np.array([0, 1, 2]))
    value = table.set_index("stat")["value"]
    assert value["max"] == pytest.approx(3) and value["mean"] == pytest.approx(2)
    assert set(table["layer"]) == {5} and list(table.columns) == ["layer", "stat", "value"]


def table_of(profile: dict, median: dict | None = None) -> pd.DataFrame:
    """A norm table with planted mean (and median) per layer."""
    median = median or profile
    return pd.DataFrame.from_records(
        [{"layer": l, "stat": "mean", "value": v} for l, v in profile.items()]
        + [{"layer": l, "stat": "q50", "value": v} for l, v in median.items()])


def test_growth_is_last_over_first_numeric_layer_whatever_the_order_and_extra_keys():
    table = table_of({3: 12.0, 0: 2.0, "final_norm": 1000.0, 1: 50.0})
    assert norm_growth(table) == pytest.approx(6.0)
    assert norm_growth(table_of({0: 2.0, 1: 3.0}, {0: 4.0, 1: 1.0}), "q50") == pytest.approx(0.25)


def numbers(sentence: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d+(?:\.\d+)?", sentence)]


@pytest.mark.parametrize("profile, peak", [
    ({0: 9.0, 1: 3.0, 2: 2.0}, 0),  # peak at the first layer
    ({0: 1.0, 1: 8.0, 2: 2.0}, 1),  # in the middle
    ({0: 1.0, 1: 2.0, 2: 4.0}, 2),  # at the last layer
    ({0: 1.0, 1: 5.0, 2: 5.0}, 1),  # a tie: the first of the tied layers
    ({0: 3.0, 1: 3.0, 2: 3.0}, 0),  # flat: factor 1, the first layer
])
def test_sentence_names_the_planted_peak_and_factor(profile, peak):
    median = {l: 2.0 + 2 * l for l in profile}  # 2, 4, 6: peaks at the last layer, grows 3x
    sentence = norm_summary_sentence(table_of(profile, median), "M_1")
    first, last = profile[0], profile[2]
    assert sentence.startswith(f"In M\\_1 the mean norm goes from {first:.3g} (layer 0) to {last:.3g} (layer 2), "
                               f"a factor of {last / first:.3g}, peaking at layer {peak} ({profile[peak]:.3g});")
    assert "the median goes from 2 to 6 (a factor of 3, peak at layer 2)" in sentence
    gap = {l: profile[l] / median[l] for l in profile}
    widest = max(gap, key=lambda l: (gap[l], -l))
    assert sentence.endswith(f"most at layer {widest} ({gap[widest]:.3g}$\\times$).")
