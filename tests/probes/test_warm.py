"""Warm starts and the coarse stage change the path of the strictly convex fit, never its optimum.

Ground truth is sklearn's float64 solution of the same objective on planted Gaussian classes; every
start (zero, a related problem's solution, a far-off point, the coarse subsample stage) must land on it.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from layerwise.probes.logistic import TorchLogisticProbe, WarmStart

TIGHT = dict(tol=1e-6, max_epochs=1000, device="cpu")


def planted(n: int = 20000, width: int = 12, n_classes: int = 5, seed: int = 0):
    """Overlapping Gaussian classes (~70% accuracy): a unique, well-conditioned optimum."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_classes, width)) * 0.6
    y = rng.integers(0, n_classes, n)
    X = (means[y] + rng.standard_normal((n, width))).astype(np.float32)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.fixture(scope="module")
def data():
    X, y = planted()
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(X.astype(np.float64), y)
    cold = TorchLogisticProbe(**TIGHT).fit(X, y)
    return X, y, reference, cold


def assert_same_optimum(probe, reference, X, y):
    scale = np.abs(reference.coef_).max()
    np.testing.assert_allclose(probe.coef_, reference.coef_, atol=1e-3 * scale)
    np.testing.assert_allclose(probe.intercept_ - probe.intercept_.mean(),
                               reference.intercept_ - reference.intercept_.mean(), atol=1e-3 * scale)
    assert probe.converged_ and probe.grad_norm_ <= TIGHT["tol"]
    assert np.mean(probe.predict(X) == reference.predict(X)) >= 0.999


def test_cold_fit_reaches_the_reference(data):
    X, y, reference, cold = data
    assert_same_optimum(cold, reference, X, y)
    assert cold.warm_start_ == "" and cold.passes_ == cold.n_evaluations_


def test_warm_start_from_a_related_problem_reaches_the_same_optimum(data):
    """A probe fitted on other data from the same distribution (another split, another seed) as start."""
    X, y, reference, cold = data
    X_other, y_other = planted(seed=1)
    related = TorchLogisticProbe(**TIGHT).fit(X_other, y_other)
    warm = TorchLogisticProbe(**TIGHT).fit(X, y, init=WarmStart.from_probe(related, "seed 1"))
    assert_same_optimum(warm, reference, X, y)
    assert warm.warm_start_ == "seed 1" and warm.passes_ == warm.n_evaluations_


def test_far_off_start_still_reaches_the_same_optimum(data):
    """Start-independence: weights far from the optimum (random, large) must not bias the answer."""
    X, y, reference, _ = data
    rng = np.random.default_rng(3)
    far = WarmStart(rng.normal(0, 3, (5, X.shape[1])), rng.normal(0, 3, 5), np.arange(5), "random")
    assert_same_optimum(TorchLogisticProbe(**TIGHT).fit(X, y, init=far), reference, X, y)


def test_coarse_stage_reaches_the_same_optimum_and_counts_its_passes(data):
    X, y, reference, cold = data
    coarse = TorchLogisticProbe(coarse_fraction=0.1, **TIGHT).fit(X, y)
    assert_same_optimum(coarse, reference, X, y)
    assert coarse.warm_start_ == "coarse"
    # the coarse stage's passes over 10% of the rows count 0.1 each: a positive whole number of them
    coarse_passes = (coarse.passes_ - coarse.n_evaluations_) / 0.1
    assert coarse_passes >= 2 and abs(coarse_passes - round(coarse_passes)) < 1e-6


def test_masked_refit_from_the_raw_probe_matches_the_cold_masked_refit(data):
    """The masked-dimension refit (columns zeroed) started from the raw probe with those weights zeroed."""
    X, y, _, cold = data
    dims = np.array([0, 3])
    masked = X.copy()
    masked[:, dims] = 0
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(masked.astype(np.float64), y)
    cold_masked = TorchLogisticProbe(**TIGHT).fit(masked, y)
    warm = TorchLogisticProbe(**TIGHT).fit(masked, y, init=WarmStart.from_probe(cold, "raw", zero_dims=dims))
    for probe in (cold_masked, warm):
        assert_same_optimum(probe, reference, masked, y)
    # masked columns see only the L2 pull, far below any gradient tolerance: they must start and stay at 0
    # (up to the float32 rounding of the whitened coordinates; a stray start would leave weights ~1e-1 there)
    np.testing.assert_allclose(warm.coef_[:, dims], 0.0, atol=1e-6)


def test_warm_start_aligns_classes_by_label():
    """Classes are matched by label: a start from a probe on a subset of the classes fills the rest with 0."""
    start = WarmStart(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0, 6.0]), np.array([2, 7]), "subset")
    theta = start.theta(np.array([0, 2, 7]), 2)
    np.testing.assert_array_equal(theta, [0, 0, 1, 2, 3, 4, 0, 5, 6])
    with pytest.raises(ValueError, match="width"):
        start.theta(np.array([2, 7]), 3)


def test_small_data_skip_the_coarse_stage_and_bad_fraction_fails():
    X, y = planted(n=2000)
    probe = TorchLogisticProbe(coarse_fraction=0.1, **TIGHT).fit(X, y)
    assert probe.warm_start_ == "" and probe.passes_ == probe.n_evaluations_
    with pytest.raises(ValueError, match="coarse_fraction"):
        TorchLogisticProbe(coarse_fraction=1.0).fit(X, y)
