"""Each probe condition (`layerwise.probes.conditions`) really changes its input, and the transfer table on a
second data set that differs (its layer means point elsewhere) shows the drop the paper reports; the transfer
test of test_study.py compares a data set with (a copy of) itself."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.probes.conditions import random_control_scores, run_condition, split, transfer_scores
from layerwise.probes.controls import layer_moments, normalise_rows
from layerwise.probes.features import LayerDataset
from layerwise.probes.synthetic import make_layered_vectors


PROBE = {"C": 1.0, "max_epochs": 50}
N_LAYERS = 4


def layered(seed: int, layer_step: float = 6.0) -> LayerDataset:
    v = make_layered_vectors(n_texts=60, n_positions=8, n_layers=N_LAYERS, width=24, layer_step=layer_step,
                             seed=seed)
    return LayerDataset(v.X, v.y, v.text_ids, v.positions)


def accuracy(table, train: str, test: str) -> float:
    return float(table.set_index(["train", "test"]).loc[(train, test), "accuracy"])


def test_transfer_to_a_differing_data_set_drops_to_chance_and_mixing_recovers():
    a, b = layered(seed=0), layered(seed=1)  # other seed: other layer means
    assert not np.allclose(a.X[a.y == N_LAYERS].mean(0), b.X[b.y == N_LAYERS].mean(0), atol=1.0)
    train_a, test_a = split(a, 0.25, seed=0)
    train_b, test_b = split(b, 0.25, seed=1)
    labels, chance = np.arange(N_LAYERS + 1), 1 / (N_LAYERS + 1)
    table = transfer_scores(LayerDataset.concatenate([train_a, train_b]), test_a, test_b, labels, n_a=train_a.y.size,
                            seed=0, probe_params=PROBE, names=("a", "b"))
    assert accuracy(table, "a", "a") > 0.95
    assert accuracy(table, "a", "b") < chance + 0.25  # the probe learnt a's means, which b does not share
    # One linear probe for both sets of means is harder than for one, but far above the transfer.
    assert accuracy(table, "a+b", "a") > 0.8 and accuracy(table, "a+b", "b") > 0.8


def test_normalised_condition_fits_on_unit_rows_of_the_same_directions():
    data = layered(seed=0)
    unit = normalise_rows(data.X)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit * np.linalg.norm(data.X, axis=1, keepdims=True), data.X, rtol=1e-4, atol=1e-4)
    train, test = split(data, 0.25, seed=0)
    raw = run_condition("raw", train, test, seed=0, probe_params=PROBE, tree_params={})
    normalised = run_condition("normalised", train, test, seed=0, probe_params=PROBE, tree_params={})
    # Both are standardised afterwards; the normalised input is that of the unit rows, not of the raw ones.
    expected = (normalise_rows(train.X) - normalise_rows(train.X).mean(0)) / normalise_rows(train.X).std(0)
    np.testing.assert_allclose(normalised.X_train, expected, rtol=1e-3, atol=1e-3)
    assert not np.allclose(normalised.X_train, raw.X_train, atol=1e-2)


@pytest.mark.parametrize("kind", ["scalar", "per_dimension"])
def test_random_vectors_are_new_draws_with_the_training_moments(kind):
    train, _ = split(layered(seed=0), 0.25, seed=0)
    moments = layer_moments(train.X, train.y, kind)
    drawn = moments.sample(train.y, seed=3)
    assert drawn.shape == train.X.shape and not np.isclose(drawn, train.X, atol=1e-3).all(axis=1).any()
    for i, layer in enumerate(moments.layers):
        rows = drawn[train.y == layer].astype(np.float64)
        if kind == "per_dimension":  # each dimension keeps the layer's mean (the cue a probe can read)
            real = train.X[train.y == layer].astype(np.float64)
            np.testing.assert_allclose(rows.mean(0), real.mean(0), atol=4 * real.std(0).max() / np.sqrt(len(rows)))
        else:  # one mean and std for all coordinates of the layer's unit rows: no direction survives
            assert rows.mean() == pytest.approx(moments.mean[i][0], abs=0.01)
            assert rows.std() == pytest.approx(moments.std[i][0], rel=0.05)
    np.testing.assert_array_equal(moments.sample(train.y, seed=3), drawn)  # seeded


def test_scalar_control_scores_random_vectors_not_the_real_ones():
    """Layers that differ in direction: the normalised probe reads them on real vectors, but the scalar
    control's random vectors keep no direction, so the same probe on them must fall to chance."""
    train, test = split(layered(seed=0), 0.25, seed=0)
    labels, chance = np.arange(N_LAYERS + 1), 1 / (N_LAYERS + 1)
    real = run_condition("normalised", train, test, seed=0, probe_params=PROBE, tree_params={})
    assert np.mean(real.y_pred == real.y_test) > 0.8
    table = random_control_scores("scalar", train, test, labels, seed=0, probe_params=PROBE).set_index("condition")
    assert abs(table.loc["random_scalar_trained", "accuracy"] - chance) < 0.1
