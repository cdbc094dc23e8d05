"""Activation store → the probe's dataset: every layer's vectors stacked, labelled by layer.

Memory: a dataset is filled layer by layer into one preallocated float32 matrix, and the train/test
split is drawn on the token table before any vector is read, so building both sides never holds more
than their own rows (no full matrix that is then copied into a train and a test part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layerwise.probes.split import split_by_text
from layerwise.store import FINAL_NORM, ActivationStore


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


def _sources(store: ActivationStore, exclude_layers: tuple[int, ...], final_norm_last: bool
             ) -> list[tuple[int, int | str]]:
    """(label, stored array name) per class; with `final_norm_last` the last class is `hidden_states[-1]`.

    That is the final norm's output when the model has one (GPT-2, Llama); a post-LN encoder (BERT)
    has none, and its last layer already is `hidden_states[-1]`.
    """
    layers = [layer for layer in store.layers if layer not in exclude_layers]
    sources: list[tuple[int, int | str]] = [(layer, layer) for layer in layers]
    if final_norm_last and store.manifest.get("has_final_norm"):
        sources[-1] = (sources[-1][0], FINAL_NORM)
    return sources


def _stack(store: ActivationStore, rows: np.ndarray, sources: list[tuple[int, int | str]]) -> LayerDataset:
    tokens = store.tokens[rows]
    n_rows, width = int(rows.sum()), store.layer(sources[0][1]).shape[1]
    X = np.empty((n_rows * len(sources), width), dtype=np.float32)
    for i, (_, name) in enumerate(sources):
        X[i * n_rows:(i + 1) * n_rows] = store.layer(name)[rows]
    labels = np.asarray([label for label, _ in sources], dtype=np.int64)
    tile = len(sources)
    return LayerDataset(X, np.repeat(labels, n_rows), np.tile(tokens["text_index"].to_numpy(np.int64), tile),
                        np.tile(tokens["position"].to_numpy(np.int64), tile))


def layer_dataset(store: ActivationStore, *, include_position0: bool = False, exclude_layers: tuple[int, ...] = (),
                  final_norm_last: bool = False) -> LayerDataset:
    """Stack the residual-stream layers of a store (pre-final-norm unless `final_norm_last`).

    `final_norm_last` replaces the last layer by HF's `hidden_states[-1]` (for GPT-2 the output of the
    final norm: the post's setting); its label stays the last layer's.
    """
    return _stack(store, store.position_mask(include_position0), _sources(store, exclude_layers, final_norm_last))


def split_layer_dataset(store: ActivationStore, test_fraction: float, seed: int, *, include_position0: bool = False,
                        exclude_layers: tuple[int, ...] = (), final_norm_last: bool = False
                        ) -> tuple[LayerDataset, LayerDataset]:
    """(train, test) by text, as `split_by_text` on the stacked dataset would cut it, built side by side."""
    rows = store.position_mask(include_position0)
    text_index = store.tokens["text_index"].to_numpy(np.int64)
    train, test = split_by_text(text_index[rows], test_fraction, seed)
    sources = _sources(store, exclude_layers, final_norm_last)
    on_train, on_test = rows.copy(), rows.copy()
    on_train[rows], on_test[rows] = train, test
    return _stack(store, on_train, sources), _stack(store, on_test, sources)
