"""Controls and ablations: what is left of the layer signal when norm, structure or labels are removed.

Three random-vector controls, named for what they keep of each layer:

* ``scalar``: one mean and one variance per layer, over all entries of that layer's unit-norm vectors
  (the post's Fig 10: vectors drawn "from the normalised layer embedding norm distribution" with "the
  mean and variance of the sample set for each layer" kept). Every entry is i.i.d., so a layer keeps no
  direction and, after normalisation, hardly any norm cue: a probe should fail on them.
* ``per_dimension``: each dimension's mean and variance per layer, on the raw vectors. This keeps each
  layer's mean *direction* (and norm), which is what a linear probe reads, so it must succeed: it is a
  first-moment control, not a test of the post's claim.
* ``covariance``: each layer's mean vector and full covariance matrix (Gaussian vectors matched in the first
  two moments). What a probe scores on them beside real vectors tells how much of the layer signal lies
  beyond the first two moments (none, if it scores alike); like the per-dimension control, it is expected
  to succeed and cannot test the post's claim either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layerwise.probes.logistic import check_features, check_labels

RANDOM_CONTROLS = ("scalar", "per_dimension", "covariance")
# The probe each control's vectors go through "as trained": the one fitted on the space they mimic.
REFERENCE_CONDITION = {"scalar": "normalised", "per_dimension": "raw", "covariance": "raw"}


def normalise_rows(X: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """Every vector scaled to unit L2 norm (applied before standardisation): removes the norm cue.

    `overwrite=True` scales float32 `X` in place (no second matrix) and returns it.
    """
    X = check_features(X)
    # einsum, not np.linalg.norm: the latter squares X into a temporary as large as X
    norms = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))[:, None].astype(np.float32)
    if (norms == 0).any():
        raise ValueError(f"{int((norms == 0).sum())} vectors have zero norm and cannot be normalised")
    if overwrite:
        X /= norms
        return X
    return X / norms


@dataclass(frozen=True)
class LayerMoments:
    """Per-layer mean and std ([n_layers, 1] for `scalar`, [n_layers, width] for `per_dimension`)."""

    kind: str
    layers: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    width: int
    factor: np.ndarray | None = None  # covariance: [n_layers, width, width], cov = factor @ factor.T

    def sample(self, y: np.ndarray, seed: int = 0, out: np.ndarray | None = None) -> np.ndarray:
        """Float32 Gaussian vectors, row i drawn with the moments of layer y[i] (into `out` if given)."""
        y = np.asarray(y)
        missing = set(np.unique(y).tolist()) - set(self.layers.tolist())
        if missing:
            raise ValueError(f"y has layers without moments: {sorted(missing)}")
        rng = np.random.default_rng(seed)
        if out is None:
            out = np.empty((y.size, self.width), dtype=np.float32)
        elif out.shape != (y.size, self.width) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 {(y.size, self.width)}, got {out.dtype} {out.shape}")
        for i, layer in enumerate(self.layers):
            rows = np.flatnonzero(y == layer)
            if self.factor is not None:
                out[rows] = self.mean[i] + rng.standard_normal((rows.size, self.width)) @ self.factor[i].T
            else:
                out[rows] = rng.normal(self.mean[i], self.std[i], size=(rows.size, self.width))
        return out


def layer_moments(X: np.ndarray, y: np.ndarray, kind: str) -> LayerMoments:
    """The moments the `kind` control keeps, estimated on (X, y) (pass the training split)."""
    if kind not in RANDOM_CONTROLS:
        raise ValueError(f"random control must be one of {RANDOM_CONTROLS}, got {kind!r}")
    X = check_features(X)
    y = check_labels(y, X.shape[0])
    layers = np.unique(y)
    means, stds, factors = [], [], []
    for layer in layers:
        values = X[y == layer].astype(np.float64)
        if kind == "scalar":
            values /= np.linalg.norm(values, axis=1, keepdims=True)
            means.append([values.mean()])
            stds.append([values.std()])
        else:
            means.append(values.mean(axis=0))
            stds.append(values.std(axis=0))
            if kind == "covariance":  # symmetric square root: singular covariances (constant dims) allowed
                eigenvalues, vectors = np.linalg.eigh(np.cov(values, rowvar=False, bias=True))
                factors.append(vectors * np.sqrt(np.clip(eigenvalues, 0.0, None)))
    return LayerMoments(kind, layers, np.asarray(means), np.asarray(stds), X.shape[1],
                        np.asarray(factors) if factors else None)


def matched_random_vectors(X: np.ndarray, y: np.ndarray, seed: int = 0, kind: str = "per_dimension") -> np.ndarray:
    """Random vectors for the rows of (X, y), with the `kind` moments of each layer's rows of `X`."""
    return layer_moments(X, y, kind).sample(y, seed)


def shuffled_labels(y: np.ndarray, seed: int = 0) -> np.ndarray:
    """A seeded permutation of the labels: apply it to the *training* labels only.

    Test labels stay true, so the test accuracy measures what a probe fitted to permuted labels
    predicts about real layers. It is chance on average over permutations, not in every single run
    (vectors still cluster by layer), hence several permutations and their mean and spread.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    return np.random.default_rng(seed).permutation(y)
