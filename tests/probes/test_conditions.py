"""Known answers for Study 1's experiment conditions (`layerwise.probes.conditions`).

Every expected value here is worked out by hand from the documented definition (the comments show the
arithmetic), or is a property that a planted data set forces: a test split whose real vectors are pushed far off
(the random controls must not notice), a test split whose top dimensions differ from the training split's (the
mask choice must follow the training split); the probe parameters reach every fit and the shuffles are seeded."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from layerwise.probes.attribution import attribution_table, top_dimensions
from layerwise.probes.conditions import (random_control_scores, raw_probe_analyses, run_condition,
                                         shuffled_label_scores, split, train_selection, transfer_scores)
from layerwise.probes.controls import layer_moments, shuffled_labels
from layerwise.probes.masks import mask_ablation
from layerwise.probes.features import LayerDataset
from layerwise.probes.logistic import TorchLogisticProbe
from layerwise.probes.metrics import confusion_table
from layerwise.probes.split import split_by_text
from layerwise.probes.training import ProbeRun, fit_probe, make_probe

from tests.probes.planted import LABELS, N_LAYERS, PROBE, layered, part


def standardised(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(X - mean) / population std, both of `reference` (the training split), in float64."""
    reference = reference.astype(np.float64)
    return (X.astype(np.float64) - reference.mean(0)) / reference.std(0)


def accuracy_of(table: pd.DataFrame, condition: str) -> float:
    return float(table.set_index("condition").loc[condition, "accuracy"])


def test_condition_split_takes_the_rows_of_split_by_text():
    data = layered()
    train, test = split(data, 0.25, seed=4)
    on_train, on_test = split_by_text(data.text_ids, 0.25, 4)
    for part, rows in ((train, on_train), (test, on_test)):
        np.testing.assert_array_equal(part.X, data.X[rows])
        np.testing.assert_array_equal(part.y, data.y[rows])
        np.testing.assert_array_equal(part.text_ids, data.text_ids[rows])
    assert test.y.size == 10 * 4 * (N_LAYERS + 1)  # round(0.25 * 40) texts of 16 vectors


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
    # without the A+B probe: the A-trained rows, unchanged
    train_a, _ = split(a, 0.25, seed=0)
    train_b, _ = split(b, 0.25, seed=0)
    a_only = transfer_scores(LayerDataset.concatenate([train_a, train_b]), test_a, test_b, LABELS,
                             n_a=train_a.y.size, seed=0, probe_params=PROBE, names=("a", "b"), mix=False)
    pd.testing.assert_frame_equal(a_only, table.iloc[:2])


def test_masked_refit_is_skipped_when_not_asked_and_the_test_time_rows_are_unchanged():
    X, y = one_hot_layers(1200)
    run = fit_probe(X[:800], y[:800], X[800:], y[800:], TorchLogisticProbe(**PROBE))
    full = mask_ablation(run, [0, 1])
    assert full["condition"].tolist() == ["full", "masked_at_test", "masked_retrained"]
    assert full["passes"].iloc[2] > 0  # the re-fit ran
    short = mask_ablation(run, [0, 1], retrain=False)
    assert short["condition"].tolist() == ["full", "masked_at_test"]
    pd.testing.assert_frame_equal(short[["condition", "accuracy", "delta_pp", "dims"]],
                                  full[["condition", "accuracy", "delta_pp", "dims"]].iloc[:2])


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


def test_a_capped_tree_grows_on_a_seeded_sample_of_training_rows_and_predicts_every_test_row():
    train, test = split(layered(), 0.25, seed=0)
    cap = train.y.size // 3
    params = {"max_depth": 3, "max_train_rows": cap}
    run = run_condition("tree", train, test, seed=7, probe_params=PROBE, tree_params=params)
    assert run.estimator.tree_.n_node_samples[0] == cap == run.y_train.size  # the root saw the sample only
    assert run.y_pred.size == test.y.size
    assert params == {"max_depth": 3, "max_train_rows": cap}  # the caller's params are not consumed
    again = run_condition("tree", train, test, seed=7, probe_params=PROBE, tree_params=params)
    other = run_condition("tree", train, test, seed=8, probe_params=PROBE, tree_params=params)
    np.testing.assert_array_equal(again.y_train, run.y_train)
    assert not np.array_equal(other.X_train, run.X_train)  # the sample follows the seed
    uncapped = run_condition("tree", train, test, seed=7, probe_params=PROBE,
                             tree_params={"max_depth": 3, "max_train_rows": train.y.size})
    assert uncapped.estimator.tree_.n_node_samples[0] == train.y.size
