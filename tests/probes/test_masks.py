"""Masks: a masked dimension loses exactly its contribution; masking the carrying dimensions costs the accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerwise.probes.logistic import TorchLogisticProbe
from layerwise.probes.masks import frequent_top_dimensions, mask_ablation, mask_dimensions
from layerwise.probes.synthetic import one_hot_layers
from layerwise.probes.training import fit_probe

from tests.probes.planted import PROBE


def test_masking_removes_exactly_the_dimension_contribution():
    X, y = one_hot_layers()
    probe = TorchLogisticProbe(device="cpu").fit(X, y)
    for dim in (0, 5):
        change = probe.decision_function(X) - probe.decision_function(mask_dimensions(X, [dim]))
        np.testing.assert_allclose(change, X[:, [dim]] * probe.coef_[:, dim], rtol=1e-4, atol=1e-5)


def test_mask_dimensions_copies_and_checks_range():
    X = np.ones((3, 4), dtype=np.float32)
    masked = mask_dimensions(X, [1, 3])
    np.testing.assert_array_equal(masked, [[1, 0, 1, 0]] * 3)
    assert X.sum() == 12
    with pytest.raises(ValueError, match="dims must lie"):
        mask_dimensions(X, [4])


def test_frequent_top_dimensions_counts_lists_and_breaks_ties_by_share():
    rows = [(0, 5, 40.0, 1), (0, 1, 30.0, 2), (1, 5, 20.0, 1), (1, 2, 15.0, 2), (2, 2, 50.0, 1), (2, 7, 25.0, 2),
            (2, 9, 10.0, 3)]
    table = pd.DataFrame(rows, columns=["layer", "dim", "share", "rank"]).assign(variant="input_x_weight")
    frequent = frequent_top_dimensions(table, k=4, top_n=2)
    assert list(frequent["dim"]) == [2, 5, 1, 7]  # 2 and 5 in two lists (2 has more share), then 1 vs 7
    np.testing.assert_array_equal(frequent["n_layers"], [2, 2, 1, 1])
    with pytest.raises(ValueError, match="no rows of variant"):
        frequent_top_dimensions(table, variant="weight")


def test_ablation_of_carrying_and_of_noise_dimensions():
    X, y = one_hot_layers(n=6000)
    train = np.arange(6000) < 4000
    run = fit_probe(X[train], y[train], X[~train], y[~train], TorchLogisticProbe(device="cpu"))
    carrying = mask_ablation(run, [0, 1, 2, 3]).set_index("condition")
    assert carrying.loc["full", "accuracy"] > 0.9
    assert carrying.loc["masked_at_test", "accuracy"] < 0.35  # chance is 0.25
    assert carrying.loc["masked_retrained", "accuracy"] < 0.3
    assert carrying.loc["masked_retrained", "delta_pp"] == pytest.approx(
        100 * (carrying.loc["masked_retrained", "accuracy"] - carrying.loc["full", "accuracy"]))
    noise = mask_ablation(run, [6, 7]).set_index("condition")
    assert abs(noise.loc["masked_at_test", "delta_pp"]) < 1.5
    assert abs(noise.loc["masked_retrained", "delta_pp"]) < 1.5
    assert noise["dims"].iloc[0] == "6,7" and noise["n_masked"].iloc[0] == 2
    # the re-fit starts from the full probe and still lands where a cold re-fit does
    assert noise.loc["masked_retrained", "warm_start"] == "raw" and noise.loc["masked_retrained", "passes"] > 0
    masked_train = run.X_train.copy()
    masked_train[:, [6, 7]] = 0
    masked_test = run.X_test.copy()
    masked_test[:, [6, 7]] = 0
    cold = TorchLogisticProbe(device="cpu").fit(masked_train, run.y_train)
    cold_accuracy = float(np.mean(cold.predict(masked_test) == run.y_test))
    assert noise.loc["masked_retrained", "accuracy"] == pytest.approx(cold_accuracy, abs=0.002)


# --------------------------------------------------------------------------- known answers

# --- masks --------------------------------------------------------------------------------------------------


def test_frequent_top_dimensions_ties_go_to_the_lower_dimension_and_the_variant_is_respected():
    rows = [("input_x_weight", 0, 3, 50.0, 1), ("input_x_weight", 0, 1, 30.0, 2), ("input_x_weight", 0, 0, 20.0, 3),
            ("input_x_weight", 1, 1, 50.0, 1), ("input_x_weight", 1, 3, 30.0, 2), ("input_x_weight", 1, 2, 20.0, 3),
            ("weight", 0, 2, 90.0, 1), ("weight", 0, 0, 10.0, 2), ("weight", 1, 2, 90.0, 1), ("weight", 1, 0, 10.0, 2)]
    table = pd.DataFrame(rows, columns=["variant", "layer", "dim", "share", "rank"])
    # top-2 lists: layer 0 {3, 1}, layer 1 {1, 3}: both dims in 2 lists with 80% in total -> lower index first;
    # only two dimensions qualify, so k=3 gives two
    frequent = frequent_top_dimensions(table, k=3, top_n=2)
    assert frequent["dim"].tolist() == [1, 3]
    np.testing.assert_array_equal(frequent["n_layers"], [2, 2])
    np.testing.assert_allclose(frequent["total_share"], [80, 80])
    assert frequent_top_dimensions(table, k=1, top_n=2)["dim"].tolist() == [1]
    assert frequent_top_dimensions(table, k=3, top_n=2, variant="weight")["dim"].tolist() == [2, 0]
    with pytest.raises(ValueError, match="k must be"):
        frequent_top_dimensions(table, k=0)


def test_mask_dimensions_refuses_negative_dimensions_and_masks_nothing_for_none():
    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    with pytest.raises(ValueError, match="dims must lie"):
        mask_dimensions(X, [-1])
    unmasked = mask_dimensions(X, [])
    np.testing.assert_array_equal(unmasked, X)
    assert not np.shares_memory(unmasked, X)


def test_masking_at_test_only_costs_more_than_masking_and_refitting():
    """Dim 0 carries the layers 6 sigma apart, dim 1 3 sigma apart. Without dim 0 the full probe's weights and
    intercepts no longer fit; a probe re-fitted on dim 1 reaches the 3-sigma optimum: interior layers
    P(|z| < 1.5) = 0.87, the two outer ones P(z < 1.5) = 0.93, mean 0.90."""
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(4), 300)  # rows alternate train / test within each layer
    X = rng.standard_normal((y.size, 4)).astype(np.float32)
    X[:, 0] += 6.0 * y
    X[:, 1] += 3.0 * y
    run = fit_probe(X[::2], y[::2], X[1::2], y[1::2], TorchLogisticProbe(**PROBE))
    X_train, X_test = run.X_train.copy(), run.X_test.copy()
    table = mask_ablation(run, [0]).set_index("condition")
    full = float(np.mean(run.y_pred == run.y_test))
    masked = X_test.copy()
    masked[:, 0] = 0.0  # standardised space: 0 is the training mean
    at_test = float(np.mean(run.estimator.predict(masked) == run.y_test))
    assert table.loc["full", "accuracy"] == pytest.approx(full) and full > 0.97
    assert table.loc["masked_at_test", "accuracy"] == pytest.approx(at_test)
    assert table.loc["masked_at_test", "delta_pp"] == pytest.approx(100 * (at_test - full))
    retrained = table.loc["masked_retrained", "accuracy"]
    assert 0.8 < retrained < 0.97
    assert retrained > at_test + 0.25
    assert (table["dims"] == "0").all() and (table["n_masked"] == 1).all()
    np.testing.assert_array_equal(run.X_train, X_train)  # the training matrix is restored
    np.testing.assert_array_equal(run.X_test, X_test)  # and the test matrix never touched


class RecordingLogistic(__import__("sklearn.linear_model", fromlist=["LogisticRegression"]).LogisticRegression):
    """scikit-learn's probe (the re-fit's plain branch) that keeps a copy of what each fit was given."""

    seen: list = []

    def fit(self, X, y, *args, **kwargs):
        RecordingLogistic.seen.append((X.copy(), y.copy()))
        return super().fit(X, y, *args, **kwargs)


def test_the_masked_refit_trains_on_zeroed_dimensions_with_any_estimator():
    """The re-fit's input is the standardised training matrix with the masked dimensions at 0 (their training
    mean) and every other column untouched, for an estimator without the torch probe's warm start too."""
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(3), 200)
    X = rng.standard_normal((y.size, 4)).astype(np.float32)
    X[:, 0] += 4.0 * y
    X[:, 2] += 2.0 * y
    RecordingLogistic.seen = []
    run = fit_probe(X[::2], y[::2], X[1::2], y[1::2], RecordingLogistic(max_iter=500))
    table = mask_ablation(run, [0, 3]).set_index("condition")
    assert len(RecordingLogistic.seen) == 2  # the full fit, then the re-fit
    refit_X, refit_y = RecordingLogistic.seen[1]
    assert (refit_X[:, [0, 3]] == 0).all()
    np.testing.assert_array_equal(refit_X[:, [1, 2]], run.X_train[:, [1, 2]])
    np.testing.assert_array_equal(refit_y, run.y_train)
    assert table.loc["full", "delta_pp"] == 0.0 and table.loc["masked_retrained", "warm_start"] == "zero"
    assert table.loc["masked_retrained", "accuracy"] > table.loc["masked_at_test", "accuracy"]
