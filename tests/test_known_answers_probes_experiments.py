"""Known answers for the Study-1 experiment code that the other probe tests leave open.

Every expected value here is worked out by hand from the documented definition (the comments show
the arithmetic), or is a property that a planted data set forces: a test split whose real vectors are
pushed far off (the random controls must not notice), a test split whose top dimensions differ from the
training split's (the mask choice must follow the training split), two carrier dimensions of different
strength (masking at test time only must cost more than masking and re-fitting).
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from layerwise.probes.attribution import attribution_table, cumulative_contributions, dims_for_share, top_dimensions
from layerwise.probes.conditions import (random_control_scores, raw_probe_analyses, run_condition,
                                         shuffled_label_scores, split, train_selection, transfer_scores)
from layerwise.probes.controls import LayerMoments, layer_moments, normalise_rows, shuffled_labels
from layerwise.probes.features import LayerDataset
from layerwise.probes.logistic import TorchLogisticProbe
from layerwise.probes.masks import frequent_top_dimensions, mask_ablation, mask_dimensions
from layerwise.probes.metrics import confusion_table, score_table
from layerwise.probes.saved import FittedProbe, load_probe, save_probe
from layerwise.probes.split import split_by_text
from layerwise.probes.synthetic import make_layered_vectors
from layerwise.probes.training import ProbeRun, fit_probe, make_probe

PROBE = {"C": 1.0, "max_epochs": 100, "device": "cpu"}
N_LAYERS = 3  # classes 0..3
LABELS = np.arange(N_LAYERS + 1)


def layered(seed: int = 0, layer_step: float = 4.0) -> LayerDataset:
    """40 texts x 4 positions x 4 layers = 640 vectors of width 8."""
    v = make_layered_vectors(n_texts=40, n_positions=4, n_layers=N_LAYERS, width=8, layer_step=layer_step, seed=seed)
    return LayerDataset(v.X, v.y, v.text_ids, v.positions)


def standardised(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(X - mean) / population std, both of `reference` (the training split), in float64."""
    reference = reference.astype(np.float64)
    return (X.astype(np.float64) - reference.mean(0)) / reference.std(0)


def accuracy_of(table: pd.DataFrame, condition: str) -> float:
    return float(table.set_index("condition").loc[condition, "accuracy"])


# --- metrics -----------------------------------------------------------------------------------------------


def test_score_table_without_labels_counts_a_layer_that_is_only_predicted():
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    row = score_table(y_true, y_pred).iloc[0]
    # layers = {0, 1, 2} (2 is only predicted). F1: layer 0 P=1 R=1/2 -> 2/3; layer 1 P=R=1 -> 1;
    # layer 2 one false positive, no true vector -> 0 (zero_division=0).
    assert row["accuracy"] == pytest.approx(3 / 4)
    assert row["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert row["chance"] == pytest.approx(1 / 3)
    assert (row["n_vectors"], row["n_layers"]) == (4, 3)


def test_confusion_table_names_layers_by_label_and_normalises_by_the_true_layer():
    y_true, y_pred = np.array([4, 4, 4, 9, 1]), np.array([4, 9, 9, 9, 4])
    table = confusion_table(y_true, y_pred, labels=np.array([1, 4, 9]))
    assert table["true_layer"].tolist() == [1, 1, 1, 4, 4, 4, 9, 9, 9]
    assert table["predicted_layer"].tolist() == [1, 4, 9] * 3
    # true 1: once predicted 4; true 4: 4 once, 9 twice; true 9: 9 once
    np.testing.assert_array_equal(table["count"], [0, 1, 0, 0, 1, 2, 0, 0, 1])
    np.testing.assert_allclose(table["fraction"], [0, 1, 0, 0, 1 / 3, 2 / 3, 0, 0, 1])
    row = score_table(y_true, y_pred, labels=np.array([1, 4, 9])).iloc[0]
    assert row["accuracy"] == pytest.approx(2 / 5) and row["chance"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("y_true, y_pred", [
    (np.zeros((2, 2), int), np.zeros((2, 2), int)),  # 2-D
    (np.array([], int), np.array([], int)),  # empty
])
def test_metrics_refuse_arrays_that_are_not_non_empty_vectors(y_true, y_pred):
    for table in (score_table, confusion_table):
        with pytest.raises(ValueError, match="non-empty 1-D"):
            table(y_true, y_pred)


# --- split by text ------------------------------------------------------------------------------------------

# 10 texts with ids 3, 10, ..., 66; text k (id 7k + 3) has k + 1 rows; rows interleaved
TEXT_IDS = np.repeat(np.arange(10) * 7 + 3, np.arange(1, 11))[np.random.default_rng(0).permutation(55)]


@pytest.mark.parametrize("fraction, n_test", [
    (0.34, 3),  # round(3.4)
    (0.36, 4),  # round(3.6): rounded, not truncated
    (0.04, 1),  # round(0.4) = 0, raised to the minimum of one test text
    (0.96, 9),  # round(9.6) = 10, capped so that one text stays in train
])
def test_split_puts_the_rounded_fraction_of_texts_in_test_with_all_their_rows(fraction, n_test):
    train, test = split_by_text(TEXT_IDS, fraction, seed=2)
    test_texts, train_texts = np.unique(TEXT_IDS[test]), np.unique(TEXT_IDS[train])
    assert test_texts.size == n_test and train_texts.size == 10 - n_test
    assert not np.intersect1d(test_texts, train_texts).size
    assert test.sum() == sum((t - 3) // 7 + 1 for t in test_texts)  # every row of every test text
    np.testing.assert_array_equal(train, ~test)


def test_split_is_seeded_and_each_seed_draws_its_own_texts():
    ids = np.repeat(np.arange(20), 3)
    drawn = [tuple(np.unique(ids[split_by_text(ids, 0.25, seed)[1]])) for seed in range(6)]
    assert drawn == [tuple(np.unique(ids[split_by_text(ids, 0.25, seed)[1]])) for seed in range(6)]
    assert all(len(texts) == 5 for texts in drawn)
    assert len(set(drawn)) == 6  # 15,504 possible test sets: six seeds, six sets


def test_condition_split_takes_the_rows_of_split_by_text():
    data = layered()
    train, test = split(data, 0.25, seed=4)
    on_train, on_test = split_by_text(data.text_ids, 0.25, 4)
    for part, rows in ((train, on_train), (test, on_test)):
        np.testing.assert_array_equal(part.X, data.X[rows])
        np.testing.assert_array_equal(part.y, data.y[rows])
        np.testing.assert_array_equal(part.text_ids, data.text_ids[rows])
    assert test.y.size == 10 * 4 * (N_LAYERS + 1)  # round(0.25 * 40) texts of 16 vectors


# --- attribution --------------------------------------------------------------------------------------------

# Planted probe: classes are labels 7 and 2 (not row indices).
COEF = np.array([[0.5, -4.0, 2.0, 1.0],  # layer 7
                 [3.0, 0.0, -1.0, 0.0]])  # layer 2
CLASSES = np.array([7, 2])
# layer 7: a -> w*x = [1, -4, 0, 0] (shares .2 .8 0 0); b -> [0, 0, 2, -2] (0 0 .5 .5); the zero row has no
# contribution and is left out of the average. layer 2: [1, 5, 1, 0] -> [3, 0, -1, 0] (.75 0 .25 0).
X_ATTR = np.array([[2.0, 1.0, 0.0, 0.0], [1.0, 5.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, -2.0]])
Y_ATTR = np.array([7, 2, 7, 7])


def part(table, variant, layer, column):
    rows = table[(table["variant"] == variant) & (table["layer"] == layer)].sort_values("dim")
    return rows[column].to_numpy()


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


def test_mask_choice_reads_the_training_split_where_train_and_test_disagree():
    """Hand-made probe: on train rows the largest |w x| is dim 0 (then 2), on test rows dim 3 (then 2), and by
    weight alone dim 2 (then 0 by the tie rule)."""
    coef = np.array([[1.0, 1.0, 3.0, 1.0], [1.0, 1.0, 3.0, 1.0]])
    X_train = np.tile([6.0, 1.0, 1.0, 0.1], (4, 1))  # w*x = 6 1 3 .1 of 10.1
    X_test = np.tile([0.1, 1.0, 1.0, 8.0], (4, 1))  # w*x = .1 1 3 8 of 12.1
    y = np.array([0, 1, 0, 1])
    run = ProbeRun(SimpleNamespace(coef_=coef, classes_=np.array([0, 1])), None, X_train, y, X_test, y, y)
    attribution, dims = train_selection(run, mask_k=1, top_n=1)
    assert dims == [0]
    np.testing.assert_allclose(part(attribution, "input_x_weight", 0, "share"),
                               [600 / 10.1, 100 / 10.1, 300 / 10.1, 10 / 10.1])
    assert train_selection(run, mask_k=2, top_n=2)[1] == [0, 2]  # both in 2 lists; dim 0 has the larger share


def one_hot_layers(n: int, width: int = 8, shift: float = 3.0, seed: int = 0):
    """Layer l (0..3) is shifted along dimension l only."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(4), n // 4)
    X = rng.standard_normal((n, width)).astype(np.float32)
    X[np.arange(n), y] += shift
    return X, y


def test_raw_analyses_mask_the_training_top_dimensions_not_the_tests():
    """The test split's dimension 7 is 1000x wider: on test vectors it tops every layer's list (the probe's small
    weight times huge values); on training vectors layer l's top dimension is l. The masks must be 0..3."""
    X, y = one_hot_layers(1200)
    X_test = X[800:].copy()
    X_test[:, 7] *= 1000.0
    run = fit_probe(X[:800], y[:800], X_test, y[800:], TorchLogisticProbe(**PROBE))
    on_test = attribution_table(run.estimator.coef_, run.estimator.classes_, run.X_test, run.y_test)
    assert (top_dimensions(on_test[on_test["variant"] == "input_x_weight"], 1)["dim"] == 7).all()  # the trap is set
    tables = raw_probe_analyses(run, LABELS, mask_k=4, top_n=1)
    masks = tables["masks"]
    assert sorted(int(d) for d in masks["dims"].iloc[0].split(",")) == [0, 1, 2, 3]
    assert (masks["n_masked"] == 4).all() and np.allclose(masks["chance"], 1 / 4)
    top = tables["top"]
    assert len(top) == 2 * 4 and top.groupby(["variant", "layer"]).size().eq(1).all()
    pd.testing.assert_frame_equal(tables["confusion"], confusion_table(run.y_test, run.y_pred, LABELS))
    assert tables["confusion"]["count"].sum() == 400


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


# --- controls -----------------------------------------------------------------------------------------------


def test_normalise_rows_by_hand_and_in_place():
    X = np.array([[3.0, 4.0], [0.0, -2.0], [1.0, 0.0]], dtype=np.float32)
    unit = normalise_rows(X)
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, -1.0], [1.0, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(X[0], [3.0, 4.0])  # a copy
    same = normalise_rows(X, overwrite=True)
    assert same is X
    np.testing.assert_allclose(X, unit, rtol=1e-6)


def test_layer_moments_scalar_by_hand():
    # layer 2: unit rows (.6 .8 0 0) and (0 0 0 1): entries sum 2.4 over 8 -> mean .3; squares sum 2 -> E x^2 = .25;
    # var = .25 - .09 = .16 -> std .4 (population). layer 5: unit (1 0 0 0), (0 1 0 0): mean .25, var .25 - .0625
    X = np.array([[1.0, 0.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0], [0.0, 1.0, 0.0, 0.0]],
                 dtype=np.float32)
    y = np.array([5, 2, 2, 5])
    moments = layer_moments(X, y, "scalar")
    np.testing.assert_array_equal(moments.layers, [2, 5])
    assert moments.mean.shape == (2, 1) and moments.std.shape == (2, 1) and moments.width == 4
    np.testing.assert_allclose(moments.mean[:, 0], [0.3, 0.25], rtol=1e-6)
    np.testing.assert_allclose(moments.std[:, 0], [0.4, np.sqrt(0.1875)], rtol=1e-6)


def test_layer_moments_per_dimension_by_hand():
    # layer 0: rows (1 2), (3 6), (5 10): mean (3 6); population var (4 + 0 + 4) / 3 = 8/3 and 4x that
    # layer 1: rows (-1 0), (1 0): mean (0 0), std (1 0)
    X = np.array([[1.0, 2.0], [-1.0, 0.0], [3.0, 6.0], [1.0, 0.0], [5.0, 10.0]], dtype=np.float32)
    y = np.array([0, 1, 0, 1, 0])
    moments = layer_moments(X, y, "per_dimension")
    np.testing.assert_allclose(moments.mean, [[3.0, 6.0], [0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(moments.std, [[np.sqrt(8 / 3), 2 * np.sqrt(8 / 3)], [1.0, 0.0]], rtol=1e-6)


def test_sampled_vectors_have_each_layers_planted_moments():
    moments = LayerMoments("per_dimension", np.array([3, 8]), np.array([[10.0, -5.0, 0.0], [0.0, 2.0, 100.0]]),
                           np.array([[1.0, 3.0, 0.5], [2.0, 0.1, 4.0]]), 3)
    y = np.tile([8, 3], 4000)  # interleaved labels that are not row indices
    drawn = moments.sample(y, seed=1)
    assert drawn.dtype == np.float32 and drawn.shape == (8000, 3)
    for i, layer in enumerate([3, 8]):
        rows = drawn[y == layer].astype(np.float64)
        # 4000 draws: the mean is within 5 standard errors, the std within 5%
        assert (np.abs(rows.mean(0) - moments.mean[i]) < 5 * moments.std[i] / np.sqrt(4000)).all()
        np.testing.assert_allclose(rows.std(0), moments.std[i], rtol=0.05)
    np.testing.assert_array_equal(moments.sample(y, seed=1), drawn)
    assert not np.array_equal(moments.sample(y, seed=2), drawn)
    out = np.zeros((8000, 3), dtype=np.float32)
    assert moments.sample(y, seed=1, out=out) is out
    np.testing.assert_array_equal(out, drawn)
    with pytest.raises(ValueError, match="out must be float32"):
        moments.sample(y, seed=1, out=np.zeros((8000, 3)))
    with pytest.raises(ValueError, match="out must be float32"):
        moments.sample(y, seed=1, out=np.zeros((8000, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"without moments: \[4\]"):
        moments.sample(np.array([3, 4]))


def test_scalar_moments_give_every_coordinate_the_same_distribution():
    moments = LayerMoments("scalar", np.array([0, 1]), np.array([[0.5], [-0.2]]), np.array([[0.1], [0.3]]), 5)
    y = np.repeat([0, 1], 4000)
    drawn = moments.sample(y, seed=0).astype(np.float64)
    for layer, mean, std in ((0, 0.5, 0.1), (1, -0.2, 0.3)):
        rows = drawn[y == layer]
        assert (np.abs(rows.mean(0) - mean) < 5 * std / np.sqrt(4000)).all()
        np.testing.assert_allclose(rows.std(0), std, rtol=0.05)


@pytest.mark.parametrize("kind", ["per_dimension", "scalar"])
def test_random_controls_never_read_the_real_test_vectors(kind):
    """Moments come from the training split and both rows score random draws: pushing every real test vector
    50 units off changes nothing, although the real probe on those vectors is lost."""
    train, test = split(layered(), 0.25, seed=0)
    far = replace(test, X=test.X + np.float32(50.0))
    lost = run_condition("raw", train, far, seed=0, probe_params=PROBE, tree_params={})
    assert np.mean(lost.y_pred == lost.y_test) < 0.5  # a row that scored real test vectors would show it
    table = random_control_scores(kind, train, test, LABELS, seed=0, probe_params=PROBE)
    moved = random_control_scores(kind, train, far, LABELS, seed=0, probe_params=PROBE)
    pd.testing.assert_frame_equal(moved, table)
    assert table["condition"].tolist() == [f"random_{kind}_trained", f"random_{kind}_retrained"]
    assert (table["n_vectors"] == test.y.size).all()


def test_random_test_draws_are_new_vectors_not_copies_of_the_training_draws():
    """With `overwrite` the draws are written into the splits' matrices (then standardised with one scaler): a
    test draw equal to a training draw (e.g. both drawn from one seed) would leak into the re-trained row."""
    train, test = split(layered(), 0.25, seed=0)
    real_train = train.X.copy()
    random_control_scores("per_dimension", train, test, LABELS, seed=0, probe_params=PROBE, overwrite=True)
    assert not np.allclose(train.X, standardised(real_train, real_train), atol=1e-2)  # the buffers hold draws
    closest = np.abs(test.X[:, None, :] - train.X[None, :, :]).max(axis=2).min()
    assert closest > 1e-3


def common_component_layers(n_per_layer: int, seed: int) -> LayerDataset:
    """x = s 1 + y (a 1 + b e_0) + eps: s ~ N(0, 1) shared by all 16 dimensions of a vector, a = 0.5, b = 0.3,
    eps ~ N(0, 0.02^2) per entry.

    Real vectors: along the all-ones direction the layers are a / sd(s) = 0.5 sd apart (s swamps them), but
    x_0 - mean(x_1..15) = b y + noise separates them by 0.3 / 0.02 = 15 sd: a probe fitted on real vectors
    reads that contrast. Per-dimension draws lose the shared s (each entry gets its own N(0, 1) noise): the
    contrast is then 0.3 / 1.03 ~ 0.3 sd per layer (chance-like), while the means along all 16 dimensions
    separate adjacent layers by sqrt(15 a^2 + (a + b)^2) ~ 2.1 sd, which a probe fitted on draws reads:
    interior layers P(|z| < 1.05) = 0.71, outer ones P(z < 1.05) = 0.85, mean ~0.78."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), n_per_layer)
    direction = np.full(16, 0.5)
    direction[0] += 0.3
    X = rng.standard_normal((y.size, 1)) + y[:, None] * direction + 0.02 * rng.standard_normal((y.size, 16))
    return LayerDataset(X.astype(np.float32), y, np.arange(y.size), np.zeros(y.size, dtype=np.int64))


def test_retrained_random_control_is_fitted_on_the_draws_not_on_the_real_vectors():
    train, test = common_component_layers(300, seed=0), common_component_layers(200, seed=1)
    real = run_condition("raw", train, test, seed=0, probe_params=PROBE, tree_params={})
    assert np.mean(real.y_pred == real.y_test) > 0.95  # the real vectors are read through the contrast
    table = random_control_scores("per_dimension", train, test, LABELS, seed=0, probe_params=PROBE)
    assert accuracy_of(table, "random_per_dimension_trained") < 0.5  # the real probe on draws: ~chance
    assert accuracy_of(table, "random_per_dimension_retrained") > 0.65  # a probe of the draws' means


def test_per_dimension_control_keeps_the_layer_means_through_both_probes():
    """Per-dimension moments keep each layer's mean, which is what the raw probe reads: both rows must be far
    above chance (1/4), for draws made with the training moments."""
    train, test = split(layered(layer_step=6.0), 0.25, seed=0)
    table = random_control_scores("per_dimension", train, test, LABELS, seed=0, probe_params=PROBE)
    assert accuracy_of(table, "random_per_dimension_trained") > 0.9
    assert accuracy_of(table, "random_per_dimension_retrained") > 0.9


def test_random_controls_and_shuffles_refuse_bad_arguments():
    train, test = split(layered(), 0.25, seed=0)
    with pytest.raises(ValueError, match="random control must be one of"):
        random_control_scores("bogus", train, test, LABELS, seed=0, probe_params=PROBE)
    with pytest.raises(ValueError, match="random control must be one of"):
        layer_moments(train.X, train.y, "bogus")
    with pytest.raises(ValueError, match="permutations must be >= 1"):
        shuffled_label_scores(train, test, LABELS, seed=0, permutations=0, probe_params=PROBE)


# --- conditions ---------------------------------------------------------------------------------------------


def test_raw_condition_standardises_both_splits_with_the_training_statistics():
    train, test = split(layered(), 0.25, seed=0)
    test = replace(test, X=test.X + np.float32(5.0))  # a test-only shift must survive standardisation
    run = run_condition("raw", train, test, seed=0, probe_params=PROBE, tree_params={})
    assert isinstance(run.estimator, TorchLogisticProbe)
    np.testing.assert_allclose(run.X_train, standardised(train.X, train.X), atol=1e-4)
    np.testing.assert_allclose(run.X_test, standardised(test.X, train.X), atol=1e-4)


def test_normalised_condition_feeds_unit_rows_of_both_splits():
    train, test = split(layered(), 0.25, seed=0)
    run = run_condition("normalised", train, test, seed=0, probe_params=PROBE, tree_params={})
    unit_train = train.X / np.linalg.norm(train.X.astype(np.float64), axis=1, keepdims=True)
    unit_test = test.X / np.linalg.norm(test.X.astype(np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(run.X_train, standardised(unit_train, unit_train), atol=1e-3)
    np.testing.assert_allclose(run.X_test, standardised(unit_test, unit_train), atol=1e-3)
    # in place it is the same computation, on the caller's matrices
    train_copy, test_copy = replace(train, X=train.X.copy()), replace(test, X=test.X.copy())
    in_place = run_condition("normalised", train_copy, test_copy, seed=0, probe_params=PROBE, tree_params={},
                             overwrite=True)
    assert np.shares_memory(in_place.X_train, train_copy.X) and np.shares_memory(in_place.X_test, test_copy.X)
    np.testing.assert_array_equal(in_place.X_test, run.X_test)
    np.testing.assert_array_equal(in_place.y_pred, run.y_pred)


def test_tree_condition_fits_the_tree_params_on_raw_standardised_vectors():
    train, test = split(layered(), 0.25, seed=0)
    run = run_condition("tree", train, test, seed=7, probe_params={"C": 1e-3, "max_epochs": 1},
                        tree_params={"max_depth": 2})
    assert isinstance(run.estimator, DecisionTreeClassifier)
    assert run.estimator.get_depth() <= 2 and run.estimator.random_state == 7
    np.testing.assert_allclose(run.X_train, standardised(train.X, train.X), atol=1e-4)
    np.testing.assert_array_equal(run.y_pred, run.estimator.predict(run.X_test))


def test_transfer_refuses_a_split_point_outside_the_rows_and_leaves_the_test_splits_alone():
    a, b = layered(seed=0), layered(seed=1)
    train_a, test_a = split(a, 0.25, seed=0)
    train_b, test_b = split(b, 0.25, seed=0)
    for n_a in (0, train_a.y.size + train_b.y.size):
        with pytest.raises(ValueError, match="n_a must split"):
            transfer_scores(LayerDataset.concatenate([train_a, train_b]), test_a, test_b, LABELS, n_a=n_a, seed=0,
                            probe_params=PROBE, names=("a", "b"))
    before = test_a.X.copy(), test_b.X.copy()
    table = transfer_scores(LayerDataset.concatenate([train_a, train_b]), test_a, test_b, LABELS,
                            n_a=train_a.y.size, seed=0, probe_params=PROBE, names=("a", "b"))
    np.testing.assert_array_equal(test_a.X, before[0])
    np.testing.assert_array_equal(test_b.X, before[1])
    assert table[["train", "test"]].values.tolist() == [["a", "a"], ["a", "b"], ["a+b", "a"], ["a+b", "b"]]
    # the A-only probe is the one fitted on A's rows: its A accuracy is the raw condition's
    raw = run_condition("raw", train_a, test_a, seed=0, probe_params=PROBE, tree_params={})
    assert table["accuracy"].iloc[0] == pytest.approx(np.mean(raw.predict(test_a.X) == test_a.y))


# --- saved probes -------------------------------------------------------------------------------------------


def test_saved_probe_round_trip_keeps_scaler_weights_and_split_size(tmp_path):
    train, test = split(layered(), 0.25, seed=0)
    run = run_condition("raw", train, test, seed=0, probe_params=PROBE, tree_params={})
    save_probe(tmp_path / "raw.npz", run)
    loaded = load_probe(tmp_path / "raw.npz")
    for name in ("mean_", "var_", "scale_"):
        np.testing.assert_array_equal(getattr(loaded.scaler, name), getattr(run.scaler, name))
    for name in ("coef_", "intercept_", "classes_"):
        np.testing.assert_array_equal(getattr(loaded.estimator, name), getattr(run.estimator, name))
    assert loaded.estimator.get_params() == run.estimator.get_params()
    assert loaded.n_train == train.y.size != test.y.size
    shifted = test.X + np.float32(3.0)  # unstandardised vectors the probe never saw
    np.testing.assert_array_equal(loaded.predict(shifted), run.predict(shifted))
    loaded.check_fits(train.X, "the raw probe")


def test_check_fits_refuses_other_training_vectors_unless_only_shapes_are_compared():
    train, _ = split(layered(), 0.25, seed=0)
    X = train.X.copy()
    probe = FittedProbe.fit(X, train.y, make_probe("logistic", 0, **PROBE), overwrite=False)
    np.testing.assert_array_equal(X, train.X)  # not standardised in place
    assert probe.n_train == X.shape[0]
    probe.check_fits(train.X, "p")
    moved = train.X.copy()
    moved[0, 3] += 1.0  # one entry: the mean of dim 3 moves by 1/480
    with pytest.raises(ValueError, match="other training vectors"):
        probe.check_fits(moved, "p")
    probe.check_fits(moved, "p", compare_means=False)
    probe.check_fits(normalise_rows(train.X), "p", compare_means=False)  # another space, same split
    with pytest.raises(ValueError, match=f"fitted on {X.shape[0]} x 8 training vectors"):
        probe.check_fits(train.X[:, :7], "p", compare_means=False)
    with pytest.raises(ValueError, match="this split has"):
        probe.check_fits(train.X[1:], "p")


def test_fitted_probe_is_the_fit_probe_fit():
    train, test = split(layered(), 0.25, seed=0)
    run = fit_probe(train.X, train.y, test.X, test.y, make_probe("logistic", 0, **PROBE))
    probe = FittedProbe.fit(train.X, train.y, make_probe("logistic", 0, **PROBE), overwrite=False)
    np.testing.assert_allclose(probe.scaler.mean_, train.X.astype(np.float64).mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(probe.estimator.coef_, run.estimator.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(probe.predict(test.X), run.predict(test.X))


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


def test_confusion_table_row_of_a_layer_never_seen_is_zero_not_nan():
    table = confusion_table(np.array([1, 1, 4]), np.array([1, 4, 4]), labels=np.array([1, 4, 9]))
    unseen = table[table["true_layer"] == 9]
    assert (unseen["count"] == 0).all() and (unseen["fraction"] == 0.0).all()


# --- the probe parameters reach every fit, and the shuffles are seeded -------------------------------------

ONE_EPOCH = {**PROBE, "max_epochs": 1}  # no fit converges in one epoch here: every row must say so


@pytest.mark.filterwarnings("ignore:lbfgs did not converge")
def test_every_control_fits_its_probes_with_the_given_parameters():
    """Each probe a control fits records its epochs: with max_epochs=1 every one of them stops after one
    epoch, unconverged (the defaults, 100 epochs, converge on these data)."""
    train, test = split(layered(), 0.25, seed=0)
    shuffled = shuffled_label_scores(train, test, LABELS, seed=0, permutations=2, probe_params=ONE_EPOCH)
    random = random_control_scores("per_dimension", train, test, LABELS, seed=0, probe_params=ONE_EPOCH)
    train_b, test_b = split(layered(seed=1), 0.25, seed=0)
    transfer = transfer_scores(LayerDataset.concatenate([train, train_b]), test, test_b, LABELS, n_a=train.y.size,
                               seed=0, probe_params=ONE_EPOCH, names=("a", "b"))
    for table in (shuffled, random, transfer):
        assert (table["epochs"] == 1).all() and not table["converged"].any(), table
    converged = random_control_scores("per_dimension", train, test, LABELS, seed=0, probe_params=PROBE)
    assert converged["converged"].all()


def test_shuffled_labels_are_drawn_from_the_seed_one_permutation_each():
    """Permutation i fits the training labels shuffled with seed + i (the same table on every call)."""
    train, test = split(layered(), 0.25, seed=0)
    table = shuffled_label_scores(train, test, LABELS, seed=3, permutations=2, probe_params=PROBE)
    pd.testing.assert_frame_equal(table, shuffled_label_scores(train, test, LABELS, seed=3, permutations=2,
                                                               probe_params=PROBE))
    for i in range(2):
        run = fit_probe(train.X, shuffled_labels(train.y, 3 + i), test.X, test.y, make_probe("logistic", 3, **PROBE))
        assert table["accuracy"].iloc[i] == pytest.approx(np.mean(run.y_pred == test.y))
