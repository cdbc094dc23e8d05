"""Study 1 as the post ran it: ground truth for the random controls, the train-only label shuffle,
mask selection on train only, the post's setting (post-norm last state, position 0) and convergence fields."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from layerwise.probes.conditions import (random_control_scores, run_condition, scores, shuffled_label_scores, split,
                                         train_selection)
from layerwise.probes.features import LayerDataset, layer_dataset, split_layer_dataset
from layerwise.probes.synthetic import make_layered_vectors

from tests.probes.planted import make_store

PROBE = {"C": 1.0, "max_epochs": 200, "device": "cpu"}
N_LAYERS = 4


def norm_only(seed: int = 0) -> LayerDataset:
    """Layer identity carried only by the norm: every layer's directions share one distribution
    (around a common mean direction, so a linear probe can read the norm), norms grow 1.6x per layer."""
    rng = np.random.default_rng(seed)
    n_texts, n_positions, width = 40, 6, 16
    mean_direction = rng.standard_normal(width)
    mean_direction /= np.linalg.norm(mean_direction)
    n = n_texts * n_positions * N_LAYERS
    y = np.tile(np.arange(N_LAYERS), n_texts * n_positions)
    directions = mean_direction + 0.15 * rng.standard_normal((n, width))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    X = directions * (1.6 ** y)[:, None] * rng.uniform(0.95, 1.05, (n, 1))
    text_ids = np.repeat(np.arange(n_texts), n_positions * N_LAYERS)
    return LayerDataset(X.astype(np.float32), y, text_ids, np.zeros(n, dtype=np.int64))


def mean_direction_data() -> LayerDataset:
    v = make_layered_vectors(n_texts=40, n_positions=6, n_layers=N_LAYERS - 1, width=16, layer_step=4.0, seed=1)
    return LayerDataset(v.X, v.y, v.text_ids, v.positions)


def accuracy(table: pd.DataFrame, condition: str) -> float:
    return float(table.set_index("condition").loc[condition, "accuracy"])


def test_norm_only_layers_scalar_control_and_unit_norm_fall_to_chance_raw_does_not():
    train, test = split(norm_only(), 0.25, seed=0)
    labels, chance = np.arange(N_LAYERS), 1 / N_LAYERS
    raw = run_condition("raw", train, test, seed=0, probe_params=PROBE, tree_params={})
    unit = run_condition("normalised", train, test, seed=0, probe_params=PROBE, tree_params={})
    assert np.mean(raw.y_pred == raw.y_test) > 0.9
    assert abs(np.mean(unit.y_pred == unit.y_test) - chance) < 0.08
    table = random_control_scores("scalar", train, test, labels, seed=0, probe_params=PROBE)
    assert abs(accuracy(table, "random_scalar_trained") - chance) < 0.08
    assert abs(accuracy(table, "random_scalar_retrained") - chance) < 0.08


def test_mean_direction_layers_per_dimension_control_succeeds():
    """Per-dimension moments keep each layer's mean direction: a linear probe must read them."""
    train, test = split(mean_direction_data(), 0.25, seed=0)
    table = random_control_scores("per_dimension", train, test, np.arange(N_LAYERS), seed=0, probe_params=PROBE)
    assert accuracy(table, "random_per_dimension_trained") > 0.9
    assert accuracy(table, "random_per_dimension_retrained") > 0.9
    assert set(table.columns) >= {"converged", "epochs", "grad_norm"}


def test_overwrite_gives_the_same_scores_as_copies():
    data = mean_direction_data()
    copies = random_control_scores("scalar", *split(data, 0.25, seed=0), np.arange(N_LAYERS), seed=0,
                                   probe_params=PROBE)
    train, test = split(data, 0.25, seed=0)
    before = train.X.copy()
    in_place = random_control_scores("scalar", train, test, np.arange(N_LAYERS), seed=0, probe_params=PROBE,
                                     overwrite=True)
    pd.testing.assert_frame_equal(copies, in_place)
    assert not np.array_equal(before, train.X)  # the buffer was reused, as promised


def test_train_only_shuffle_is_chance_on_true_test_labels():
    data = mean_direction_data()
    train, test = split(data, 0.25, seed=0)
    y_test = test.y.copy()
    table = shuffled_label_scores(train, test, np.arange(N_LAYERS), seed=0, permutations=6, probe_params=PROBE)
    assert list(table["permutation"]) == list(range(6)) and (table["condition"] == "shuffled_labels").all()
    assert abs(table["accuracy"].mean() - 1 / N_LAYERS) < 0.06
    assert table["accuracy"].nunique() > 1  # permutations differ
    np.testing.assert_array_equal(test.y, y_test)  # test labels are never permuted


def test_masks_and_attributions_never_read_the_test_split():
    """A test split of NaNs would poison any statistic computed on it: selection must not change."""
    train, test = split(mean_direction_data(), 0.25, seed=0)
    run = run_condition("raw", train, test, seed=0, probe_params=PROBE, tree_params={})
    labels = np.arange(N_LAYERS)
    clean, clean_dims = train_selection(run, mask_k=3, top_n=4)
    poisoned_run = replace(run, X_test=np.full_like(run.X_test, np.nan), y_test=np.full_like(run.y_test, -1))
    poisoned, poisoned_dims = train_selection(poisoned_run, mask_k=3, top_n=4)
    pd.testing.assert_frame_equal(clean, poisoned)
    assert clean_dims == poisoned_dims and len(clean_dims) == 3
    assert np.isfinite(clean["share"]).all() and set(clean["layer"]) == set(labels)


def test_scores_carry_convergence_fields():
    train, test = split(mean_direction_data(), 0.25, seed=0)
    done = scores(run_condition("raw", train, test, seed=0, probe_params=PROBE, tree_params={}), np.arange(4))
    assert bool(done["converged"].iloc[0]) and 0 < done["epochs"].iloc[0] < 200 and done["grad_norm"].iloc[0] <= 1e-4
    with pytest.warns(Warning, match="did not converge"):
        short = run_condition("raw", train, test, seed=0, probe_params={**PROBE, "max_epochs": 2}, tree_params={})
    row = scores(short, np.arange(4)).iloc[0]
    assert not row["converged"] and row["epochs"] == 2 and row["grad_norm"] > 1e-4
    tree = scores(run_condition("tree", train, test, seed=0, probe_params=PROBE, tree_params={"max_depth": 3}),
                  np.arange(4)).iloc[0]
    assert pd.isna(tree["converged"])


def test_post_faithful_last_class_is_the_post_norm_state_with_position0(tmp_path):
    store = make_store(tmp_path / "gpt", has_final_norm=True)
    data = layer_dataset(store, include_position0=True, final_norm_last=True)
    last = data.X[data.y == 2][:, 0] - 10 * data.text_ids[data.y == 2]
    assert (last == -1).all() and (data.positions == 0).any()  # final norm's values, position 0 kept
    default = layer_dataset(store)
    assert (default.X[default.y == 2][:, 0] - 10 * default.text_ids[default.y == 2] == 2).all()
    # a post-LN encoder has no final norm: its last layer already is hidden_states[-1]
    bert = make_store(tmp_path / "bert", has_final_norm=False)
    np.testing.assert_array_equal(layer_dataset(bert, final_norm_last=True).X, layer_dataset(bert).X)


def test_split_layer_dataset_matches_stacking_then_splitting(tmp_path):
    store = make_store(tmp_path / "s", has_final_norm=True)
    train, test = split_layer_dataset(store, 0.25, seed=3, include_position0=True)
    ref_train, ref_test = split(layer_dataset(store, include_position0=True), 0.25, seed=3)
    for got, want in ((train, ref_train), (test, ref_test)):
        order, ref_order = np.lexsort((got.positions, got.text_ids, got.y)), np.lexsort(
            (want.positions, want.text_ids, want.y))
        np.testing.assert_array_equal(got.X[order], want.X[ref_order])
        np.testing.assert_array_equal(got.y[order], want.y[ref_order])
