"""Study 1 under outlier control: does the layer probe need the outlier tokens, and are the dimensions it
relies on the massive-activation dimensions?

Uses only the public functions of :mod:`layerwise.probes` (split, fit, attribution), so the probe here is
the study's reference probe; the only change is which rows enter train and test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from layerwise.outliers.detect import massive_activations, norm_ratios
from layerwise.probes import attribution_table, fit_probe, frequent_top_dimensions, make_probe, split_by_text


def outlier_rows(X: np.ndarray, y: np.ndarray, k: float) -> np.ndarray:
    """True for rows whose norm exceeds ``k`` × the median norm of their own layer (label ``y``)."""
    if k <= 1:
        raise ValueError(f"k must exceed 1 (a multiple of the median norm), got {k}")
    mask = np.zeros(len(y), dtype=bool)
    for layer in np.unique(y):
        rows = np.flatnonzero(y == layer)
        mask[rows] = norm_ratios(X[rows]) > k
    return mask


def massive_dims(X: np.ndarray, y: np.ndarray, absolute: float, relative: float) -> list[int]:
    """Dimensions holding at least one massive activation in some layer (thresholds per layer)."""
    dims: set[int] = set()
    for layer in np.unique(y):
        dims.update(massive_activations(X[y == layer], absolute, relative)["dim"].tolist())
    return sorted(dims)


def peak_dims(X: np.ndarray, y: np.ndarray) -> list[int]:
    """The dimension holding each layer's largest |x_ij|: where a layer's most extreme entry lives, whether or
    not it passes the massive-activation thresholds."""
    return sorted({int(np.abs(X[y == layer]).max(axis=0).argmax()) for layer in np.unique(y)})


def probe_without_outliers(X: np.ndarray, y: np.ndarray, text_ids: np.ndarray, *, k: float, test_fraction: float,
                           seed: int, probe_params: dict[str, Any], mask_k: int, top_n: int, absolute: float,
                           relative: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference probe fitted on all vectors and on the vectors that are not outlier tokens (removed from
    train and test), on the same text-level split.

    Returns (scores: condition, accuracy, n_train, n_test, n_removed; dims: condition, dim, rank, is_massive,
    is_peak, massive_dims, peak_dims), where dims are the probe's ``mask_k`` most frequent top-``top_n``
    attribution dimensions and peak dims those of :func:`peak_dims`.
    """
    train, test = split_by_text(text_ids, test_fraction, seed)
    outlier = outlier_rows(X, y, k)
    massive = set(massive_dims(X, y, absolute, relative))
    peaks = set(peak_dims(X, y))
    scores, dims = [], []
    run = None
    for condition, keep in (("all", np.ones(len(y), dtype=bool)), ("without_outliers", ~outlier)):
        tr, te = np.flatnonzero(train & keep), np.flatnonzero(test & keep)
        if run is None or not keep.all():  # nothing removed: the same fit, not paid twice
            run = fit_probe(X[tr], y[tr], X[te], y[te], make_probe("logistic", seed, **probe_params))
        scores.append({"condition": condition, "accuracy": float(np.mean(run.y_pred == run.y_test)),
                       "n_train": len(tr), "n_test": len(te), "n_removed": int((~keep).sum())})
        attribution = attribution_table(run.estimator.coef_, run.estimator.classes_, run.X_test, run.y_test)
        top = frequent_top_dimensions(attribution, mask_k, top_n)
        dims += [{"condition": condition, "dim": int(d), "rank": r + 1, "is_massive": int(d) in massive,
                  "is_peak": int(d) in peaks} for r, d in enumerate(top["dim"])]
    dims_table = pd.DataFrame(dims).assign(massive_dims=";".join(str(d) for d in sorted(massive)),
                                           peak_dims=";".join(str(d) for d in sorted(peaks)))
    return pd.DataFrame(scores), dims_table
