"""Study 1 end to end on synthetic layers: split by text, standardise on train, probe, controls.

The issue's acceptance checks: separable layers give ~100%; pure noise and shuffled labels give
chance within 2 percentage points (10,000 test vectors: the binomial standard deviation at chance
1/5 is 0.4pp, so 2pp is a 5-sigma band).
"""

import numpy as np
import pytest

from layerwise.probes import (fit_probe, make_layered_vectors, make_probe, matched_random_vectors, normalise_rows,
                              score_table, shuffled_labels, split_by_text)

N_TEXTS, N_POSITIONS, N_LAYERS, WIDTH = 400, 10, 4, 16  # 20,000 vectors, 5 classes


def probe_accuracy(X, y, text_ids):
    train, test = split_by_text(text_ids, test_fraction=0.5, seed=0)
    run = fit_probe(X[train], y[train], X[test], y[test], make_probe("logistic", seed=0))
    return score_table(run.y_test, run.y_pred, np.arange(N_LAYERS + 1)).iloc[0], run


def test_separable_layers_are_recognised():
    data = make_layered_vectors(N_TEXTS, N_POSITIONS, N_LAYERS, WIDTH, layer_step=8.0, seed=0)
    scores, _ = probe_accuracy(data.X, data.y, data.text_ids)
    assert scores["accuracy"] > 0.99


def test_pure_noise_sits_at_chance():
    data = make_layered_vectors(N_TEXTS, N_POSITIONS, N_LAYERS, WIDTH, layer_step=0.0, seed=1)
    scores, run = probe_accuracy(data.X, data.y, data.text_ids)
    assert run.y_test.size >= 10_000
    assert abs(scores["accuracy"] - scores["chance"]) <= 0.02


def test_shuffled_labels_sit_at_chance_although_layers_are_separable():
    data = make_layered_vectors(N_TEXTS, N_POSITIONS, N_LAYERS, WIDTH, layer_step=3.0, seed=2)
    real, _ = probe_accuracy(data.X, data.y, data.text_ids)
    shuffled, _ = probe_accuracy(data.X, shuffled_labels(data.y, seed=0), data.text_ids)
    assert real["accuracy"] > 0.6
    assert abs(shuffled["accuracy"] - shuffled["chance"]) <= 0.02


def test_layers_that_differ_only_in_norm_are_lost_by_normalising():
    """Layer l is one distribution scaled by 2**l: after normalising, all layers are identically distributed."""
    rng = np.random.default_rng(3)
    text_ids = np.repeat(np.arange(200), 5 * (N_LAYERS + 1))
    y = np.tile(np.arange(N_LAYERS + 1), 200 * 5)
    X = (rng.standard_normal((y.size, WIDTH)) * 2.0 ** y[:, None] + 2.0 ** y[:, None]).astype(np.float32)
    raw, _ = probe_accuracy(X, y, text_ids)
    unit, _ = probe_accuracy(normalise_rows(X), y, text_ids)
    assert raw["accuracy"] > 0.6
    assert abs(unit["accuracy"] - unit["chance"]) <= 0.04  # 2,500 test vectors: 5 binomial sigma


def test_moment_matched_random_vectors_fool_a_probe_trained_on_real_ones():
    """Layers differing only in their means: random vectors with the same moments are classified alike."""
    data = make_layered_vectors(N_TEXTS, N_POSITIONS, N_LAYERS, WIDTH, layer_step=3.0, text_scale=0.0, seed=4)
    real, run = probe_accuracy(data.X, data.y, data.text_ids)
    _, test = split_by_text(data.text_ids, test_fraction=0.5, seed=0)
    fake = matched_random_vectors(data.X[test], data.y[test], seed=0)
    assert np.mean(run.predict(fake) == data.y[test]) == pytest.approx(real["accuracy"], abs=0.02)
