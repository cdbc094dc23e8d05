"""TwoNN intrinsic dimension (Facco et al. 2017) from the two nearest-neighbour distances."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from layerwise.backend import asnumpy
from layerwise.geometry.spectrum import _check_fraction
from layerwise.geometry.neighbours import (DEFAULT_BLOCK_SIZE, DEFAULT_N_CANDIDATES, Neighbours, _two_nn,
                                         two_nearest_neighbour_distances)
from layerwise.geometry.spectrum import _as_matrix
from layerwise.backend import get_array_module

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
    n_duplicates: int  # points with an identical other point (r1 == 0)
    fraction: float  # share of the smallest ratios fitted (always 1.0 for the MLE)
    estimator: str  # "linear" or "mle"
    n_merged: int = 0  # copies set aside when one copy of each vector is kept (twonn on vectors)


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


def twonn_from_neighbours(found: Neighbours, n_points: int, *, fraction: float = 0.9,
                          estimator: str = "linear") -> TwoNNResult:
    """TwoNN on one copy of each distinct vector (Facco et al. 2017; scikit-dimension and DADApy also
    remove duplicates first). Dropping every copy instead (r1 = 0 has no ratio) is biased: a point whose
    nearest neighbour has a copy gets r2 = r1, mu = 1, log mu = 0, which inflates the estimate."""
    if found.distinct_r1 is None or found.distinct_r1.shape[0] < 3:
        raise ValueError(f"only {n_points - found.n_merged} distinct vectors; need 3")
    result = _fit_twonn(found.distinct_r1, found.distinct_r2, np, fraction, estimator)
    return TwoNNResult(dimension=result.dimension, n_points=n_points, n_used=result.n_used,
                       n_duplicates=found.n_duplicates, fraction=result.fraction, estimator=estimator,
                       n_merged=found.n_merged)


def twonn_from_distances(
    r1: Any, r2: Any, *, fraction: float = 0.9, estimator: str = "linear"
) -> TwoNNResult:
    """TwoNN estimate from precomputed first/second nearest-neighbour distances. Points with r1 == 0 have no
    ratio and are dropped: give distances among distinct points (as :func:`twonn` does) to avoid the bias
    that copies leave on their neighbours' ratios."""
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
    """TwoNN intrinsic dimension of the rows of ``x``, one copy of each distinct row kept (the copies
    are counted in ``n_merged``)."""
    _check_fraction(fraction)
    _check_estimator(estimator)
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    if n_candidates < 2:
        raise ValueError(f"n_candidates must be at least 2, got {n_candidates}")
    xp = get_array_module(backend)
    matrix = _as_matrix(x, xp, min_rows=3)
    found = _two_nn(matrix, xp, block_size, n_candidates)
    return twonn_from_neighbours(found, int(matrix.shape[0]), fraction=fraction, estimator=estimator)
