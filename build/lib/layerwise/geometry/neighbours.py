"""The two nearest other rows of every row, exact: float32 distance tiles certified by their error
bound, float64 where the bound cannot certify, exact duplicates counted by row identity.

Every array operation goes through ``xp`` (NumPy or CuPy, see :mod:`layerwise.backend`), so the
one implementation runs on CPU and GPU and the NumPy tests cover the GPU code.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def _candidates(x: Any, mean: Any, xp: ModuleType, block_size: int, k: int) -> tuple[Any, Any, Any]:
    """The k nearest other rows of ``x`` by float32 squared distance: their float32 values and
    indices, (n, k) each, and the float64 squared norms of the centred rows, (n,).

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
    norms_sq = xp.empty(n, dtype=xp.float64)
    for s in range(0, n, block):
        rows = slice(s, min(s + block, n))
        centred = x[rows].astype(xp.float64)
        centred -= mean
        sq = xp.einsum("ij,ij->i", centred, centred)
        norms_sq[rows] = sq
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
    return best_val[:n], best_idx[:n], norms_sq


def _float32_error_factor(d: int) -> float:
    """c such that |computed - exact| <= c (|a| + |b|)^2 for a float32 tile entry of two centred rows.

    The entry is a (d + 2)-term float32 dot product whose absolute terms sum to (|a| + |b|)^2, so
    summation in any order errs by at most gamma_{d+2} = (d+2)u / (1 - (d+2)u) of that (Higham,
    Accuracy and Stability, Lemma 3.1 / 3.5); rounding the centred rows to float32 adds at most
    2u (|a| + |b|)^2 and rounding |a|^2 and |b|^2 another u each. A 1 % margin covers the float64
    centring and norms. u = 2^-24.
    """
    unit = 2.0**-24
    return 1.01 * ((d + 2) * unit / (1 - (d + 2) * unit) + 4 * unit)


def _float64_error_factor(d: int) -> float:
    """The same bound for a float64 GEMM of centred float64 rows (no input rounding). u = 2^-53."""
    unit = 2.0**-53
    return 1.01 * ((d + 2) * unit / (1 - (d + 2) * unit) + 2 * unit)


def _exact_two(x: Any, rows: Any, cand: Any, xp: ModuleType) -> tuple[Any, Any, Any]:
    """The two smallest float64 squared distances of ``rows`` to their candidate rows ``cand``
    (r, k), and the nearest's index: differences of the input rows cast to float64, not the GEMM
    identity, so nothing cancels and distinct rows never come out at distance 0."""
    diff = x[cand].astype(xp.float64)
    diff -= x[rows][:, None, :].astype(xp.float64)  # same-dtype subtract: faster
    sq = xp.einsum("ijk,ijk->ij", diff, diff)
    order = xp.argsort(sq, axis=1)[:, :2]
    two = xp.take_along_axis(sq, order, axis=1)
    return two[:, 0], two[:, 1], xp.take_along_axis(cand, order[:, :1], axis=1)[:, 0]


def _certified(d2: Any, kth: Any, norms_sq: Any, factor: float, xp: ModuleType) -> Any:
    """Rows whose two nearest are provably among the shortlist.

    A row j outside the shortlist has computed squared distance >= kth, so its exact one is
    >= kth - factor (|a| + |b_j|)^2. Rows with |b_j| >= |a| + sqrt(d2) lie at least sqrt(d2) away
    (triangle inequality); the others have (|a| + |b_j|)^2 < (2|a| + sqrt(d2))^2. So if
    d2 <= kth - factor (2|a| + sqrt(d2))^2, no outside row beats the shortlist's second best.
    """
    return d2 <= kth - factor * (2.0 * xp.sqrt(norms_sq) + xp.sqrt(d2)) ** 2


def _float64_rows(x: Any, mean: Any, norms_sq: Any, rows: Any, k: int, chunk: int, xp: ModuleType,
                  factor: float) -> tuple[Any, Any, Any]:
    """(d1, d2, nearest) for ``rows`` of ``x`` against every other row: a float64 GEMM shortlist of
    k on the centred rows, certified as above; rows it cannot certify are compared with every row
    by differences, which is exact."""
    n = x.shape[0]
    a = x.astype(xp.float64)
    a -= mean
    d1 = xp.empty(rows.shape[0], dtype=xp.float64)
    d2 = xp.empty_like(d1)
    near = xp.empty(rows.shape[0], dtype=xp.int64)
    for s in range(0, rows.shape[0], chunk):
        r = rows[s : s + chunk]
        tile = norms_sq[r][:, None] + norms_sq[None, :] - 2.0 * (a[r] @ a.T)
        tile[xp.arange(r.shape[0]), r] = xp.inf
        cand = xp.argpartition(tile, k - 1, axis=1)[:, :k]
        kth = xp.take_along_axis(tile, cand, axis=1).max(axis=1)
        e1, e2, nn = _exact_two(x, r, cand, xp)
        if k < n - 1:
            brute = xp.flatnonzero(~_certified(e2, kth, norms_sq[r], factor, xp))
            for b in asnumpy(brute).tolist():
                others = xp.concatenate([xp.arange(r[b]), xp.arange(r[b] + 1, n)])
                e1[b], e2[b], nn[b] = (v[0] for v in _exact_two(x, r[b : b + 1], others[None, :], xp))
        d1[s : s + chunk], d2[s : s + chunk], near[s : s + chunk] = e1, e2, nn
    return d1, d2, near


@dataclass(frozen=True)
class Neighbours:
    """Exact first and second nearest-neighbour distances of every row, and how they were found."""

    r1: np.ndarray  # float64, distance to the nearest other row (0 for an exact duplicate)
    r2: np.ndarray  # float64, distance to the second nearest other row
    n_duplicates: int  # rows with an identical other row (r1 == 0), counted by exact row identity
    n_fallback: int  # distinct rows the float32 shortlist could not certify, recomputed in float64
    # The same two distances among the distinct rows only (one copy of each vector kept, as the TwoNN
    # literature does); n_merged = rows - distinct rows, the copies set aside.
    distinct_r1: np.ndarray | None = None
    distinct_r2: np.ndarray | None = None
    n_merged: int = 0
    distinct_index: np.ndarray | None = None  # row index of the first copy of each distinct row


_HASH_ROWS = 1024  # rows hashed at a time: bounds the uint64 temporary


def _hash_multipliers(d: int) -> np.ndarray:
    """One fixed odd 64-bit multiplier per word (odd: multiplication is then a bijection mod 2^64)."""
    return np.random.default_rng(0).integers(0, 2**63, size=d, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def _row_bits(x: Any) -> np.ndarray:
    """The rows' bit patterns as unsigned integers, equal exactly when the values are: a float
    -0.0 is rewritten as +0.0 (only when one occurs, so the usual case copies nothing)."""
    host = np.ascontiguousarray(asnumpy(x))
    bits = host.view(np.dtype(f"u{host.dtype.itemsize}"))
    if host.dtype.kind == "f":
        negative_zero = bits.dtype.type(1 << (8 * host.dtype.itemsize - 1))
        if (bits == negative_zero).any():
            bits = np.where(bits == negative_zero, bits.dtype.type(0), bits)
    return bits


def _distinct_rows(x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact duplicates by row identity, before any distance: (first index of each distinct row,
    group of every row, group sizes).

    Each row's bits, read as 64-bit words where the row length allows, are hashed (a fixed odd
    multiplier per word, summed modulo 2^64); rows sharing a hash are then compared in full with
    the first of their group, and a collision (distinct rows, one hash) falls back to sorting the
    rows' bytes. So equal values always share a group and different values never do.
    """
    bits = _row_bits(x)
    n, d = bits.shape
    words = bits.view(np.uint64) if (bits.itemsize * d) % 8 == 0 else bits
    multipliers = _hash_multipliers(words.shape[1])
    hashes = np.empty(n, dtype=np.uint64)
    for s in range(0, n, _HASH_ROWS):
        block = words[s : s + _HASH_ROWS].astype(np.uint64)
        block *= multipliers  # wraps modulo 2^64, as intended
        hashes[s : s + _HASH_ROWS] = block.sum(axis=1, dtype=np.uint64)
    _, first, group, counts = np.unique(hashes, return_index=True, return_inverse=True, return_counts=True)
    group = group.ravel()
    shared = np.flatnonzero(counts[group] > 1)
    if shared.size and not np.array_equal(bits[shared], bits[first[group[shared]]]):
        keys = np.ascontiguousarray(bits).view(np.dtype((np.void, bits.itemsize * d))).ravel()
        _, first, group, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        group = group.ravel()
    return first, group, counts


def _two_nn(x: Any, xp: ModuleType, block_size: int, n_candidates: int) -> Neighbours:
    """First and second nearest-neighbour distances of each row of ``x``, equal to a float64 brute
    force for every row.

    Exact duplicates are found first by row identity and set aside: the search runs on distinct
    rows, and a row's multiplicity then gives its zeros. On distinct rows, float32 tiles shortlist
    ``n_candidates`` neighbours, their distances are recomputed in float64 by differences, and the
    float32 error bound of each entry (:func:`_certified`) decides per row whether the shortlist
    provably holds the two nearest; rows it cannot certify (points far from the mean relative to
    their neighbour gaps, as with massive activations) are recomputed against all rows in float64.
    """
    n, d = x.shape
    _column_mean(x, xp)  # rejects NaN and inf before rows are compared as bytes
    first, group, counts = _distinct_rows(x)
    m = counts[group]  # multiplicity of each row
    u = first.size
    r1 = np.zeros(n)
    r2 = np.zeros(n)
    n_fallback = 0
    distinct_r1 = distinct_r2 = None
    if u >= 2:
        reps = x[xp.asarray(first)]
        k = min(n_candidates, u - 1)
        mean = _column_mean(reps, xp)
        val, idx, norms_sq = _candidates(reps, mean, xp, block_size, k)
        chunk = max(1, block_size * block_size // (2 * k * d))  # float64 chunk * k * d = one float32 tile
        d1 = xp.empty(u, dtype=xp.float64)
        d2 = xp.full(u, xp.inf)
        near = xp.empty(u, dtype=xp.int64)
        for s in range(0, u, chunk):
            rows = xp.arange(s, min(s + chunk, u))
            if k == 1:  # two distinct rows: each is the other's only neighbour
                diff = reps[idx[rows, 0]].astype(xp.float64) - reps[rows].astype(xp.float64)
                d1[rows], near[rows] = xp.einsum("ij,ij->i", diff, diff), idx[rows, 0]
            else:
                d1[rows], d2[rows], near[rows] = _exact_two(reps, rows, idx[rows], xp)
        if k < u - 1:
            kth = val.max(axis=1).astype(xp.float64)
            redo = xp.flatnonzero(~_certified(d2, kth, norms_sq, _float32_error_factor(d), xp))
            n_fallback = int(redo.size)
            if n_fallback:
                rows_chunk = max(1, block_size * block_size // (2 * u))  # float64 rows * u = one tile
                d1[redo], d2[redo], near[redo] = _float64_rows(reps, mean, norms_sq, redo, k, rows_chunk, xp,
                                                               _float64_error_factor(d))
        d1, d2, near = (asnumpy(v) for v in (xp.sqrt(d1), xp.sqrt(d2), near))
        alone = m == 1
        r1[alone] = d1[group[alone]]
        # second nearest: a copy of oneself (m >= 3), else the nearest distinct row, reached twice
        # when this row has one copy or the nearest has copies, else the second distinct row
        twice = (m == 2) | (alone & (counts[near[group]] >= 2))
        r2[twice] = d1[group[twice]]
        once = alone & ~twice
        r2[once] = d2[group[once]]
        distinct_r1, distinct_r2 = d1, d2  # d2 is inf when only two distinct rows exist
    return Neighbours(r1=r1, r2=r2, n_duplicates=int((m >= 2).sum()), n_fallback=n_fallback,
                      distinct_r1=distinct_r1, distinct_r2=distinct_r2, n_merged=int(n - u), distinct_index=first)


def two_nearest_neighbour_distances(
    x: Any,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    n_candidates: int = DEFAULT_N_CANDIDATES,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """(r1, r2): Euclidean distances of each row to its two nearest other rows, equal to a float64
    brute force for every row (exact duplicates give r1 = 0; see :func:`_two_nn`)."""
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    if n_candidates < 2:
        raise ValueError(f"n_candidates must be at least 2, got {n_candidates}")
    xp = get_array_module(backend)
    found = _two_nn(_as_matrix(x, xp, min_rows=3), xp, block_size, n_candidates)
    return found.r1, found.r2
