"""Whitened L-BFGS: an exact change of coordinates (same logits, same objective, same optimum), a shorter path.

Ground truth is scikit-learn's float64 solution of the same objective. The planted data are what makes real
hidden states hard for the probe: the classes differ only along directions of small variance, mixed by a
rotation into every column, so per-column standardisation cannot undo it (second moment's condition ~3e5).
"""

import numpy as np
import pytest
import torch
from scipy.stats import special_ortho_group
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from layerwise.probes.logistic import TorchLogisticProbe, Whitening, _Problem

TIGHT = dict(tol=1e-5, max_epochs=3000, device="cpu")


def ill_conditioned(n: int = 6000, width: int = 16, n_classes: int = 4, seed: int = 0):
    """Latent directions with scales 10 ... 0.01, the class signal in the four smallest, randomly rotated."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    latent = rng.standard_normal((n, width))
    latent[:, -4:] += 1.5 * rng.standard_normal((n_classes, 4))[y]
    X = (latent * np.logspace(1, -2, width)) @ special_ortho_group.rvs(width, random_state=seed)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.fixture(scope="module")
def fitted():
    X, y = ill_conditioned()
    reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=20000).fit(X.astype(np.float64), y)
    plain = TorchLogisticProbe(precondition="none", **TIGHT).fit(X, y)
    whitened = TorchLogisticProbe(precondition="whiten", **TIGHT).fit(X, y)
    return X, y, reference, plain, whitened


def test_whitened_fit_reaches_the_reference_optimum(fitted):
    X, y, reference, _, whitened = fitted
    assert whitened.converged_ and whitened.grad_norm_ <= TIGHT["tol"]
    # the optimum's class-centred weights (the softmax ignores a common offset)
    centred = reference.coef_ - reference.coef_.mean(0)
    np.testing.assert_allclose(whitened.coef_, centred, atol=2e-3 * np.abs(centred).max())
    assert np.mean(whitened.predict(X) == reference.predict(X)) >= 0.999


def test_whitening_shortens_the_path_on_ill_conditioned_data(fitted):
    _, _, _, plain, whitened = fitted
    assert plain.converged_ and whitened.converged_
    # measured: 12 vs 340 evaluations
    assert whitened.n_evaluations_ * 5 <= plain.n_evaluations_, (whitened.n_evaluations_, plain.n_evaluations_)


def test_the_change_of_coordinates_keeps_logits_objective_and_gradient():
    """Logits X'W'^T = XW^T; the objective in W' (L2 on W'S) equals the objective in W; the gradient mapped
    back equals the original-coordinate gradient (checked against the un-whitened problem's own)."""
    X, y = ill_conditioned(n=2000)
    rng = np.random.default_rng(1)
    n_classes, width = 4, X.shape[1]
    l2 = 1.0 / X.shape[0]
    features = torch.as_tensor(X)
    whitening = Whitening.fit(features, l2, n_classes, seed=0)
    W = torch.as_tensor(rng.standard_normal((n_classes, width)), dtype=torch.float32)
    theta = np.concatenate([W.numpy().ravel(), rng.standard_normal(n_classes)]).astype(np.float32)
    labels = torch.as_tensor(y)
    original = _Problem(features, labels, l2, n_classes)
    white = _Problem(whitening.features(features), labels, l2, n_classes, whitening)
    theta_white = white.theta_in(theta)
    np.testing.assert_allclose(white.theta_out(theta_white), theta, rtol=1e-4, atol=1e-5)
    f0, ce0, _, g0 = original.evaluate(torch.as_tensor(theta))
    f1, ce1, _, g1 = white.evaluate(torch.as_tensor(theta_white))
    assert f1 == pytest.approx(f0, rel=1e-4) and ce1 == pytest.approx(ce0, rel=1e-4)
    assert white.max_gradient(g1.numpy().astype(np.float64)) == pytest.approx(float(g0.abs().max()), rel=1e-3)


def test_a_masked_column_gets_no_weight_and_bad_preconditioner_is_refused():
    X, y = ill_conditioned(n=3000)
    X[:, [2, 7]] = 0.0  # masked dimensions: directions the data do not span
    probe = TorchLogisticProbe(**TIGHT).fit(X, y)
    assert probe.converged_
    np.testing.assert_allclose(probe.coef_[:, [2, 7]], 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="precondition"):
        TorchLogisticProbe(precondition="pca").fit(X, y)


def test_auto_whitens_only_an_ill_conditioned_problem():
    """"auto": the rotated planted data (condition ~3e5) are whitened; well-conditioned Gaussian classes are
    not, nor are they when two columns are masked to zero (a decoupled direction, not ill-conditioning)."""
    X, y = ill_conditioned(n=3000)
    assert TorchLogisticProbe(**TIGHT).fit(X, y).whitened_
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 3000)
    X = (rng.standard_normal((4, 8))[y] + rng.standard_normal((3000, 8))).astype(np.float32)
    assert not TorchLogisticProbe(**TIGHT).fit(X, y).whitened_
    X[:, [1, 5]] = 0.0
    assert not TorchLogisticProbe(**TIGHT).fit(X, y).whitened_
    assert TorchLogisticProbe(precondition="whiten", **TIGHT).fit(X, y).whitened_
