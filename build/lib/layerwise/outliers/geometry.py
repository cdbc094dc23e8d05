"""Study 3 with and without outlier tokens: anisotropy, TwoNN and the outliers' share of sigma_1^2.

Attribution recomputes the study-3 quantities without the outlier tokens (see :mod:`layerwise.outliers.detect`) and
measures the share of sigma_1^2 that the outliers carry: their squared projections on the first singular
direction of the centred batch, over sigma_1^2 (the sum of all rows' squared projections).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from layerwise.geometry import anisotropy, batch_indices, twonn
from layerwise.outliers.detect import (DEFAULT_K, DEFAULT_MASSIVE_ABSOLUTE, DEFAULT_MASSIVE_RELATIVE, as_matrix,
                                       massive_activations, norm_ratios, token_norms)

LAYER_COLUMNS = ("layer", "n_vectors", "n_batches", "median_norm", "mean_norm", "max_norm_ratio", "n_outliers",
                 "outlier_share", "median_abs", "max_abs", "n_massive", "n_massive_tokens", "massive_dims",
                 "anisotropy", "anisotropy_without", "sigma1_share", "twonn_id", "twonn_id_without")


def sigma1_share(x: Any, mask: np.ndarray) -> float:
    """Share of sigma_1^2 of the centred rows of ``x`` carried by the rows in ``mask``.

    sigma_1^2 = sum_i (c_i . v_1)^2 with c_i the centred rows and v_1 the first right singular vector,
    so the masked rows' terms over that sum is a share in [0, 1]; centring uses all rows.
    """
    x = as_matrix(x)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (x.shape[0],):
        raise ValueError(f"mask must have one entry per row ({x.shape[0]}), got shape {mask.shape}")
    if not mask.any():
        return 0.0
    centred = np.asarray(x, dtype=np.float64) - np.asarray(x, dtype=np.float64).mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    projection = (centred @ vectors[:, -1]) ** 2
    total = float(projection.sum())
    if total <= 0:
        raise ValueError("zero variance: all vectors identical")
    return float(projection[mask].sum() / total)


def batch_attribution(x: Any, mask: np.ndarray, *, twonn_kwargs: dict[str, Any] | None = None,
                      backend: str = "auto") -> dict[str, float]:
    """Anisotropy (and TwoNN when ``twonn_kwargs`` is given) of one batch with and without the rows in
    ``mask``, and the masked rows' share of sigma_1^2. Without outliers the two values are the same call."""
    x = as_matrix(x)
    mask = np.asarray(mask, dtype=bool)
    kept = x[~mask]
    if kept.shape[0] < 3:
        raise ValueError(f"only {kept.shape[0]} vectors left after removing {int(mask.sum())} outliers")
    with_all = anisotropy(x, backend=backend)
    out = {"anisotropy": with_all,
           "anisotropy_without": anisotropy(kept, backend=backend) if mask.any() else with_all,
           "sigma1_share": sigma1_share(x, mask)}
    if twonn_kwargs is not None:
        full = twonn(x, backend=backend, **twonn_kwargs).dimension
        out["twonn_id"] = full
        out["twonn_id_without"] = twonn(kept, backend=backend, **twonn_kwargs).dimension if mask.any() else full
    return out


def layer_outliers(x: Any, *, layer: Hashable, k: float = DEFAULT_K, absolute: float = DEFAULT_MASSIVE_ABSOLUTE,
                   relative: float = DEFAULT_MASSIVE_RELATIVE, batch_size: int = 4096, seed: int = 0,
                   twonn_kwargs: dict[str, Any] | None = None, backend: str = "auto"
                   ) -> tuple[dict[str, Any], np.ndarray, pd.DataFrame]:
    """One layer: (summary row with ``LAYER_COLUMNS``, norm ratio per row, massive-activation entries).

    Outliers are decided once per layer (k × the layer's median norm); anisotropy and TwoNN are then
    averaged over the same seeded batches as :func:`layerwise.geometry.layer_geometry` uses, so the
    "with all tokens" values are the study's own numbers.
    """
    x = as_matrix(x)
    ratios = norm_ratios(x)
    if k <= 1:
        raise ValueError(f"k must exceed 1 (a multiple of the median norm), got {k}")
    mask = ratios > k
    norms = token_norms(x)
    massive = massive_activations(x, absolute, relative)
    batches = batch_indices(x.shape[0], batch_size, np.random.default_rng(seed))
    per_batch = pd.DataFrame([batch_attribution(x[b], mask[b], twonn_kwargs=twonn_kwargs, backend=backend)
                              for b in batches]).mean()
    row = {
        "layer": layer, "n_vectors": int(x.shape[0]), "n_batches": len(batches),
        "median_norm": float(np.median(norms)), "mean_norm": float(norms.mean()),
        "max_norm_ratio": float(ratios.max()), "n_outliers": int(mask.sum()), "outlier_share": float(mask.mean()),
        "median_abs": float(np.median(np.abs(np.asarray(x, dtype=np.float64)))),
        "max_abs": float(np.abs(np.asarray(x, dtype=np.float64)).max()),
        "n_massive": len(massive), "n_massive_tokens": int(massive["row"].nunique()),
        "massive_dims": ";".join(str(d) for d in sorted(massive["dim"].unique())),
        "anisotropy": per_batch["anisotropy"], "anisotropy_without": per_batch["anisotropy_without"],
        "sigma1_share": per_batch["sigma1_share"],
        "twonn_id": per_batch.get("twonn_id", np.nan), "twonn_id_without": per_batch.get("twonn_id_without", np.nan),
    }
    return row, ratios, massive


def outlier_study(layers: dict[Hashable, Any], tokens: pd.DataFrame, *, k: float = DEFAULT_K,
                  **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`layer_outliers` over every layer.

    ``tokens`` describes the rows (columns text_index, position, token), in the layers' row order.
    Returns (per-layer table, outlier occurrences: one row per (layer, outlier token) with its norm
    ratio, massive entries: layer, row, dim, value with the token's text position and string).
    """
    if not layers:
        raise ValueError("no layers given")
    tokens = tokens.reset_index(drop=True)
    summary, occurrences, entries = [], [], []
    for layer, x in layers.items():
        if len(x) != len(tokens):
            raise ValueError(f"layer {layer}: {len(x)} vectors for {len(tokens)} token rows")
        row, ratios, massive = layer_outliers(x, layer=layer, k=k, **kwargs)
        summary.append(row)
        hit = np.flatnonzero(ratios > k)
        occurrences.append(tokens.iloc[hit][["text_index", "position", "token"]].assign(
            layer=layer, row=hit, norm_ratio=ratios[hit]))
        entries.append(massive.assign(layer=layer).join(tokens[["text_index", "position", "token"]], on="row"))
    return (pd.DataFrame(summary, columns=list(LAYER_COLUMNS)),
            pd.concat(occurrences, ignore_index=True), pd.concat(entries, ignore_index=True))
