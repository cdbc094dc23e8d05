"""fit_probe and make_probe: train-only standardisation, estimator choice, the decision-tree probe."""

import numpy as np
import pytest

from layerwise.probes.metrics import score_table
from layerwise.probes.split import split_by_text
from layerwise.probes.synthetic import make_layered_vectors
from layerwise.probes.training import fit_probe, make_probe


def tree_run(data, **params):
    train, test = split_by_text(data.text_ids, test_fraction=0.5, seed=0)
    return fit_probe(data.X[train], data.y[train], data.X[test], data.y[test], make_probe("tree", seed=0, **params))


def test_standardisation_uses_training_statistics_only():
    data = make_layered_vectors(40, 5, 2, 6, seed=5)
    train, test = split_by_text(data.text_ids, 0.3, seed=0)
    X = data.X.copy()
    X[test] += 100.0  # a shift only the test side has must not leak into the scaler
    run = fit_probe(X[train], data.y[train], X[test], data.y[test], make_probe())
    np.testing.assert_allclose(run.scaler.mean_, X[train].mean(0), rtol=1e-5)
    np.testing.assert_allclose(run.X_test, (X[test] - run.scaler.mean_) / run.scaler.scale_, rtol=1e-4)
    np.testing.assert_array_equal(run.predict(X[test]), run.y_pred)


def test_decision_tree_probe_is_seeded_and_depth_limited():
    data = make_layered_vectors(100, 10, 4, 16, layer_step=8.0, seed=6)
    run = tree_run(data, max_depth=6)
    assert score_table(run.y_test, run.y_pred).iloc[0]["accuracy"] > 0.9
    assert run.estimator.get_depth() <= 6
    np.testing.assert_array_equal(run.y_pred, tree_run(data, max_depth=6).y_pred)


def test_unknown_probe_kind_and_mismatched_widths():
    with pytest.raises(ValueError, match="probe kind"):
        make_probe("svm")
    X = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="columns"):
        fit_probe(X, np.array([0, 1, 0, 1]), X[:, :2], np.array([0, 1, 0, 1]), make_probe())
