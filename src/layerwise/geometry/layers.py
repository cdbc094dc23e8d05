"""Per-layer anisotropy and TwoNN intrinsic dimension of hidden states, over batches.

Reproduces the measurements of Razzhigaev et al., "The Shape of Learning: Anisotropy and
Intrinsic Dimensions in Transformer-Based Models" (EACL 2024 Findings): a layer's vectors
are shuffled, cut into batches, and each metric is reported as mean and std over batches.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from layerwise.backend import asnumpy, get_array_module
from layerwise.geometry.spectrum import _as_matrix, _centred64, _check_fraction, _spectrum, top_k_shares
from layerwise.geometry.neighbours import DEFAULT_BLOCK_SIZE, DEFAULT_N_CANDIDATES, _two_nn
from layerwise.geometry.intrinsic import _fit_twonn

logger = logging.getLogger(__name__)

# n_duplicates: rows of a batch with an identical other row (r1 = 0), dropped from TwoNN but kept by
# anisotropy; duplicate_fraction: the same over the batch size; n_fallback: distinct rows whose
# neighbours the float32 shortlist could not certify and float64 recomputed (see neighbours._two_nn).
METRICS = ("anisotropy", "top5_share", "top10_share", "anisotropy_standardised", "twonn_id", "twonn_mle_id",
           "n_duplicates", "duplicate_fraction", "n_fallback")
TABLE_COLUMNS = ("layer", "metric", "mean", "std", "n_batches", "n_vectors")


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
    found = _two_nn(x, xp, block_size, n_candidates)
    linear = _fit_twonn(found.r1, found.r2, np, fraction, "linear")
    mle = _fit_twonn(found.r1, found.r2, np, fraction, "mle")
    return {
        "anisotropy": shares[1],
        "top5_share": shares[5],
        "top10_share": shares[10],
        "anisotropy_standardised": standardised_top,
        "twonn_id": linear.dimension,
        "twonn_mle_id": mle.dimension,
        "n_duplicates": float(found.n_duplicates),
        "duplicate_fraction": found.n_duplicates / int(x.shape[0]),
        "n_fallback": float(found.n_fallback),
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
