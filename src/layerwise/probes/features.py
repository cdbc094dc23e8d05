"""Activation store → the probe's dataset: every layer's vectors stacked, labelled by layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layerwise.store import ActivationStore


@dataclass(frozen=True)
class LayerDataset:
    """X [n_vectors, width] float32, y = layer (0 = input embedding), text_ids and positions per row."""

    X: np.ndarray
    y: np.ndarray
    text_ids: np.ndarray
    positions: np.ndarray

    @property
    def n_layers(self) -> int:
        return int(self.y.max()) + 1

    def subset(self, rows: np.ndarray) -> "LayerDataset":
        return LayerDataset(self.X[rows], self.y[rows], self.text_ids[rows], self.positions[rows])


def layer_dataset(store: ActivationStore, *, include_position0: bool = False,
                  exclude_layers: tuple[int, ...] = ()) -> LayerDataset:
    """Stack the residual-stream layers of a store (pre-final-norm; the post-norm state is not a layer)."""
    rows = store.position_mask(include_position0)
    tokens = store.tokens[rows]
    layers = [layer for layer in store.layers if layer not in exclude_layers]
    X = np.concatenate([np.asarray(store.layer(layer)[rows], dtype=np.float32) for layer in layers])
    y = np.repeat(np.asarray(layers, dtype=np.int64), int(rows.sum()))
    tile = len(layers)
    return LayerDataset(X, y, np.tile(tokens["text_index"].to_numpy(np.int64), tile),
                        np.tile(tokens["position"].to_numpy(np.int64), tile))
