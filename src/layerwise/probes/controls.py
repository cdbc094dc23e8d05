"""Controls and ablations: what is left of the layer signal when norm, structure or labels are removed."""

from __future__ import annotations

import numpy as np

from layerwise.probes.logistic import check_features, check_labels


def normalize_rows(X: np.ndarray) -> np.ndarray:
    """Every vector scaled to unit L2 norm (applied before standardisation): removes the norm cue."""
    X = check_features(X)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{int((norms == 0).sum())} vectors have zero norm and cannot be normalised")
    return X / norms


def matched_random_vectors(X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gaussian vectors with, per layer, the per-dimension mean and variance of that layer's rows of `X`.

    Row i is drawn for layer y[i]: what a probe can do with first and second moments alone, without
    any structure between dimensions or between layers of one token.
    """
    X = check_features(X)
    y = check_labels(y, X.shape[0])
    rng = np.random.default_rng(seed)
    out = np.empty_like(X)
    for layer in np.unique(y):
        rows = y == layer
        values = X[rows].astype(np.float64)
        out[rows] = rng.normal(values.mean(axis=0), values.std(axis=0), size=values.shape)
    return out


def shuffled_labels(y: np.ndarray, seed: int = 0) -> np.ndarray:
    """A seeded permutation of the labels, to apply to all of `y` before splitting (a permutation test).

    With train and test labels both permuted, test labels are independent of the vectors and of the
    probe, so its accuracy has expectation exactly 1/n_layers and a binomial spread. Permuting only
    the training labels would leave test labels tied to vectors that cluster by layer: the accuracy
    is then chance only on average over permutations, and a single run can miss it by several points.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    return np.random.default_rng(seed).permutation(y)
