"""Standardised anisotropy against its analytic value on data with large per-dimension means: the top
eigenvalue share of the correlation matrix. Zero-mean data cannot tell the standard deviation from the raw
RMS; with means far above the spread, dividing by the RMS gives (almost) the raw anisotropy instead."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.geometry import layer_geometry

N, D, RHO = 600, 8, 0.3


def planted(means: np.ndarray, scales: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rows whose sample correlation is exactly (1 - RHO) I + RHO 11ᵀ, scaled per dimension and shifted."""
    g = np.random.default_rng(seed).standard_normal((N, D))
    g -= g.mean(axis=0)
    w, v = np.linalg.eigh(g.T @ g / N)
    white = g @ v @ np.diag(w ** -0.5) @ v.T  # sample covariance exactly I
    corr = (1 - RHO) * np.eye(D) + RHO * np.ones((D, D))
    return white @ np.linalg.cholesky(corr).T * scales + means


def metric(table, name: str) -> float:
    return float(table.set_index("metric").loc[name, "mean"])


@pytest.mark.parametrize("mean_scale", [0.0, 50.0, 1e4])
def test_standardised_anisotropy_is_the_correlation_matrix_top_share(mean_scale):
    scales = 2.0 ** np.arange(D)  # one dimension dominates the raw spectrum
    means = mean_scale * np.linspace(1, 3, D)
    table = layer_geometry(planted(means, scales), layer=0, batch_size=N, seed=0, backend="numpy")
    # Correlation (1 - ρ) I + ρ 11ᵀ: top eigenvalue 1 + (D - 1) ρ out of a trace of D.
    assert metric(table, "anisotropy_standardised") == pytest.approx((1 + (D - 1) * RHO) / D, rel=1e-9)
    # The raw anisotropy is the top share of diag(s) R diag(s), whatever the means: it must differ.
    cov = np.outer(scales, scales) * ((1 - RHO) * np.eye(D) + RHO)
    raw = np.linalg.eigvalsh(cov)[-1] / np.trace(cov)
    assert metric(table, "anisotropy") == pytest.approx(raw, rel=1e-9)
    assert abs(raw - (1 + (D - 1) * RHO) / D) > 0.1
