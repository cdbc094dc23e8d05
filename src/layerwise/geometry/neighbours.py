"""The two nearest other rows of every row: float32 distance tiles, float64 distances.

Every array operation goes through ``xp`` (NumPy or CuPy, see :mod:`layerwise.backend`), so the
one implementation runs on CPU and GPU and the NumPy tests cover the GPU code.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from layerwise.backend import asnumpy, get_array_module
from layerwise.geometry.spectrum import _as_matrix, _column_mean

DEFAULT_BLOCK_SIZE = 2048
DEFAULT_N_CANDIDATES = 8
# Block sizes are kept multiples of this; the rows of a diagonal tile are cut into this many
# strided groups before partitioning (see _k_smallest_per_column).
_GROUP = 16


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
