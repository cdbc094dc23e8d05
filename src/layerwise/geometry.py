"""Anisotropy and TwoNN intrinsic dimension of hidden states, per layer.

Reproduces the measurements of Razzhigaev et al., "The Shape of Learning: Anisotropy and
Intrinsic Dimensions in Transformer-Based Models" (EACL 2024 Findings): a layer's vectors
are shuffled, cut into batches, and each metric is reported as mean and std over batches.

Every array operation goes through ``xp`` (NumPy or CuPy, see :mod:`layerwise.backend`),
so the one implementation runs on CPU and GPU and the NumPy tests cover the GPU code.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from layerwise.backend import asnumpy, get_array_module

logger = logging.getLogger(__name__)

ESTIMATORS = ("linear", "mle")
METRICS = ("anisotropy", "top5_share", "top10_share", "anisotropy_standardised", "twonn_id", "twonn_mle_id",
           "n_duplicates")
TABLE_COLUMNS = ("layer", "metric", "mean", "std", "n_batches", "n_vectors")
DEFAULT_BLOCK_SIZE = 2048
DEFAULT_N_CANDIDATES = 8
# Block sizes are kept multiples of this; the rows of a diagonal tile are cut into this many
# strided groups before partitioning (see _k_smallest_per_column).
_GROUP = 16


@dataclass(frozen=True)
class TwoNNResult:
    """A TwoNN estimate together with what it was computed from."""

    dimension: float
    n_points: int  # points given, duplicates included
    n_used: int  # ratios entering the estimate
    n_duplicates: int  # points with r1 == 0, dropped
    fraction: float  # share of the smallest ratios fitted (always 1.0 for the MLE)
    estimator: str  # "linear" or "mle"


# --------------------------------------------------------------------------- inputs


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


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")


# --------------------------------------------------------------------------- anisotropy


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


# --------------------------------------------------------------------------- nearest neighbours


def _k_smallest_per_column(tile: Any, k: int, xp: ModuleType) -> tuple[Any, Any]:
    """Values and row positions of the k smallest entries of each column of ``tile``, (cols, k).

    A full argpartition costs about as much per entry as the GEMM that made the tile, so the
    rows are first cut into _GROUP strided groups, whose minima are one elementwise min over
    contiguous rows; a column's k smallest entries all lie in its k groups with the smallest
    minima, and only those k * _GROUP members are partitioned. Exact for the tile's values.
    """
    height, cols = tile.shape
    m = height // _GROUP  # heights are multiples of _GROUP
    if m <= k:  # too few groups to gain anything
        if height <= k:
            positions = xp.broadcast_to(xp.arange(height), (cols, height))
        else:
            positions = xp.argpartition(tile.T, k - 1, axis=1)[:, :k]
        return xp.take_along_axis(tile.T, positions, axis=1), positions
    group_min = tile.reshape(_GROUP, m, cols).min(axis=0).T
    groups = xp.argpartition(group_min, k - 1, axis=1)[:, :k]
    members = (groups[:, :, None] + m * xp.arange(_GROUP)[None, None, :]).reshape(cols, k * _GROUP)
    flat = members * cols + xp.arange(cols)[:, None]
    values = xp.take(tile.reshape(-1), flat)  # flat take: cheaper than 2-D fancy indexing
    best = xp.argpartition(values, k - 1, axis=1)[:, :k]
    return xp.take_along_axis(values, best, axis=1), xp.take_along_axis(members, best, axis=1)


def _fold_below_threshold(
    tile: Any, rows: slice, cols: slice, axis: int, best_val: Any, best_idx: Any, k: int, xp: ModuleType
) -> None:
    """Merge into the running k best of the tile's rows (axis=1) or columns (axis=0) the entries
    that beat that point's current k-th best.

    Once every point has seen its own block only about k entries per line and tile do, so a
    comparison pass and a short ragged merge replace a selection over the whole tile.
    """
    points, offset = (rows, cols.start) if axis == 1 else (cols, rows.start)
    threshold = best_val[points].max(axis=1)
    flat = xp.flatnonzero(tile < (threshold[:, None] if axis == 1 else threshold[None, :]))
    if flat.size == 0:
        return
    values = tile.reshape(-1)[flat]
    r, c = xp.divmod(flat, tile.shape[1])  # 2-D nonzero is several times slower
    line, pos = (r, c) if axis == 1 else (c, r)
    if axis == 0:  # nonzero is row-major: regroup by column
        order = xp.argsort(line)
        line, pos, values = line[order], pos[order], values[order]
    counts = xp.bincount(line, minlength=points.stop - points.start)
    slot = xp.arange(line.size) - (xp.cumsum(counts) - counts)[line]
    shape = (counts.size, int(counts.max()))
    new_val = xp.full(shape, xp.inf, dtype=best_val.dtype)
    new_idx = xp.zeros(shape, dtype=best_idx.dtype)
    new_val[line, slot] = values
    new_idx[line, slot] = pos + offset
    _merge(best_val, best_idx, points, new_val, new_idx, k, xp)


def _merge(best_val: Any, best_idx: Any, rows: slice, val: Any, idx: Any, k: int, xp: ModuleType) -> None:
    """Fold new candidates into the running k best of ``rows`` (in place)."""
    v = xp.concatenate([best_val[rows], val], axis=1)
    i = xp.concatenate([best_idx[rows], idx], axis=1)
    keep = xp.argpartition(v, k - 1, axis=1)[:, :k]
    best_val[rows] = xp.take_along_axis(v, keep, axis=1)
    best_idx[rows] = xp.take_along_axis(i, keep, axis=1)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _candidates(x: Any, mean: Any, xp: ModuleType, block_size: int, k: int) -> Any:
    """Indices of the k nearest other rows of ``x`` by float32 squared distance, (n, k).

    Squared distances come from one GEMM per tile of augmented, centred rows,
    [-2a, |a|^2, 1] . [b, 1, |b|^2] = |a - b|^2, so no elementwise pass builds the tile;
    centring (in float64, a block at a time) shrinks the norms the float32 product has to
    cancel. Only tiles on or above the diagonal are computed: an off-diagonal tile's rows
    give candidates for one block and its columns for the other, halving the flops. Memory is
    one block_size^2 tile plus O(n d) float32, never n^2. Rows are padded to a multiple of
    _GROUP with masked phantom points.
    """
    n, d = x.shape
    n_pad = _round_up(n, _GROUP)
    block = min(max(_GROUP, block_size - block_size % _GROUP), n_pad)
    right = xp.zeros((n_pad, d + 2), dtype=xp.float32)
    left = xp.zeros((n_pad, d + 2), dtype=xp.float32)
    for s in range(0, n, block):
        rows = slice(s, min(s + block, n))
        centred = x[rows].astype(xp.float64)
        centred -= mean
        sq = xp.einsum("ij,ij->i", centred, centred)
        right[rows, :d] = centred
        right[rows, d] = 1.0
        right[rows, d + 1] = sq
        left[rows, d] = sq
        left[rows, d + 1] = 1.0
    if float(right[:, d + 1].max()) > 1e36:  # |a|^2 and the GEMM must stay finite in float32
        raise ValueError("vectors too large for float32 distances: rescale them")
    xp.multiply(right[:n, :d], -2.0, out=left[:n, :d])  # exact in float32

    best_val = xp.full((n_pad, k), xp.inf, dtype=xp.float32)
    best_idx = xp.zeros((n_pad, k), dtype=xp.int64)
    blocks = [slice(s, min(s + block, n_pad)) for s in range(0, n_pad, block)]
    buffer = xp.empty(block * block, dtype=xp.float32)  # reused: no fresh pages per tile

    def tile_of(rows: slice, cols: slice) -> Any:
        tile = buffer[: (rows.stop - rows.start) * (cols.stop - cols.start)]
        tile = tile.reshape(rows.stop - rows.start, cols.stop - cols.start)
        return xp.matmul(left[rows], right[cols].T, out=tile)

    for b in blocks:  # diagonal tiles first: every point then has a finite k-th best
        tile = tile_of(b, b)
        diag = xp.arange(tile.shape[0])
        tile[diag, diag] = xp.inf
        if b.stop > n:  # phantom points, only in the last block
            tile[:, n - b.start :] = xp.inf
            tile[n - b.start :, :] = xp.inf
        val, pos = _k_smallest_per_column(tile, k, xp)  # symmetric tile: columns serve its points
        _merge(best_val, best_idx, b, val, pos + b.start, k, xp)
    for bi, rows in enumerate(blocks):
        for cols in blocks[bi + 1 :]:
            tile = tile_of(rows, cols)
            if cols.stop > n:
                tile[:, n - cols.start :] = xp.inf
            _fold_below_threshold(tile, rows, cols, 1, best_val, best_idx, k, xp)
            _fold_below_threshold(tile, rows, cols, 0, best_val, best_idx, k, xp)
    return best_idx[:n]


def _two_nn(x: Any, xp: ModuleType, block_size: int, n_candidates: int) -> tuple[Any, Any]:
    """Float64 distances of each row of ``x`` to its first and second nearest other rows.

    float32 distances only shortlist ``n_candidates`` neighbours; their distances are then
    recomputed as ||x_i - x_j|| from the input values in float64, in chunks of one tile's size.
    """
    n, d = x.shape
    k = min(n_candidates, n - 1)
    idx = _candidates(x, _column_mean(x, xp), xp, block_size, k)
    sq_dist = xp.empty((n, k), dtype=xp.float64)
    chunk = max(1, block_size * block_size // (2 * k * d))  # float64 chunk * k * d = one float32 tile
    for s in range(0, n, chunk):
        diff = x[idx[s : s + chunk]].astype(xp.float64)
        diff -= x[s : s + chunk, None, :].astype(xp.float64)  # same-dtype subtract: faster
        sq_dist[s : s + chunk] = xp.einsum("ijk,ijk->ij", diff, diff)
    sq_dist.sort(axis=1)
    return xp.sqrt(sq_dist[:, 0]), xp.sqrt(sq_dist[:, 1])


def two_nearest_neighbour_distances(
    x: Any,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    n_candidates: int = DEFAULT_N_CANDIDATES,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """(r1, r2): float64 Euclidean distances of each row to its two nearest other rows."""
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    if n_candidates < 2:
        raise ValueError(f"n_candidates must be at least 2, got {n_candidates}")
    xp = get_array_module(backend)
    r1, r2 = _two_nn(_as_matrix(x, xp, min_rows=3), xp, block_size, n_candidates)
    return asnumpy(r1), asnumpy(r2)


# --------------------------------------------------------------------------- TwoNN


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


# --------------------------------------------------------------------------- per-layer driver


def batch_indices(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle range(n) and cut it into batches of at least ``batch_size`` indices.

    The remainder joins the last batch, so no batch is smaller than batch_size; with fewer
    than batch_size vectors there is a single batch of all of them.
    """
    if batch_size < 3:
        raise ValueError(f"batch_size must be at least 3, got {batch_size}")
    if n < 3:
        raise ValueError(f"need at least 3 vectors, got {n}")
    order = rng.permutation(n)
    n_batches = max(1, n // batch_size)
    bounds = [b * batch_size for b in range(n_batches)] + [n]
    return [order[bounds[b] : bounds[b + 1]] for b in range(n_batches)]


def _batch_metrics(
    x: Any, xp: ModuleType, fraction: float, block_size: int, n_candidates: int
) -> dict[str, float]:
    centred = _centred64(x, xp)
    shares = top_k_shares(asnumpy(_spectrum(centred, xp)), (1, 5, 10))
    # A few outlier dimensions dominate the raw spectrum; on z-scored dimensions (the correlation
    # matrix) anisotropy measures shared direction rather than one dimension's scale.
    scale = xp.sqrt((centred**2).mean(axis=0))
    standardised = centred / xp.where(scale > 0, scale, 1.0)
    standardised_top = top_k_shares(asnumpy(_spectrum(standardised, xp)), (1,))[1]
    r1, r2 = _two_nn(x, xp, block_size, n_candidates)
    linear = _fit_twonn(r1, r2, xp, fraction, "linear")
    mle = _fit_twonn(r1, r2, xp, fraction, "mle")
    return {
        "anisotropy": shares[1],
        "top5_share": shares[5],
        "top10_share": shares[10],
        "anisotropy_standardised": standardised_top,
        "twonn_id": linear.dimension,
        "twonn_mle_id": mle.dimension,
        "n_duplicates": float(linear.n_duplicates),
    }


def layer_geometry(
    vectors: Any,
    *,
    layer: Hashable,
    batch_size: int = 4096,
    seed: int | np.random.Generator = 0,
    fraction: float = 0.9,
    block_size: int = DEFAULT_BLOCK_SIZE,
    n_candidates: int = DEFAULT_N_CANDIDATES,
    backend: str = "auto",
) -> pd.DataFrame:
    """Per-batch anisotropy and TwoNN ID of one layer's vectors, as mean and std over batches.

    Returns a tidy table with columns ``TABLE_COLUMNS``, one row per metric in ``METRICS``;
    std is the sample std over batches (NaN with a single batch). An integer seed gives
    the same shuffle to every layer with the same number of vectors, so the same tokens
    share a batch at every depth.
    """
    _check_fraction(fraction)
    xp = get_array_module(backend)
    device_vectors = _as_matrix(vectors, xp, min_rows=3)
    n = int(device_vectors.shape[0])
    batches = batch_indices(n, batch_size, np.random.default_rng(seed))
    if n < batch_size:
        logger.warning("layer %s: %d vectors < batch_size %d; using one batch", layer, n, batch_size)
    rows = [
        _batch_metrics(device_vectors[xp.asarray(batch)], xp, fraction, block_size, n_candidates)
        for batch in batches
    ]
    per_batch = pd.DataFrame(rows, columns=list(METRICS))
    return pd.DataFrame(
        {
            "layer": [layer] * len(METRICS),
            "metric": list(METRICS),
            "mean": per_batch.mean().to_numpy(),
            "std": per_batch.std(ddof=1).to_numpy(),
            "n_batches": len(batches),
            "n_vectors": n,
        },
        columns=list(TABLE_COLUMNS),
    )


def geometry_table(layers: Mapping[Hashable, Any], **kwargs: Any) -> pd.DataFrame:
    """``layer_geometry`` for each (label, vectors) of ``layers``, stacked into one table.

    Give labels of one type (layer indices; the post-norm "final_norm" in a table of its
    own): Parquet stores one type per column.
    """
    if not layers:
        raise ValueError("no layers given")
    return pd.concat(
        [layer_geometry(vectors, layer=label, **kwargs) for label, vectors in layers.items()],
        ignore_index=True,
    )
