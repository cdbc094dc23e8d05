"""Synthetic "layers" with known structure, for tests and for the probe benchmark.

Each layer has its own mean; consecutive means are a random walk (like a residual stream, adjacent
layers are the hardest to tell apart). Every text adds one offset shared by all of its vectors, so a
split that leaks texts would be rewarded, and a split by text is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LayeredVectors:
    """Rows are (text, position, layer) triples; `y` is the layer (0 = input embedding)."""

    X: np.ndarray
    y: np.ndarray
    text_ids: np.ndarray
    positions: np.ndarray


def make_layered_vectors(n_texts: int = 100, n_positions: int = 10, n_layers: int = 6, width: int = 32, *,
                         layer_step: float = 3.0, text_scale: float = 0.5, noise: float = 1.0,
                         seed: int = 0) -> LayeredVectors:
    """Draw `n_texts * n_positions * (n_layers + 1)` float32 vectors of `width` dimensions.

    `layer_step` is the Euclidean distance between consecutive layer means, in units of the
    per-dimension noise standard deviation when `noise=1`; `layer_step=0` gives pure noise, on which
    no probe can beat chance.
    """
    for name, value in (("n_texts", n_texts), ("n_positions", n_positions), ("width", width)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1 (two classes at least), got {n_layers}")
    if min(layer_step, text_scale, noise) < 0:
        raise ValueError("layer_step, text_scale and noise must be >= 0")
    rng = np.random.default_rng(seed)
    n_classes = n_layers + 1
    steps = rng.standard_normal((n_classes, width))
    steps *= layer_step / np.linalg.norm(steps, axis=1, keepdims=True)
    means = np.cumsum(steps, axis=0)
    text_offsets = text_scale * rng.standard_normal((n_texts, width))

    text_ids = np.repeat(np.arange(n_texts), n_positions * n_classes)
    positions = np.tile(np.repeat(np.arange(n_positions), n_classes), n_texts)
    y = np.tile(np.arange(n_classes), n_texts * n_positions)
    X = means[y] + text_offsets[text_ids] + noise * rng.standard_normal((y.size, width))
    return LayeredVectors(X.astype(np.float32), y, text_ids, positions)


def one_hot_layers(n: int = 4000, width: int = 8, n_layers: int = 4, shift: float = 3.0,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vectors whose layer l is shifted by `shift` along dimension l only, the other dimensions noise: the
    dimensions a probe must read are known, so masking and attribution have a ground truth."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_layers, n)
    X = rng.standard_normal((n, width)).astype(np.float32)
    X[np.arange(n), y] += shift
    return X, y
