"""Masks: a masked dimension loses exactly its contribution; masking the carrying dimensions costs the accuracy."""

import numpy as np
import pandas as pd
import pytest

from layerwise.probes.logistic import TorchLogisticProbe
from layerwise.probes.masks import frequent_top_dimensions, mask_ablation, mask_dimensions
from layerwise.probes.synthetic import one_hot_layers
from layerwise.probes.training import fit_probe




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
