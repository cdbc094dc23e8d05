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
