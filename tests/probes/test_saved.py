"""Saved probes (`layerwise.probes.saved`): the round trip keeps the scaler, the weights and the split size; a
saved fit refuses other training vectors unless only shapes are compared; the fitted probe is `fit_probe`'s fit."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.probes.conditions import run_condition, split
from layerwise.probes.controls import normalise_rows
from layerwise.probes.saved import FittedProbe, load_probe, save_probe
from layerwise.probes.training import fit_probe, make_probe

from tests.probes.planted import PROBE, layered


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
