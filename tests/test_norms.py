"""Norm statistics: the median shows the typical token when a few outliers pull the mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerwise.norms import norm_growth, norm_statistics, norm_summary_sentence, norm_table


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


# --------------------------------------------------------------------------- the post's norm-growth claims

def test_growth_statistics_on_known_profiles():
    from layerwise.norms import growth_statistics
    exponential = growth_statistics(2.0 ** np.arange(6))
    assert exponential["exponential_fit"] == pytest.approx(1.0)
    assert exponential["growth_per_layer"] == pytest.approx(100.0)
    assert exponential["last_ratio"] == pytest.approx(2.0)
    jump = growth_statistics([1.0, 1.0, 1.0, 1.0, 10.0])  # flat, then one large last layer
    assert jump["last_ratio"] == pytest.approx(10.0) and jump["exponential_fit"] < 0.9
    falling = growth_statistics(0.5 ** np.arange(6))
    assert falling["exponential_fit"] == pytest.approx(-1.0) and falling["last_ratio"] == pytest.approx(0.5 ** 5)
    with pytest.raises(ValueError, match="positive"):
        growth_statistics([1.0, 0.0, 2.0])
    two = growth_statistics([1.0, 3.0])  # a 2-block model: a ratio, but no trend to fit
    assert two["last_ratio"] == 3.0 and np.isnan(two["exponential_fit"]) and np.isnan(two["growth_per_layer"])


def test_per_text_norms_average_each_texts_selected_vectors():
    from layerwise.norms import per_text_norms
    layer = np.array([[3.0, 4.0], [0.0, 5.0], [6.0, 8.0], [100.0, 0.0]])  # norms 5, 5, 10, 100
    text_index = np.array([0, 0, 1, 1])
    keep = np.array([True, True, True, False])  # the last row (position 0 of text 1, say) left out
    table = per_text_norms({0: layer, "final_norm": 2 * layer}, text_index, keep)
    assert table.set_index(["layer", "text"])["norm"].to_dict() == {
        ("0", 0): 5.0, ("0", 1): 10.0, ("final_norm", 0): 10.0, ("final_norm", 1): 20.0}


def test_norm_growth_evidence_uses_the_final_norm_as_the_last_layer_and_resamples_texts():
    """Texts with mean norms 2^layer (times a per-text factor): exponential, last over the rest 2x. In the post's
    setting the final norm's output (norm 1) replaces layer n: the last layer is no longer larger."""
    import pandas as pd
    from layerwise.norms import norm_growth_evidence
    rng = np.random.default_rng(0)
    rows = []
    for text in range(40):
        factor = rng.uniform(0.8, 1.2)
        rows += [{"text": text, "layer": str(l), "norm": factor * 2.0 ** l} for l in range(7)]
        rows.append({"text": text, "layer": "final_norm", "norm": 1.0})
    table = pd.DataFrame(rows)
    ours = norm_growth_evidence(table[table["layer"] != "final_norm"], n_boot=200)
    assert ours["last_ratio"][0] == pytest.approx(2.0) and ours["last_ratio"][1] <= 2.0 <= ours["last_ratio"][2]
    assert ours["exponential_fit"][1] > 0.99
    post = norm_growth_evidence(table, n_boot=200)
    assert post["last_ratio"][2] < 1.0  # 1 against 2^5 = 32 of layer 5
    assert post["exponential_fit"][0] < 0.9


# --------------------------------------------------------------------------- known answers
# Rows with planted norms, tables with a planted peak (first, middle, last layer), ties, a flat profile and a
# non-layer key.

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
