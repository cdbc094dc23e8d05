"""Attribution shares: hand-computed values, sums to 100, and recovery of the dimension that carries a layer."""

import numpy as np
import pytest

from layerwise.probes.attribution import attribution_table, cumulative_contributions, dims_for_share, top_dimensions
from layerwise.probes.logistic import TorchLogisticProbe

COEF = np.array([[1.0, -2.0, 0.0], [0.5, 0.5, 1.0]])
X = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, 1.0], [0.0, 2.0, 2.0]])
Y = np.array([0, 0, 1])


def shares(table, variant, layer):
    part = table[(table["variant"] == variant) & (table["layer"] == layer)].sort_values("dim")
    return part["share"].to_numpy(), part["sign"].to_numpy(), part["rank"].to_numpy()


def test_hand_computed_example():
    table = attribution_table(COEF, np.array([0, 1]), X, Y)
    # layer 0: vector shares [1/3, 2/3, 0] and [1, 0, 0] -> mean [2/3, 1/3, 0]; mean w*x = [1.5, -1, 0]
    share, sign, rank = shares(table, "input_x_weight", 0)
    np.testing.assert_allclose(share, [200 / 3, 100 / 3, 0])
    np.testing.assert_array_equal(sign, [1, -1, 0])
    np.testing.assert_array_equal(rank, [1, 2, 3])
    share, sign, _ = shares(table, "input_x_weight", 1)
    np.testing.assert_allclose(share, [0, 100 / 3, 200 / 3])
    share, sign, rank = shares(table, "weight", 1)
    np.testing.assert_allclose(share, [25, 25, 50])
    np.testing.assert_array_equal(rank, [2, 3, 1])  # the tie at 25% goes to the lower dimension


def test_shares_sum_to_100_per_layer_and_variant():
    rng = np.random.default_rng(0)
    table = attribution_table(rng.standard_normal((5, 40)), np.arange(5), rng.standard_normal((500, 40)),
                              rng.integers(0, 5, 500))
    np.testing.assert_allclose(table.groupby(["variant", "layer"])["share"].sum(), 100.0)
    assert len(table) == 2 * 5 * 40


def test_recovers_the_dimension_that_carries_each_layer():
    """Layer l is shifted along dimension l only: that dimension must top the layer's list."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 4000)
    X = rng.standard_normal((4000, 12)).astype(np.float32)
    X[np.arange(4000), y] += 3.0
    probe = TorchLogisticProbe(device="cpu").fit(X, y)
    table = attribution_table(probe.coef_, probe.classes_, X, y)
    for variant in ("input_x_weight", "weight"):
        top1 = top_dimensions(table[table["variant"] == variant], 1).set_index("layer")
        np.testing.assert_array_equal(top1.loc[[0, 1, 2, 3], "dim"], [0, 1, 2, 3])
        assert (top1["sign"] == 1).all()


def test_top_dimensions_keeps_n_per_layer_in_rank_order():
    rng = np.random.default_rng(2)
    table = attribution_table(rng.standard_normal((3, 20)), np.arange(3), rng.standard_normal((90, 20)),
                              np.repeat(np.arange(3), 30))
    top = top_dimensions(table, 8)
    assert len(top) == 2 * 3 * 8
    for _, group in top.groupby(["variant", "layer"]):
        assert list(group["rank"]) == list(range(1, 9))
        assert group["share"].is_monotonic_decreasing


def test_cumulative_curve_and_dimensions_for_share():
    table = attribution_table(COEF, np.array([0, 1]), X, Y)
    curve = cumulative_contributions(table)
    ends = curve.groupby(["variant", "layer"])["cumulative_share"].last()
    np.testing.assert_allclose(ends, 100.0)
    needed = dims_for_share(table, (50.0, 90.0)).set_index(["variant", "layer", "threshold"])["n_dims"]
    assert needed[("input_x_weight", 0, 50.0)] == 1 and needed[("input_x_weight", 0, 90.0)] == 2
    assert needed[("weight", 1, 50.0)] == 1 and needed[("weight", 1, 90.0)] == 3  # shares 50, 25, 25


def test_bad_inputs():
    with pytest.raises(ValueError, match="coef must be"):
        attribution_table(COEF, np.array([0]), X, Y)
    with pytest.raises(ValueError, match="X must be"):
        attribution_table(COEF, np.array([0, 1]), X[:, :2], Y)
    with pytest.raises(ValueError, match="layer 1"):
        attribution_table(COEF, np.array([0, 1]), X[:2], Y[:2])
    with pytest.raises(ValueError, match="thresholds"):
        dims_for_share(attribution_table(COEF, np.array([0, 1]), X, Y), (0.0,))
