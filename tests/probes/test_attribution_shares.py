"""Attribution shares worked out by hand (`layerwise.probes.attribution`): a planted probe whose classes are
labels, not row indices; the hand-ranked shares, the cumulative curve and `dims_for_share` at and around its
threshold, small weights times small inputs."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.probes.attribution import attribution_table, cumulative_contributions, dims_for_share, top_dimensions

from tests.probes.planted import part


# --- attribution --------------------------------------------------------------------------------------------

# Planted probe: classes are labels 7 and 2 (not row indices).
COEF = np.array([[0.5, -4.0, 2.0, 1.0],  # layer 7
                 [3.0, 0.0, -1.0, 0.0]])  # layer 2
CLASSES = np.array([7, 2])
# layer 7: a -> w*x = [1, -4, 0, 0] (shares .2 .8 0 0); b -> [0, 0, 2, -2] (0 0 .5 .5); the zero row has no
# contribution and is left out of the average. layer 2: [1, 5, 1, 0] -> [3, 0, -1, 0] (.75 0 .25 0).
X_ATTR = np.array([[2.0, 1.0, 0.0, 0.0], [1.0, 5.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, -2.0]])
Y_ATTR = np.array([7, 2, 7, 7])


def test_planted_weights_give_the_hand_ranked_shares():
    table = attribution_table(COEF, CLASSES, X_ATTR, Y_ATTR)
    assert len(table) == 2 * 2 * 4
    # weight, layer 7: |w| = .5 4 2 1 of 7.5
    np.testing.assert_allclose(part(table, "weight", 7, "share"), [100 * 0.5 / 7.5, 100 * 4 / 7.5, 100 * 2 / 7.5,
                                                                   100 * 1 / 7.5])
    np.testing.assert_array_equal(part(table, "weight", 7, "rank"), [4, 1, 2, 3])
    np.testing.assert_array_equal(part(table, "weight", 7, "sign"), [1, -1, 1, 1])
    np.testing.assert_allclose(part(table, "weight", 7, "signed"), COEF[0])
    # weight, layer 2: |w| = 3 0 1 0 of 4; the tie at 0 goes to the lower dimension
    np.testing.assert_allclose(part(table, "weight", 2, "share"), [75, 0, 25, 0])
    np.testing.assert_array_equal(part(table, "weight", 2, "rank"), [1, 3, 2, 4])
    np.testing.assert_array_equal(part(table, "weight", 2, "sign"), [1, 0, -1, 0])
    # input x weight, layer 7: mean of the two used rows' shares = .1 .4 .25 .25; mean w*x = .5 -2 1 -1
    np.testing.assert_allclose(part(table, "input_x_weight", 7, "share"), [10, 40, 25, 25])
    np.testing.assert_array_equal(part(table, "input_x_weight", 7, "rank"), [4, 1, 2, 3])
    # dim 3: positive weight but a negative mean contribution -> sign -1
    np.testing.assert_array_equal(part(table, "input_x_weight", 7, "sign"), [1, -1, 1, -1])
    np.testing.assert_allclose(part(table, "input_x_weight", 2, "share"), [75, 0, 25, 0])
    np.testing.assert_array_equal(part(table, "input_x_weight", 2, "sign"), [1, 0, -1, 0])


def test_planted_table_top_dimensions_curve_and_dims_for_share():
    table = attribution_table(COEF, CLASSES, X_ATTR, Y_ATTR)
    top = top_dimensions(table, 2)
    for variant, layer, dims in (("weight", 7, [1, 2]), ("weight", 2, [0, 2]), ("input_x_weight", 7, [1, 2]),
                                 ("input_x_weight", 2, [0, 2])):
        chosen = top[(top["variant"] == variant) & (top["layer"] == layer)]
        assert chosen["dim"].tolist() == dims and chosen["rank"].tolist() == [1, 2]
    curve = cumulative_contributions(table).set_index(["variant", "layer", "n_dims"])["cumulative_share"]
    np.testing.assert_allclose(curve.loc[("input_x_weight", 7)].to_numpy(), [40, 65, 90, 100])
    np.testing.assert_allclose(curve.loc[("weight", 7)].to_numpy(), [400 / 7.5, 600 / 7.5, 700 / 7.5, 100])
    needed = dims_for_share(table, (50.0, 90.0, 100.0)).set_index(["variant", "layer", "threshold"])["n_dims"]
    # input x weight, layer 7: 40 | 65 | 90 | 100 -> 50% at 2 dims, 90% reached exactly at 3, 100% at 4
    assert [needed[("input_x_weight", 7, t)] for t in (50.0, 90.0, 100.0)] == [2, 3, 4]
    # weight, layer 7: 53.3 | 80 | 93.3 | 100
    assert [needed[("weight", 7, t)] for t in (50.0, 90.0, 100.0)] == [1, 3, 4]
    # layer 2: 75 | 100 | 100 | 100 -> the zero-share dimensions are not needed
    assert [needed[("weight", 2, t)] for t in (50.0, 90.0, 100.0)] == [1, 2, 2]
    with pytest.raises(ValueError, match="n must be"):
        top_dimensions(table, 0)


def test_dims_for_share_reaches_100_percent_whatever_the_float_rounding():
    # weights 1 6 5 of 12: shares 8.33 50 41.67 -> largest first 50 | 91.67 | 100 (the float sum of the three
    # shares falls a hair short of 100): 50% with one dimension, 100% with all three
    table = attribution_table(np.array([[1.0, -6.0, 5.0], [1.0, 1.0, 1.0]]), np.array([0, 1]), np.ones((2, 3)),
                              np.array([0, 1]))
    needed = dims_for_share(table, (50.0, 100.0)).set_index(["variant", "layer", "threshold"])["n_dims"]
    assert [needed[("weight", 0, t)] for t in (50.0, 100.0)] == [1, 3]


# --- survivors of the 2026-12-04 mutmut run on probes/* ------------------------------------------------------


def test_dims_for_share_needs_the_dimension_that_crosses_the_threshold_not_one_point_short():
    # |w| = 60, 29.5, 10.5 of 100: cumulative 60 | 89.5 | 100 -> 90% needs all three dimensions
    table = attribution_table(np.array([[60.0, -29.5, 10.5], [1.0, 1.0, 1.0]]), np.array([0, 1]), np.ones((2, 3)),
                              np.array([0, 1]))
    needed = dims_for_share(table, (50.0, 89.5, 90.0)).set_index(["variant", "layer", "threshold"])["n_dims"]
    assert [needed[("weight", 0, t)] for t in (50.0, 89.5, 90.0)] == [1, 2, 3]


def test_attribution_of_small_weights_and_small_inputs_by_hand():
    """Nothing is special about magnitudes below 1: a class with |w| summing to 0.4, a test vector whose
    contributions sum to 0.4, both count like any other."""
    coef = np.array([[0.2, -0.1, 0.1], [1.0, 1.0, 1.0]])
    X = np.array([[0.3, 0.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 1.0]])
    y = np.array([0, 0, 1])
    table = attribution_table(coef, np.array([0, 1]), X, y)
    np.testing.assert_allclose(part(table, "weight", 0, "share"), [50, 25, 25])
    # class 0, w*x: [0.06, 0, 0] -> shares 1 0 0; [0, 0, 0.2] -> 0 0 1; mean 50 0 50
    np.testing.assert_allclose(part(table, "input_x_weight", 0, "share"), [50, 0, 50])
