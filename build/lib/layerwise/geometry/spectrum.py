"""Anisotropy of a batch of hidden states: the covariance spectrum and the share of its top directions.

Anisotropy is sigma_1^2 / sum sigma_i^2 of the *centred* batch, as in Razzhigaev et al. (EACL 2024
Findings). Also holds the input checks shared by the study's estimators. Every array operation goes
through ``xp`` (NumPy or CuPy, see :mod:`layerwise.backend`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from layerwise.backend import asnumpy, get_array_module


def _as_matrix(x: Any, xp: ModuleType, *, min_rows: int) -> Any:
    """Validate a (n_vectors, width) numeric array and put it on xp's device, dtype unchanged."""
    if not hasattr(x, "ndim"):
        x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_vectors, width), got shape {tuple(x.shape)}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"expected a numeric array, got dtype {x.dtype}")
    if x.shape[0] < min_rows:
        raise ValueError(f"need at least {min_rows} vectors, got {x.shape[0]}")
    if x.shape[1] < 1:
        raise ValueError("vectors have width 0")
    return xp.asarray(x)


def _column_mean(x: Any, xp: ModuleType) -> Any:
    """float64 column means; a NaN or inf anywhere makes its column's mean non-finite."""
    mean = x.mean(axis=0, dtype=xp.float64)
    if not bool(xp.isfinite(mean).all()):
        raise ValueError("vectors contain NaN or inf (or values too large to sum)")
    return mean


def _centred64(x: Any, xp: ModuleType) -> Any:
    """Centred float64 copy: the covariance needs it, and centring changes no eigenvalue."""
    a = xp.array(x, dtype=xp.float64)
    a -= _column_mean(x, xp)
    return a


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")


def _spectrum(a: Any, xp: ModuleType) -> Any:
    """Descending covariance eigenvalues of a centred float64 batch.

    The d x d covariance costs n d^2 + d^3 and its eigvalsh is exact enough in float64; when
    n < d the thin SVD (n^2 d) is cheaper and gives the same non-zero spectrum.
    """
    n, d = a.shape
    if n >= d:
        values = xp.linalg.eigvalsh(a.T @ a)
    else:
        values = xp.linalg.svd(a, compute_uv=False) ** 2
    values = xp.clip(values, 0.0, None) / (n - 1)
    return xp.sort(values)[::-1]


def covariance_spectrum(x: Any, *, backend: str = "auto") -> np.ndarray:
    """Eigenvalues of the covariance of the rows of ``x``, largest first (min(n, d) values)."""
    xp = get_array_module(backend)
    return asnumpy(_spectrum(_centred64(_as_matrix(x, xp, min_rows=2), xp), xp))


def top_k_shares(spectrum: Any, ks: tuple[int, ...] = (1, 5, 10)) -> dict[int, float]:
    """Share of the total variance held by the k largest eigenvalues, for each k.

    k = 1 is the anisotropy sigma_1^2 / sum sigma_i^2; larger k show whether a few outlier
    directions, rather than one, dominate.
    """
    values = np.asarray(asnumpy(spectrum), dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("spectrum must be a non-empty 1-D array")
    values = np.sort(values)[::-1]
    total = values.sum()
    if total <= 0:
        raise ValueError("spectrum has zero total variance (all vectors identical?)")
    if any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive, got {ks}")
    return {k: float(values[:k].sum() / total) for k in ks}


def anisotropy(x: Any, *, backend: str = "auto") -> float:
    """sigma_1^2 / sum_i sigma_i^2 of the centred rows of ``x``."""
    return top_k_shares(covariance_spectrum(x, backend=backend), (1,))[1]
