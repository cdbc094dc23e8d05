"""Known answers for how a store becomes the probe's dataset, and for the seed-stability experiment.

Written for the survivors of mutmut's run on `probes/features` and `probes/stability`: a post-setting last
class whose label came from another layer, `include_position0` / `final_norm_last` lost on the way to the
split, a wrong-shaped `out` accepted, a split or a probe not seeded by the run's seed, the probe's parameters
dropped, the top sets read from the weight-only attribution, and a summary whose columns or spread are wrong.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from test_probes_fidelity import make_store
from layerwise.probes.attribution import attribution_table, top_dimensions
from layerwise.probes.features import layer_dataset, split_layer_dataset, split_layer_datasets
from layerwise.probes.masks import frequent_top_dimensions
from layerwise.probes.metrics import score_table
from layerwise.probes.split import split_by_text
from layerwise.probes.stability import StabilityResult, jaccard, seed_stability
from layerwise.probes.synthetic import make_layered_vectors
from layerwise.probes.training import fit_probe, make_probe

# make_store: 4 texts x 5 positions, width 3, layers 0..2 (+ the final norm); every value of layer l is
# l + 10 * text, the final norm's -1 + 10 * text.


def layer_value(data) -> np.ndarray:
    """The planted layer value of each row (its first coordinate less the text's offset)."""
    return data.X[:, 0] - 10 * data.text_ids


def test_post_setting_last_class_keeps_the_last_layers_label(tmp_path):
    store = make_store(tmp_path / "gpt", has_final_norm=True)
    data = layer_dataset(store, final_norm_last=True)
    assert np.unique(data.y).tolist() == [0, 1, 2] and np.bincount(data.y).tolist() == [16, 16, 16]
    np.testing.assert_array_equal(layer_value(data), np.where(data.y == 2, -1, data.y))
    assert data.X.dtype == np.float32 and data.y.dtype == np.int64


@pytest.mark.parametrize("position0, rows_per_layer", [(False, 16), (True, 20)])
def test_split_reads_position0_and_the_post_norm_last_class_as_asked(tmp_path, position0, rows_per_layer):
    store = make_store(tmp_path / "s", has_final_norm=True)
    train, test = split_layer_dataset(store, 0.25, seed=1, include_position0=position0, final_norm_last=True)
    for part in (train, test):
        np.testing.assert_array_equal(layer_value(part), np.where(part.y == 2, -1, part.y))
        assert (part.positions == 0).any() == position0
    assert len(train.y) + len(test.y) == 3 * rows_per_layer
    # the joint loader splits and stacks each store the same way
    joint, (train_a, train_b), (test_a, test_b) = split_layer_datasets(
        [store, store], 0.25, seed=1, include_position0=position0, final_norm_last=True)
    for got in (train_a, train_b):
        np.testing.assert_array_equal(got.X, train.X)
        np.testing.assert_array_equal(got.y, train.y)
    for got in (test_a, test_b):
        np.testing.assert_array_equal(got.X, test.X)
    assert joint.X.dtype == np.float32 and len(joint.y) == 2 * len(train.y)


def test_split_layer_datasets_defaults_to_the_pre_norm_last_layer(tmp_path):
    store = make_store(tmp_path / "s", has_final_norm=True)
    joint, _, (test,) = split_layer_datasets([store], 0.25, seed=1)
    for part in (joint, test):
        np.testing.assert_array_equal(layer_value(part), part.y)


def test_split_layer_datasets_needs_a_store():
    with pytest.raises(ValueError, match="need at least one store"):
        split_layer_datasets([], 0.25, seed=0)


# --------------------------------------------------------------------------- seed stability

def noisy_layers():
    """Weakly separated layers (accuracy well below 1, so splits and C move it), 12 dims, 30 texts."""
    v = make_layered_vectors(n_texts=30, n_positions=4, n_layers=3, width=12, layer_step=1.2, noise=1.0, seed=5)
    return v.X, v.y, v.text_ids


def reference_run(X, y, text_ids, seed, probe_params, top_n):
    """What one seed of the experiment must be: the probe fitted on that seed's split by text, with that seed."""
    train, test = split_by_text(text_ids, 0.2, seed)
    run = fit_probe(X[train], y[train], X[test], y[test], make_probe("logistic", seed, **probe_params))
    table = attribution_table(run.estimator.coef_, run.estimator.classes_, run.X_train, run.y_train)
    tops = {layer: set(g["dim"]) for layer, g in
            top_dimensions(table[table["variant"] == "input_x_weight"], top_n).groupby("layer")}
    weight_tops = {layer: set(g["dim"]) for layer, g in
                   top_dimensions(table[table["variant"] == "weight"], top_n).groupby("layer")}
    return score_table(run.y_test, run.y_pred, np.unique(y)).iloc[0], tops, weight_tops, table


def test_each_seed_is_its_own_split_and_probe_with_the_given_parameters():
    X, y, text_ids = noisy_layers()
    params = {"C": 0.002, "max_epochs": 200, "device": "cpu"}
    seeds = (3, 8)
    result = seed_stability(X, y, text_ids, seeds, top_n=3, k_frequent=2, probe_params=params)
    refs = {seed: reference_run(X, y, text_ids, seed, params, 3) for seed in seeds}
    for _, row in result.runs.iterrows():
        scores = refs[row["seed"]][0]
        assert row["accuracy"] == scores["accuracy"] and row["macro_f1"] == scores["macro_f1"]
    # the planted data make the answer depend on the split and on C: a mutant that ignores either shows
    assert refs[3][0]["accuracy"] != refs[8][0]["accuracy"]
    default_c = reference_run(X, y, text_ids, 3, {"max_epochs": 200, "device": "cpu"}, 3)[0]
    assert default_c["accuracy"] != refs[3][0]["accuracy"]
    # top sets are the input x weight attribution's (which differs from the weight-only one on these data)
    a, b = refs[3][1], refs[8][1]
    top = result.overlap[result.overlap["scope"] == "top_per_layer"].set_index("layer")["jaccard"]
    for layer in range(4):
        assert top[layer] == jaccard(a[layer], b[layer])
    assert any(refs[s][1][layer] != refs[s][2][layer] for s in seeds for layer in range(4))
    # the k=2 most frequent dims of the top-3 lists (which here differ from those of the top-8 lists)
    for seed in seeds:
        table = refs[seed][3]
        expected = frequent_top_dimensions(table, 2, 3)["dim"]
        assert result.runs.set_index("seed").loc[seed, "frequent_dims"] == ",".join(map(str, sorted(expected)))
        assert set(expected) != set(frequent_top_dimensions(table, 2, 8)["dim"])
    frequent = result.overlap[result.overlap["scope"] == "frequent"]["jaccard"].item()
    assert frequent == jaccard(*(set(frequent_top_dimensions(refs[s][3], 2, 3)["dim"]) for s in seeds))


def test_adam_mini_batches_are_ordered_by_the_runs_seed():
    """Adam's mini-batch order is the one randomness of the probe itself: each run seeds it with its own seed."""
    X, y, text_ids = noisy_layers()
    params = {"solver": "adam", "batch_size": 64, "max_epochs": 3, "lr": 0.05, "device": "cpu"}
    with pytest.warns(Warning, match="did not converge"):
        result = seed_stability(X, y, text_ids, (2, 4), top_n=3, k_frequent=2, probe_params=params)
    for seed in (2, 4):
        with pytest.warns(Warning, match="did not converge"):
            scores = reference_run(X, y, text_ids, seed, params, 3)[0]
        assert result.runs.set_index("seed").loc[seed, "accuracy"] == scores["accuracy"]


def test_two_seeds_are_enough():
    X, y, text_ids = noisy_layers()
    result = seed_stability(X, y, text_ids, (0, 1), top_n=2, k_frequent=2, probe_params={"device": "cpu"})
    assert len(result.runs) == 2
    assert result.overlap.columns.tolist() == ["seed_a", "seed_b", "scope", "layer", "jaccard"]
    assert result.overlap[["seed_a", "seed_b"]].drop_duplicates().values.tolist() == [[0, 1]]
    assert result.overlap["layer"].tolist()[:4] == [0, 1, 2, 3] and result.overlap["layer"].isna().tolist()[-1]


def test_summary_of_planted_runs():
    """Three runs: accuracy 0.5, 0.6, 0.9, macro-F1 0.4, 0.4, 0.7 (sample std, ddof=1); Jaccard of the top
    sets 1, 0.5, 0 (mean 0.5), of the frequent sets 0.25 (one pair); a scope without rows gives NaN."""
    runs = pd.DataFrame({"seed": [0, 1, 2], "accuracy": [0.5, 0.6, 0.9], "macro_f1": [0.4, 0.4, 0.7],
                         "frequent_dims": ["1", "1", "2"]})
    overlap = pd.DataFrame({"seed_a": [0, 0, 1, 0], "seed_b": [1, 2, 2, 1],
                            "scope": ["top_per_layer"] * 3 + ["frequent"], "layer": [0, 0, 0, None],
                            "jaccard": [1.0, 0.5, 0.0, 0.25]})
    row = StabilityResult(runs, overlap).summary().iloc[0].to_dict()
    # sample std of (0.5, 0.6, 0.9): deviations -1/6, -1/15, 7/30 -> squares sum 0.0867 / 2 -> 0.2082
    assert row == pytest.approx({"n_seeds": 3, "accuracy_mean": 2 / 3, "accuracy_std": np.sqrt(0.26 / 3 / 2),
                                 "macro_f1_mean": 0.5, "macro_f1_std": np.sqrt(0.06 / 2),
                                 "top_jaccard_mean": 0.5, "frequent_jaccard_mean": 0.25})
    only_top = StabilityResult(runs, overlap[overlap["scope"] == "top_per_layer"]).summary().iloc[0]
    assert np.isnan(only_top["frequent_jaccard_mean"]) and only_top["top_jaccard_mean"] == 0.5
    only_frequent = StabilityResult(runs, overlap[overlap["scope"] == "frequent"]).summary().iloc[0]
    assert np.isnan(only_frequent["top_jaccard_mean"])


def test_pairs_cover_every_seed_pair_once():
    X, y, text_ids = noisy_layers()
    seeds = (4, 1, 7)
    result = seed_stability(X, y, text_ids, seeds, top_n=2, k_frequent=2, probe_params={"device": "cpu"})
    pairs = result.overlap[["seed_a", "seed_b"]].drop_duplicates().values.tolist()
    assert pairs == [list(p) for p in combinations(seeds, 2)]


def test_stack_refuses_an_out_of_the_wrong_shape_or_dtype(tmp_path):
    from layerwise.probes.features import _sources, _stack

    store = make_store(tmp_path / "s", has_final_norm=True)
    rows, sources = store.position_mask(False), _sources(store, (), False)
    right = (int(rows.sum()) * len(sources), 3)
    _stack(store, rows, sources, out=np.empty(right, np.float32))
    for shape, dtype in (((right[0] - 1, 3), np.float32), (right, np.float64)):
        with pytest.raises(ValueError, match=r"out must be float32 of shape \(48, 3\)"):
            _stack(store, rows, sources, out=np.empty(shape, dtype))
