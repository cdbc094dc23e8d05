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


def test_block_statistics_and_standardisation_equal_scikit_learns_across_blocks(monkeypatch):
    """Blocks of 7 rows over 30 (five blocks, the last short): the float64 sums must add up across blocks to
    StandardScaler's mean, variance and scale (a constant column keeps scale 1), and the standardised copy and
    the in-place version must both equal (X - mean) / scale, in float32."""
    from sklearn.preprocessing import StandardScaler

    from layerwise.probes import training

    monkeypatch.setattr(training, "BLOCK_ROWS", 7)
    rng = np.random.default_rng(3)
    X = (rng.standard_normal((30, 5)) * [1.0, 3.0, 0.5, 2.0, 1.0] + [0.0, 5.0, -2.0, 100.0, 0.0]).astype(np.float32)
    X[:, 4] = 3.0  # constant
    reference = StandardScaler().fit(X.astype(np.float64))
    scaler = training.fit_scaler(X)
    np.testing.assert_allclose(scaler.mean_, reference.mean_, rtol=1e-12)
    np.testing.assert_allclose(scaler.var_, reference.var_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scaler.scale_, reference.scale_, rtol=1e-9)
    assert scaler.scale_[4] == 1.0 and scaler.n_samples_seen_ == 30 and scaler.n_features_in_ == 5
    expected = ((X - reference.mean_) / reference.scale_).astype(np.float32)
    copy = training.standardise(X, scaler, overwrite=False)
    assert copy.dtype == np.float32 and copy is not X
    np.testing.assert_allclose(copy, expected, rtol=1e-5, atol=1e-6)
    inplace = X.copy()
    assert training.standardise(inplace, scaler, overwrite=True) is inplace
    np.testing.assert_allclose(inplace, expected, rtol=1e-5, atol=1e-6)


def test_make_probe_seeds_adams_mini_batches_with_the_given_seed():
    """Adam's mini-batch order is the probe's only randomness: make_probe(seed=s) must fit as a probe built with
    seed s (default 0), and another seed must give other weights."""
    from layerwise.probes.logistic import TorchLogisticProbe

    data = make_layered_vectors(10, 4, 2, 6, seed=2)
    adam = dict(solver="adam", batch_size=16, max_epochs=2, lr=0.05, device="cpu")
    fits = {}
    for name, probe in (("made_7", make_probe("logistic", 7, **adam)), ("own_7", TorchLogisticProbe(seed=7, **adam)),
                        ("made_default", make_probe("logistic", **adam)), ("own_0", TorchLogisticProbe(seed=0, **adam))):
        with pytest.warns(Warning, match="did not converge"):
            fits[name] = probe.fit(data.X, data.y).coef_
    np.testing.assert_array_equal(fits["made_7"], fits["own_7"])
    np.testing.assert_array_equal(fits["made_default"], fits["own_0"])
    assert not np.array_equal(fits["own_7"], fits["own_0"])


def test_bad_inputs_are_named_by_their_argument():
    X, y = np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1])
    for args, name in (((X[:0], y[:0], X, y), "X_train"), ((X, y, X[:0], y[:0]), "X_test"),
                       ((X, y[:3], X, y), "y_train"), ((X, y, X, y[:3]), "y_test")):
        with pytest.raises(ValueError, match=f"^{name} must"):
            fit_probe(*args, make_probe())


def test_the_torch_probe_records_test_curves_of_the_test_split():
    data = make_layered_vectors(20, 4, 2, 6, seed=4)
    train, test = split_by_text(data.text_ids, 0.25, seed=0)
    run = fit_probe(data.X[train], data.y[train], data.X[test], data.y[test], make_probe(device="cpu"))
    assert set(run.estimator.history_["split"]) == {"train", "test"}
