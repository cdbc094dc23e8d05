"""The cost estimate of a config, checked against token and FLOP counts done by hand."""

from __future__ import annotations

import pytest

from layerwise.workflow.cost import estimate, forward_jobs

SIZES = {"a": (1e6, 2, 8), "b": (2e6, 3, 4)}
CONFIG = {
    "probes": {"models": ["a"], "dataset": "imdb", "transfer_dataset": "ag_news", "n_texts": 10, "max_tokens": 5,
               "test_fraction": 0.2, "probe": {"max_epochs": 10}, "stability_seeds": [0, 1],
               "grid": {"n_texts": [10, 20], "max_tokens": [5]}},
    "norms": {"models": ["a", "b"], "dataset": "imdb", "n_texts": 10, "max_tokens": 5},  # a: the probe store
    "geometry": {"models": ["b"], "dataset": "enwik8", "n_texts": 4, "max_tokens": 8},
    "lens": {"models": ["a"], "n_texts": 3, "max_tokens": 2, "decoders": ["full", "norm_only"]},
    "training": {"hub": {"b": {"id": "x/b", "n_revisions": 3}}},
}


def test_shared_stores_count_once_and_hub_revisions_count_each():
    tokens = forward_jobs(CONFIG).groupby("study")["tokens"].sum().to_dict()
    # probes on a: imdb, imdb.nopunct, ag_news at 10x5, and the grid cell 20x5 (10x5 is the main store).
    assert tokens["probes"] == 3 * 50 + 100
    assert tokens["norms"] == 50  # only b: a's imdb 10x5 store is the probes' main store
    assert tokens["geometry"] == 32
    assert tokens["lens"] == 3 * 2 * 2
    assert tokens["training (hub checkpoints)"] == 3 * 32


def test_flops_by_hand():
    flops = estimate(CONFIG, SIZES, vocab=10).set_index("study")["flops"].to_dict()
    assert flops["geometry"] == pytest.approx(2 * 2e6 * 32)
    # the lens: forward plus an unembedding (width 8 x vocab 10) at each of 3 layer outputs, per token
    assert flops["lens"] == pytest.approx(12 * (2 * 1e6 + 2 * 3 * 8 * 10))
    # probe fits on a (3 classes = layers + 1): raw, 3 conditions, position 0, nopunct, transfer, 2 seeds
    # = 9 fits of 10x5 tokens, plus the 20x5 grid cell; 80 % train; 6 x vectors x width x classes x epochs
    fit_tokens = 9 * 50 + 100
    assert flops["probes (fits)"] == pytest.approx(6 * fit_tokens * 3 * 0.8 * 8 * 3 * 10)
