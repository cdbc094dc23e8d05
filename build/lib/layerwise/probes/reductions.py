"""2-D maps (PCA, t-SNE, UMAP) of a seeded, layer-balanced subsample of all layers' vectors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from layerwise.probes.logistic import check_features, check_labels

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne", "umap")


def subsample_per_layer(y: np.ndarray, n_per_layer: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices: up to `n_per_layer` rows of every layer, so no layer crowds out the others."""
    y = np.asarray(y)
    if n_per_layer < 1:
        raise ValueError(f"n_per_layer must be >= 1, got {n_per_layer}")
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(y == layer), size=min(n_per_layer, int((y == layer).sum())), replace=False)
             for layer in np.unique(y)]
    return np.sort(np.concatenate(picks))


def embed_2d(X: np.ndarray, method: str, seed: int = 0, *, perplexity: float = 30.0, n_neighbors: int = 15,
             min_dist: float = 0.1) -> np.ndarray:
    """[n, 2] coordinates. `perplexity` is t-SNE's; `n_neighbors` and `min_dist` are UMAP's."""
    X = check_features(X)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(X)
    if method == "tsne":
        perplexity = min(perplexity, (X.shape[0] - 1) / 3)  # t-SNE needs perplexity < n_samples
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)
    if method == "umap":
        import umap  # slow import (numba); only paid when UMAP is asked for

        return umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, X.shape[0] - 1), min_dist=min_dist, n_jobs=1,
                         random_state=seed).fit_transform(X)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def reduction_table(X: np.ndarray, y: np.ndarray, methods: Sequence[str] = METHODS, *, n_per_layer: int = 200,
                    seed: int = 0, variant: str = "raw", keep: np.ndarray | None = None,
                    transform: Callable[[np.ndarray], np.ndarray] | None = None, **params: float) -> pd.DataFrame:
    """Long table: x, y, layer, method, variant, row (index into X), one block per method.

    Every method maps the same subsample; `variant` labels the input (e.g. "raw", "normalised",
    "no_layer0") so tables of several variants can be concatenated; `params` go to `embed_2d`.
    `keep` (a boolean row mask) and `transform` (a row-wise map, e.g. unit norm) give the table of
    `transform(X[keep])`, `row` indexing `X[keep]`, while only the subsample is ever copied or transformed
    (the full-matrix copies of four variants held 8.5 GB at N=1000 for 3100 plotted vectors).
    """
    X = check_features(X)
    y = check_labels(y, X.shape[0])
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    if keep is not None and (np.asarray(keep).dtype != bool or np.shape(keep) != y.shape):
        raise ValueError(f"keep must be a boolean mask of the {y.size} rows, got {np.asarray(keep).dtype} "
                         f"{np.shape(keep)}")
    kept = np.arange(y.size) if keep is None else np.flatnonzero(keep)
    rows = subsample_per_layer(y[kept], n_per_layer, seed)
    sample = X[kept[rows]]
    if transform is not None:
        sample = transform(sample)
    frames = []
    for method in methods:
        log.info("%s of %d vectors (%s)", method, rows.size, variant)
        coords = embed_2d(sample, method, seed, **params)
        frames.append(pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "layer": y[kept[rows]], "method": method,
                                    "variant": variant, "row": rows}))
    return pd.concat(frames, ignore_index=True)
