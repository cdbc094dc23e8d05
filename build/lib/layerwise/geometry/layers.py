"""Per-layer anisotropy and TwoNN intrinsic dimension of hidden states, over batches.

Reproduces the measurements of Razzhigaev et al., "The Shape of Learning: Anisotropy and
Intrinsic Dimensions in Transformer-Based Models" (EACL 2024 Findings): a layer's vectors
are shuffled, cut into batches, and each metric is reported as mean and std over batches.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from layerwise.backend import asnumpy, get_array_module
from layerwise.geometry.spectrum import _as_matrix, _centred64, _check_fraction, _spectrum, top_k_shares
from layerwise.geometry.neighbours import DEFAULT_BLOCK_SIZE, DEFAULT_N_CANDIDATES, _two_nn
from layerwise.geometry.intrinsic import twonn_from_neighbours
from layerwise.outliers.detect import outlier_mask

logger = logging.getLogger(__name__)

# n_duplicates: rows of a batch with an identical other row (r1 = 0); duplicate_fraction: the same over the
# batch size; n_merged: copies set aside so that TwoNN sees one copy of each vector (anisotropy keeps them
# all); n_fallback: distinct rows whose neighbours the float32 shortlist could not certify and float64
# recomputed (see neighbours._two_nn).
METRICS = ("anisotropy", "top5_share", "top10_share", "anisotropy_standardised", "twonn_id", "twonn_mle_id",
           "n_duplicates", "duplicate_fraction", "n_merged", "n_fallback")
# With an outlier threshold k (norm > k x the layer's median norm): anisotropy of the batch without its
# outlier tokens, the outliers' share of the batch's sigma_1^2, and how many there are.
OUTLIER_METRICS = ("anisotropy_without_outliers", "outlier_sigma1_share", "n_outliers")
SPECTRUM_METRICS = ("anisotropy", "top5_share", "top10_share", "anisotropy_standardised")
TABLE_COLUMNS = ("layer", "metric", "mean", "std", "n_batches", "n_vectors")
BATCH_COLUMNS = ("layer", "batch", "batch_size")


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


def _top_direction_share(centred: Any, mask: np.ndarray, xp: ModuleType) -> float:
    """Share of sigma_1^2 of a centred batch carried by the rows in ``mask``: sum over those rows of
    (c_i . v_1)^2 over the sum over all rows, v_1 the top eigenvector of the covariance."""
    if not mask.any():
        return 0.0
    _, vectors = xp.linalg.eigh(centred.T @ centred)
    projection = asnumpy((centred @ vectors[:, -1]) ** 2)
    total = float(projection.sum())
    return float(projection[mask].sum() / total) if total > 0 else float("nan")


def _batch_metrics(
    x: Any, xp: ModuleType, fraction: float, block_size: int, n_candidates: int,
    outliers: np.ndarray | None = None, with_twonn: bool = True,
    removals: Mapping[str, np.ndarray] | None = None,
) -> dict[str, float]:
    centred = _centred64(x, xp)
    shares = top_k_shares(asnumpy(_spectrum(centred, xp)), (1, 5, 10))
    # A few outlier dimensions dominate the raw spectrum; on z-scored dimensions (the correlation
    # matrix) anisotropy measures shared direction rather than one dimension's scale.
    scale = xp.sqrt((centred**2).mean(axis=0))
    standardised = centred / xp.where(scale > 0, scale, 1.0)
    standardised_top = top_k_shares(asnumpy(_spectrum(standardised, xp)), (1,))[1]
    out = {
        "anisotropy": shares[1],
        "top5_share": shares[5],
        "top10_share": shares[10],
        "anisotropy_standardised": standardised_top,
    }
    if with_twonn:
        found = _two_nn(x, xp, block_size, n_candidates)
        n = int(x.shape[0])
        out.update({
            "twonn_id": twonn_from_neighbours(found, n, fraction=fraction, estimator="linear").dimension,
            "twonn_mle_id": twonn_from_neighbours(found, n, fraction=fraction, estimator="mle").dimension,
            "n_duplicates": float(found.n_duplicates),
            "duplicate_fraction": found.n_duplicates / n,
            "n_merged": float(found.n_merged),
            "n_fallback": float(found.n_fallback),
        })
    if outliers is not None:
        kept = x[xp.asarray(np.flatnonzero(~outliers))]
        if not outliers.any():
            out["anisotropy_without_outliers"] = shares[1]
        elif int(kept.shape[0]) >= 3:
            out["anisotropy_without_outliers"] = top_k_shares(asnumpy(_spectrum(_centred64(kept, xp), xp)), (1,))[1]
        else:  # (almost) the whole batch is outliers: nothing left to measure
            out["anisotropy_without_outliers"] = float("nan")
        out["outlier_sigma1_share"] = _top_direction_share(centred, outliers, xp)
        out["n_outliers"] = float(outliers.sum())
    for name, removed in (removals or {}).items():  # the sensitivity sweep: other thresholds, top-m by norm
        kept = x[xp.asarray(np.flatnonzero(~removed))]
        out[name] = (shares[1] if not removed.any() else
                     top_k_shares(asnumpy(_spectrum(_centred64(kept, xp), xp)), (1,))[1] if int(kept.shape[0]) >= 3
                     else float("nan"))
    return out


def removal_masks(vectors: Any, *, k_sweep: Sequence[float] = (), top_m: Sequence[int] = ()) -> dict[str, np.ndarray]:
    """Rows to remove for each setting of the outlier sensitivity sweep, over the whole layer:
    ``anisotropy_without_k{k}`` (norm > k x the layer's median norm) and ``anisotropy_without_top{m}`` (the m
    rows of largest norm). Column names are the metric names of :func:`layer_batches`."""
    from layerwise.outliers.detect import token_norms

    masks = {f"anisotropy_without_k{k:g}": outlier_mask(vectors, k) for k in k_sweep}
    if top_m:
        norms = token_norms(vectors)
        order = np.argsort(-norms, kind="stable")
        for m in top_m:
            mask = np.zeros(norms.shape[0], dtype=bool)
            mask[order[:m]] = True
            masks[f"anisotropy_without_top{m}"] = mask
    return masks


def layer_batches(
    vectors: Any,
    *,
    layer: Hashable,
    batch_size: int = 4096,
    seed: int | np.random.Generator = 0,
    fraction: float = 0.9,
    block_size: int = DEFAULT_BLOCK_SIZE,
    n_candidates: int = DEFAULT_N_CANDIDATES,
    backend: str = "auto",
    outlier_k: float | None = None,
    with_twonn: bool = True,
    k_sweep: Sequence[float] = (),
    top_m: Sequence[int] = (),
) -> pd.DataFrame:
    """Every metric of every batch of one layer: one row per batch (``BATCH_COLUMNS`` then the metrics).

    The source averages over batches; kept per batch, a reader sees when one batch carries a layer (one
    outlier token can set sigma_1 of its batch alone). With ``outlier_k``, the outlier tokens (norm above
    k x the layer's median norm, over the whole layer) are also removed per batch. ``with_twonn=False``
    skips the neighbour search (the spectrum metrics only, for cheap variants). ``k_sweep`` and ``top_m`` add
    anisotropy without the tokens each threshold (or the m largest norms) marks, per batch
    (:func:`removal_masks`). An integer seed gives the
    same shuffle to every layer with the same number of vectors, so the same tokens share a batch at
    every depth.
    """
    _check_fraction(fraction)
    xp = get_array_module(backend)
    device_vectors = _as_matrix(vectors, xp, min_rows=3)
    n = int(device_vectors.shape[0])
    batches = batch_indices(n, batch_size, np.random.default_rng(seed))
    if n < batch_size:
        logger.warning("layer %s: %d vectors < batch_size %d; using one batch", layer, n, batch_size)
    host = asnumpy(vectors)
    mask = outlier_mask(host, outlier_k) if outlier_k is not None else None
    sweep = removal_masks(host, k_sweep=k_sweep, top_m=top_m) if (k_sweep or top_m) else {}
    rows = []
    for b, batch in enumerate(batches):
        metrics = _batch_metrics(device_vectors[xp.asarray(batch)], xp, fraction, block_size, n_candidates,
                                 None if mask is None else mask[batch], with_twonn,
                                 {name: m[batch] for name, m in sweep.items()})
        rows.append({"layer": layer, "batch": b, "batch_size": len(batch), **metrics})
    return pd.DataFrame(rows)


def aggregate_batches(per_batch: pd.DataFrame) -> pd.DataFrame:
    """The per-batch rows of one layer as the source reports them: mean and std over batches per metric
    (``TABLE_COLUMNS``; std is the sample std, NaN with a single batch)."""
    metrics = [c for c in per_batch.columns if c not in BATCH_COLUMNS]
    values = per_batch[metrics]
    return pd.DataFrame(
        {
            "layer": [per_batch["layer"].iloc[0]] * len(metrics),
            "metric": metrics,
            "mean": values.mean().to_numpy(),
            "std": values.std(ddof=1).to_numpy(),
            "n_batches": len(per_batch),
            "n_vectors": int(per_batch["batch_size"].sum()),
        },
        columns=list(TABLE_COLUMNS),
    )


def layer_geometry(vectors: Any, *, layer: Hashable, **kwargs: Any) -> pd.DataFrame:
    """Per-batch anisotropy and TwoNN ID of one layer's vectors, as mean and std over batches.

    Returns a tidy table with columns ``TABLE_COLUMNS``, one row per metric in ``METRICS`` (and
    ``OUTLIER_METRICS`` with ``outlier_k``); keyword arguments as :func:`layer_batches`.
    """
    return aggregate_batches(layer_batches(vectors, layer=layer, **kwargs))


def batch_table(layers: Mapping[Hashable, Any], **kwargs: Any) -> pd.DataFrame:
    """:func:`layer_batches` of each (label, vectors) of ``layers``, stacked: one row per (layer, batch)."""
    if not layers:
        raise ValueError("no layers given")
    return pd.concat([layer_batches(vectors, layer=label, **kwargs) for label, vectors in layers.items()],
                     ignore_index=True)


def aggregate_batch_table(per_batch: pd.DataFrame) -> pd.DataFrame:
    """:func:`aggregate_batches` per layer of a :func:`batch_table`, in the order the layers appear."""
    return pd.concat([aggregate_batches(rows) for _, rows in per_batch.groupby("layer", sort=False)],
                     ignore_index=True)


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
