"""Fused per-row statistics of one layer's logits for the logit lens (numba, CPU).

Why a kernel: after the unembedding matmul, the lens needs per position the top-1, three ranks and the
two KL cross terms. As separate torch ops these were ~10 passes over each [positions x vocab] array
(each comparison and product written out, then summed) and cost ~40% on top of forward + unembedding;
here they are two passes that only read, parallel over positions. Float sums accumulate in float64
(in 4 lanes, so the loops vectorise), which is more accurate than the float32 sums they replace.
"""

from __future__ import annotations

import numba
import numpy as np

_LANES = 4


@numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def row_stats(logits: np.ndarray, targets: np.ndarray, references: np.ndarray, top1_id: np.ndarray,
              top1_logit: np.ndarray, ranks: np.ndarray, cross: np.ndarray) -> None:
    """For each row r of `logits` [n, V] (float32): argmax (first of ties) and max; `ranks[r, k]` =
    #{v : logits[r, v] >= logits[r, targets[r, k]]} (ties count against the token); `cross[r, j]` =
    sum_v references[r, j, v] * (logits[r, v] - max) in float64. Outputs are filled in place."""
    n, vocab = logits.shape
    n_targets, n_refs = targets.shape[1], references.shape[1]
    for r in numba.prange(n):
        row = logits[r]
        best, best_at = row[0], 0
        for v in range(1, vocab):
            if row[v] > best:
                best, best_at = row[v], v
        top1_id[r], top1_logit[r] = best_at, best
        for k in range(n_targets):
            threshold = row[targets[r, k]]
            count = 0
            for v in range(vocab):
                count += row[v] >= threshold
            ranks[r, k] = count
        for j in range(n_refs):
            p = references[r, j]
            acc = np.zeros(_LANES)
            stop = vocab - vocab % _LANES
            for v in range(0, stop, _LANES):
                for lane in range(_LANES):
                    acc[lane] += np.float64(p[v + lane]) * (np.float64(row[v + lane]) - best)
            total = acc.sum()
            for v in range(stop, vocab):
                total += np.float64(p[v]) * (np.float64(row[v]) - best)
            cross[r, j] = total
