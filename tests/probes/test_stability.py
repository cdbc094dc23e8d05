"""Seed stability: accuracy spread over text splits, and top dimensions that must not move."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from layerwise.probes.attribution import attribution_table, top_dimensions
from layerwise.probes.masks import frequent_top_dimensions
from layerwise.probes.metrics import score_table
from layerwise.probes.split import split_by_text
from layerwise.probes.stability import StabilityResult, jaccard, seed_stability
from layerwise.probes.synthetic import make_layered_vectors
from layerwise.probes.training import fit_probe, make_probe


def test_jaccard_values():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == pytest.approx(0.5)
    assert jaccard({1}, {2}) == 0.0
    assert jaccard(set(), set()) == 1.0


def test_fixed_carrying_dimensions_are_found_by_every_seed():
    """Layer l is shifted along dimension l only: every split must rank dimension l first for layer l."""
    rng = np.random.default_rng(0)
    n_texts, per_text, n_layers = 60, 40, 4
    text_ids = np.repeat(np.arange(n_texts), per_text)
    y = np.tile(np.arange(n_layers), n_texts * per_text // n_layers)
    X = rng.standard_normal((y.size, 12)).astype(np.float32)
    X[np.arange(y.size), y] += 3.0
    seeds = (0, 1, 2)
    result = seed_stability(X, y, text_ids, seeds, top_n=1, k_frequent=n_layers)
    assert list(result.runs.columns) == ["seed", "accuracy", "macro_f1", "frequent_dims"]
    assert list(result.runs["seed"]) == list(seeds)
    assert (result.runs["accuracy"] > 0.85).all()
    assert set(result.runs["frequent_dims"]) == {"0,1,2,3"}
    assert len(result.overlap) == 3 * (n_layers + 1)  # 3 seed pairs x (4 layers + the frequent set)
    assert (result.overlap["jaccard"] == 1.0).all()
    summary = result.summary().iloc[0]
    assert summary["accuracy_mean"] == pytest.approx(result.runs["accuracy"].mean())
    assert summary["accuracy_std"] == pytest.approx(np.std(result.runs["accuracy"], ddof=1))
    assert summary["accuracy_std"] < 0.03
    assert summary["top_jaccard_mean"] == 1.0 and summary["frequent_jaccard_mean"] == 1.0


def test_needs_two_distinct_seeds():
    with pytest.raises(ValueError, match="two distinct seeds"):
        seed_stability(np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), np.arange(4), seeds=(1, 1))


# --------------------------------------------------------------------------- known answers
# Each seed is its own split and probe with the given parameters; the top sets come from the input x weight
# attribution; the summary's columns and spread.

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
