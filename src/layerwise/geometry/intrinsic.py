"""TwoNN intrinsic dimension (Facco et al. 2017) from the two nearest-neighbour distances."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from layerwise.backend import asnumpy
from layerwise.geometry.spectrum import _check_fraction
from layerwise.geometry.neighbours import DEFAULT_BLOCK_SIZE, DEFAULT_N_CANDIDATES, two_nearest_neighbour_distances

ESTIMATORS = ("linear", "mle")


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")


@dataclass(frozen=True)
class TwoNNResult:
    """A TwoNN estimate together with what it was computed from."""

    dimension: float
    n_points: int  # points given, duplicates included
    n_used: int  # ratios entering the estimate
    n_duplicates: int  # points with r1 == 0, dropped
    fraction: float  # share of the smallest ratios fitted (always 1.0 for the MLE)
    estimator: str  # "linear" or "mle"


def _fit_twonn(r1: Any, r2: Any, xp: ModuleType, fraction: float, estimator: str) -> TwoNNResult:
    """TwoNN (Facco et al. 2017) from nearest-neighbour distances.

    mu = r2 / r1 is Pareto(1, d). "linear": slope of the line through the origin fitted to
    (log mu_(i), -log(1 - i/N)) over the int(N * fraction) smallest mu, as in the paper,
    scikit-dimension and DADApy; the largest ratio is never used since -log(1 - N/N) is
    infinite. "mle": (N - 1) / sum(log mu), the unbiased Pareto-shape estimate over all mu.
    Points with r1 == 0 (duplicates) have no ratio: dropped and counted.
    """
    keep = r1 > 0
    n_points = int(r1.shape[0])
    mu = r2[keep] / r1[keep]
    n = int(mu.shape[0])
    if n < 3:
        raise ValueError(f"only {n} points with a non-zero nearest-neighbour distance; need 3")
    log_mu = xp.log(mu)
    if estimator == "mle":
        n_used = n
        total = float(log_mu.sum())
        if total <= 0:
            raise ValueError("all points are equidistant from their two neighbours; no dimension")
        dimension = (n - 1) / total
    else:
        n_used = min(int(n * fraction), n - 1)
        if n_used < 2:
            raise ValueError(f"fraction={fraction} keeps {n_used} ratios; need at least 2")
        xs = xp.sort(log_mu)[:n_used]
        ys = -xp.log1p(-xp.arange(1, n_used + 1, dtype=xp.float64) / n)
        sxx = float((xs * xs).sum())
        if sxx == 0:
            raise ValueError("all kept ratios are 1; no dimension")
        dimension = float((xs * ys).sum()) / sxx
    return TwoNNResult(
        dimension=float(dimension),
        n_points=n_points,
        n_used=n_used,
        n_duplicates=n_points - n,
        fraction=float(fraction) if estimator == "linear" else 1.0,
        estimator=estimator,
    )


def twonn_from_distances(
    r1: Any, r2: Any, *, fraction: float = 0.9, estimator: str = "linear"
) -> TwoNNResult:
    """TwoNN estimate from precomputed first/second nearest-neighbour distances."""
    _check_fraction(fraction)
    _check_estimator(estimator)
    r1 = np.asarray(asnumpy(r1), dtype=np.float64)
    r2 = np.asarray(asnumpy(r2), dtype=np.float64)
    if r1.ndim != 1 or r1.shape != r2.shape:
        raise ValueError(f"r1 and r2 must be 1-D of equal length, got {r1.shape} and {r2.shape}")
    if np.any(r1 < 0) or np.any(r2 < r1):
        raise ValueError("need 0 <= r1 <= r2 for every point")
    return _fit_twonn(r1, r2, np, fraction, estimator)


def twonn(
    x: Any,
    *,
    fraction: float = 0.9,
    estimator: str = "linear",
    block_size: int = DEFAULT_BLOCK_SIZE,
    n_candidates: int = DEFAULT_N_CANDIDATES,
    backend: str = "auto",
) -> TwoNNResult:
    """TwoNN intrinsic dimension of the rows of ``x``."""
    _check_fraction(fraction)
    _check_estimator(estimator)
    r1, r2 = two_nearest_neighbour_distances(
        x, block_size=block_size, n_candidates=n_candidates, backend=backend
    )
    return _fit_twonn(r1, r2, np, fraction, estimator)
