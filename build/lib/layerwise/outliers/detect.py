"""Outlier tokens and massive activations: which few vectors drive a layer's geometry.

Anisotropy sigma_1^2 / sum_i sigma_i^2 is a ratio of second moments, so a handful of vectors with
norms far above the rest can set it alone. Two detectors, both relative to the layer itself so that
nothing is tuned to one model's scale or one corpus:

* outlier *tokens*: a vector whose L2 norm exceeds ``k`` times the median norm of its layer;
* massive *activations* (Sun, Chen, Kolter, Liu 2024, "Massive Activations in Large Language
  Models"): a single entry x_ij with |x_ij| above an absolute threshold (they use 100) and above
  ``relative`` times the median |x| of the layer's hidden states (they use about 1000).

Detection only (no geometry kernel here, so Study 1's use of it does not depend on Study 3's code);
:mod:`layerwise.outliers.geometry` attributes Study 3's quantities to the outliers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

DEFAULT_K = 5.0
# Sun et al. (2024), Sec. 2: "magnitudes larger than 100 and approximately 1,000 times larger than
# the median magnitude of its hidden state".
DEFAULT_MASSIVE_ABSOLUTE = 100.0
DEFAULT_MASSIVE_RELATIVE = 1000.0


def as_matrix(x: Any) -> np.ndarray:
    """A non-empty 2-D array (n_vectors, width), unchanged."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"expected a non-empty (n_vectors, width) array, got shape {x.shape}")
    return x


def token_norms(x: Any) -> np.ndarray:
    """L2 norm of each row, in float64 (float16 stores overflow the squared norm)."""
    return np.linalg.norm(np.asarray(as_matrix(x), dtype=np.float64), axis=1)


def norm_ratios(x: Any) -> np.ndarray:
    """Each row's norm over the median row norm of ``x`` (the layer)."""
    norms = token_norms(x)
    median = float(np.median(norms))
    if median <= 0:
        raise ValueError("median norm is 0: at least half the vectors are zero")
    return norms / median


def outlier_mask(x: Any, k: float = DEFAULT_K) -> np.ndarray:
    """True for rows whose norm exceeds ``k`` × the median row norm."""
    if k <= 1:
        raise ValueError(f"k must exceed 1 (a multiple of the median norm), got {k}")
    return norm_ratios(x) > k


def massive_activations(x: Any, absolute: float = DEFAULT_MASSIVE_ABSOLUTE,
                        relative: float = DEFAULT_MASSIVE_RELATIVE) -> pd.DataFrame:
    """Entries with |x_ij| > ``absolute`` and > ``relative`` × median |x| over all entries of ``x``.

    Columns: row, dim, value. The median is over the whole layer (every token and dimension), as in
    Sun et al.'s "median magnitude of its hidden state"; both thresholds must hold.
    """
    if absolute < 0 or relative <= 0:
        raise ValueError(f"thresholds must be absolute >= 0 and relative > 0, got {absolute}, {relative}")
    magnitude = np.abs(np.asarray(as_matrix(x), dtype=np.float64))
    threshold = max(absolute, relative * float(np.median(magnitude)))
    rows, dims = np.nonzero(magnitude > threshold)
    values = np.asarray(x, dtype=np.float64)[rows, dims]
    return pd.DataFrame({"row": rows.astype(np.int64), "dim": dims.astype(np.int64), "value": values})


def top_outlier_tokens(occurrences: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` token strings with the most (layer, vector) outlier occurrences.

    Columns: token, occurrences, share (of all occurrences), n_vectors (distinct text positions),
    max_norm_ratio, positions (the most frequent text positions, up to five), layers ("first-last").
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    columns = ["token", "occurrences", "share", "n_vectors", "max_norm_ratio", "positions", "layers"]
    if occurrences.empty:
        return pd.DataFrame(columns=columns)
    total = len(occurrences)
    rows = []
    for token, group in occurrences.groupby("token", sort=False):
        positions = group.drop_duplicates("row")["position"].value_counts()
        positions = positions.sort_index().sort_values(ascending=False, kind="stable").index[:5]
        layers = pd.to_numeric(group["layer"], errors="coerce")
        rows.append({"token": token, "occurrences": len(group), "share": len(group) / total,
                     "n_vectors": int(group["row"].nunique()), "max_norm_ratio": float(group["norm_ratio"].max()),
                     "positions": ",".join(str(int(p)) for p in positions),
                     "layers": f"{int(layers.min())}-{int(layers.max())}"})
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["occurrences", "max_norm_ratio", "token"], ascending=[False, False, True],
                             kind="stable").head(n).reset_index(drop=True)


def profile_shape(layer: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """Peak layer of a per-layer profile and the peak's height relative to the rest (peak over the
    median of the other layers): the two features of the sources' "bell shape"."""
    layer, values = np.asarray(layer), np.asarray(values, dtype=np.float64)
    if layer.shape != values.shape or values.size < 2:
        raise ValueError("need one value per layer and at least two layers")
    peak = int(np.argmax(values))
    rest = np.median(np.delete(values, peak))
    return {"peak_layer": int(layer[peak]), "peak_value": float(values[peak]),
            "prominence": float(values[peak] / rest) if rest > 0 else float("inf")}
