"""Cross-study view: bootstrap estimators against direct computation, rank correlations on planted data, join."""

import numpy as np
import pandas as pd
import pytest

from layerwise.crossstudy.view import (anisotropy_from_moments, anisotropy_replicates, correlation_table, join_layers,
                                       multiplicities, per_text_sums, ratio_replicates, spearman, text_codes,
                                       text_moments, twonn_replicates)
from layerwise.geometry import anisotropy, twonn


def _per_text_layer_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[T, L, tokens] planted values → per-text sums and counts [T, L]."""
    return values.sum(axis=2), np.full(values.shape[:2], float(values.shape[2]))


def _correlation(x_values: np.ndarray, y_values: np.ndarray, seed: int, n_boot: int = 200) -> pd.Series:
    weights = multiplicities(x_values.shape[0], n_boot, np.random.default_rng(seed))
    px, rx = ratio_replicates(*_per_text_layer_values(x_values), weights)
    py, ry = ratio_replicates(*_per_text_layer_values(y_values), weights)
    return correlation_table("m", {"x": px, "y": py}, {"x": rx, "y": ry}, [("x", "y")]).iloc[0]


def test_planted_monotone_relation_gives_rho_one_and_an_interval_excluding_zero():
    rng = np.random.default_rng(0)
    layers = np.arange(12, dtype=float)
    # y is a monotone (non-linear) function of the layer's x; text noise is small against the layer spacing
    x = layers[None, :, None] + rng.normal(0, 0.05, (30, 12, 5))
    y = np.exp(layers / 3)[None, :, None] + rng.normal(0, 0.01, (30, 12, 5))
    row = _correlation(x, y, seed=1)
    assert row["rho"] == pytest.approx(1.0)
    assert row["ci_low"] > 0 and row["interval"] == "excludes 0"
    decreasing = _correlation(x, -y, seed=1)
    assert decreasing["rho"] == pytest.approx(-1.0) and decreasing["ci_high"] < 0


def test_independent_columns_give_intervals_that_include_zero_in_most_seeds():
    includes = 0
    seeds = range(20)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        # neither column depends on the layer nor on the other: only text-level noise
        x = rng.normal(0, 1, (25, 10, 4))
        y = rng.normal(0, 1, (25, 10, 4))
        includes += _correlation(x, y, seed=seed + 100)["interval"] == "includes 0"
    assert includes >= 16, f"interval included 0 in only {includes} of {len(seeds)} seeds"


def test_ratio_replicates_equal_means_over_texts_repeated_by_their_draw_count():
    rng = np.random.default_rng(3)
    values = rng.normal(size=40)
    texts = rng.integers(0, 6, size=40)
    codes, _ = text_codes(texts)
    sums, counts = per_text_sums(values, codes, 6)
    weights = multiplicities(6, 5, rng)
    point, reps = ratio_replicates(sums[:, None], counts[:, None], weights)
    assert point[0] == pytest.approx(values.mean())
    for b in range(5):
        repeated = np.repeat(values, weights[b][codes].astype(int))
        assert reps[b, 0] == pytest.approx(repeated.mean())


@pytest.mark.parametrize("width", [9, 80])  # below and above the width where Lanczos replaces eigh
def test_sufficient_statistics_anisotropy_equals_direct_svd_of_the_pooled_centred_batch(width):
    rng = np.random.default_rng(4)
    # a large shared offset (as in residual streams) and one dominant direction
    x = rng.normal(size=(120, width)) * np.linspace(5.0, 0.5, width) + 300.0
    codes = rng.integers(0, 10, size=120)
    centred = x - x.mean(0)
    singular = np.linalg.svd(centred, compute_uv=False)
    direct = singular[0] ** 2 / (singular**2).sum()
    weights = multiplicities(10, 4, rng)
    point, reps = anisotropy_replicates(x, codes, weights)
    assert point == pytest.approx(direct, rel=1e-10)
    assert point == pytest.approx(anisotropy(x, backend="numpy"), rel=1e-10)
    for b in range(4):
        pooled = np.repeat(x, weights[b][codes].astype(int), axis=0)
        s = np.linalg.svd(pooled - pooled.mean(0), compute_uv=False)
        assert reps[b] == pytest.approx(s[0] ** 2 / (s**2).sum(), rel=1e-9)
    counts, sums, second = text_moments(x, codes, 10)
    assert counts.sum() == 120 and second.shape == (10, width, width)
    assert anisotropy_from_moments(counts, sums, second, np.ones((1, 10)))[0] == pytest.approx(direct, rel=1e-10)


def test_twonn_replicates_match_the_library_on_the_pool_and_shift_with_reweighting():
    rng = np.random.default_rng(5)
    x = np.hstack([rng.normal(size=(300, 3)), np.zeros((300, 7))])  # a 3-d cloud in 10 dimensions
    codes = rng.integers(0, 15, size=300)
    weights = np.vstack([np.ones(15), multiplicities(15, 3, rng)])
    point, reps = twonn_replicates(x, codes, weights, fraction=0.9, block_size=64, n_candidates=8)
    assert point == pytest.approx(twonn(x, fraction=0.9, backend="numpy").dimension)
    assert reps[0] == pytest.approx(point)  # every text once: the pool itself
    assert 2.0 < point < 4.0 and np.all(np.isfinite(reps))


def test_spearman_ignores_missing_layers_and_is_nan_when_undefined():
    assert spearman(np.array([1, 2, np.nan, 4]), np.array([3, 5, 7, 9])) == pytest.approx(1.0)
    assert np.isnan(spearman(np.array([1, 1, 1, 1.0]), np.array([1, 2, 3, 4.0])))


def test_correlation_without_resamples_has_no_interval():
    points = {"x": np.arange(5.0), "y": np.arange(5.0) ** 2}
    table = correlation_table("m", points, {"y": np.tile(points["y"], (10, 1))}, [("x", "y"), ("x", "absent")])
    assert len(table) == 1  # the pair with a quantity this model lacks is skipped
    row = table.iloc[0]
    assert row["rho"] == pytest.approx(1.0) and row["interval"] == "none" and np.isnan(row["ci_low"])


def test_join_has_one_row_per_model_and_layer_with_relative_depth():
    a = pd.DataFrame({"layer": [2, 0, 1, 3], "anisotropy": [0.3, 0.1, 0.2, 0.4]})
    b = pd.DataFrame({"layer": [0, 1, 2, 3], "kl_final": [4.0, 3, 2, 1]})
    joined = join_layers("m", 3, {"geometry": a, "lens": b})
    assert len(joined) == 4 and not joined.duplicated(["model", "layer"]).any()
    assert joined["relative_depth"].tolist() == [0, 1 / 3, 2 / 3, 1]
    assert joined.set_index("layer").loc[2, "anisotropy"] == 0.3


@pytest.mark.parametrize("layers", [[0, 1, 2], [0, 1, 2, 3, 4], [0, 1, 1, 3]])
def test_join_refuses_tables_whose_layer_counts_disagree(layers):
    good = pd.DataFrame({"layer": range(4), "anisotropy": 0.1})
    bad = pd.DataFrame({"layer": layers, "kl_final": 1.0})
    with pytest.raises(ValueError, match="'lens'.*expected exactly one per layer 0..3"):
        join_layers("m", 3, {"geometry": good, "lens": bad})


# --------------------------------------------------------------------------- readers, sentences, figure

from layerwise.crossstudy.readers import lens_per_text, probe_recall_from_confusion, probe_recall_per_text  # noqa: E402
from layerwise.narrative.crossstudy import correlation_sentence  # noqa: E402
from layerwise.plots.crossstudy import plot_crossstudy  # noqa: E402


def test_probe_recall_is_the_confusion_diagonal_over_row_sums(tmp_path):
    counts = np.array([[8, 2, 0], [1, 3, 0], [0, 5, 5]])
    true, pred = np.meshgrid(range(3), range(3), indexing="ij")
    pd.DataFrame({"true_layer": true.ravel(), "predicted_layer": pred.ravel(), "count": counts.ravel(),
                  "fraction": 0.0}).to_csv(tmp_path / "confusion.csv", index=False)
    recall = probe_recall_from_confusion(tmp_path / "confusion.csv")
    assert recall["layer"].tolist() == [0, 1, 2]
    assert recall["probe_recall"].tolist() == pytest.approx([0.8, 0.75, 0.5])


def test_probe_recall_per_text_counts_each_texts_hits(tmp_path):
    pd.DataFrame({"text_id": [7, 7, 9, 9, 9], "true_layer": [0, 1, 0, 1, 1],
                  "predicted_layer": [0, 0, 0, 1, 0]}).to_csv(tmp_path / "p.csv", index=False)
    sums, counts = probe_recall_per_text(tmp_path / "p.csv", np.array([3, 7, 9]), n_layers=1)
    assert sums.tolist() == [[0, 0], [1, 0], [1, 1]] and counts.tolist() == [[0, 0], [1, 1], [1, 2]]


def test_lens_reader_keeps_numbered_layers_drops_position0_and_scores_agreement(tmp_path):
    rows = []
    for text in ("a", "b"):
        for layer in ("0", "1", "1.attn", "final"):
            for position in (0, 1, 2):
                rows.append({"text": text, "layer": layer, "position": position, "kl_final": position * 1.0,
                             "kl_input": 2.0, "top1_id": position if layer == "1" else 99, "final_top1_id": position})
    pd.DataFrame(rows).to_parquet(tmp_path / "lens.parquet")
    texts, per_text = lens_per_text(tmp_path / "lens.parquet", include_position0=False)
    assert texts.tolist() == ["a", "b"]
    sums, counts = per_text["kl_final"]
    assert counts.tolist() == [[2, 2], [2, 2]] and sums.tolist() == [[3, 3], [3, 3]]
    agree_sums, _ = per_text["agreement"]
    assert agree_sums.tolist() == [[0, 2], [0, 2]]


def _row(rho, low, high, interval):
    return pd.Series({"x": "anisotropy", "y": "twonn_id", "rho": rho, "ci_low": low, "ci_high": high,
                      "confidence": 0.95, "interval": interval})


def test_sentences_claim_a_direction_only_when_the_interval_excludes_zero():
    includes = correlation_sentence(_row(0.4, -0.1, 0.7, "includes 0"))
    assert "includes zero" in includes and "rise" not in includes and "opposite" not in includes
    assert "rise together" in correlation_sentence(_row(0.8, 0.5, 0.9, "excludes 0"))
    assert "opposite" in correlation_sentence(_row(-0.8, -0.9, -0.5, "excludes 0"))
    assert "no interval" in correlation_sentence(_row(0.8, np.nan, np.nan, "none"))


def test_figure_has_one_panel_per_quantity_present():
    table = pd.DataFrame({"model": ["d"] * 3 + ["e"] * 3, "kind": ["decoder"] * 3 + ["encoder"] * 3,
                          "relative_depth": [0, 0.5, 1] * 2, "anisotropy": np.linspace(0.1, 0.6, 6),
                          "mean_norm": np.linspace(1, 6, 6), "kl_final": [3, 2, 0] + [np.nan] * 3})
    fig = plot_crossstudy(table)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 3 and fig.axes[1].get_yscale() == "log"


def test_resampling_units_are_texts_up_to_the_cap_then_balanced_random_groups():
    from layerwise.crossstudy.view import group_rows, resampling_units
    assert resampling_units(7, 10, np.random.default_rng(0)).tolist() == list(range(7))
    units = resampling_units(25, 10, np.random.default_rng(0))
    assert sorted(np.bincount(units)) == [2] * 5 + [3] * 5
    per_text = np.arange(25.0)[:, None] * np.array([1.0, 2.0])
    grouped = group_rows(per_text, units)
    assert grouped.shape == (10, 2) and grouped.sum(0).tolist() == per_text.sum(0).tolist()
    assert grouped[units[4], 0] >= 4  # text 4's value lands in its own unit


def test_twonn_replicates_keep_one_copy_of_duplicated_vectors():
    """A 3-d cloud with 30% of its points copied into other texts: the point estimate equals the one without the
    copies (one copy kept), where dropping every copy would inflate it."""
    rng = np.random.default_rng(6)
    x = np.hstack([rng.normal(size=(1500, 3)), np.zeros((1500, 7))])
    copied = rng.choice(1500, 450, replace=False)
    with_copies = np.vstack([x, x[copied]])
    codes = np.r_[rng.integers(0, 15, size=1500), rng.integers(0, 15, size=450)]
    weights = np.vstack([np.ones(15), multiplicities(15, 3, rng)])
    point, reps = twonn_replicates(with_copies, codes, weights, fraction=0.9, block_size=64, n_candidates=8)
    assert point == pytest.approx(twonn(x, fraction=0.9, backend="numpy").dimension, rel=1e-12)
    assert reps[0] == pytest.approx(point) and np.all(np.isfinite(reps))
    assert point == pytest.approx(3.0, rel=0.15)
