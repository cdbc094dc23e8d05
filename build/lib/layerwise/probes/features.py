"""Activation store → the probe's dataset: every layer's vectors stacked, labelled by layer.

Memory: a dataset is filled layer by layer into one preallocated float32 matrix, and the train/test
split is drawn on the token table before any vector is read, so building both sides never holds more
than their own rows (no full matrix that is then copied into a train and a test part). A probe trained on
several stores together gets their training rows written into one matrix (`split_layer_datasets`), so
the per-store training matrices never sit beside their concatenation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from layerwise.probes.split import split_by_text
from layerwise.activations.store import FINAL_NORM, ActivationStore


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

    @classmethod
    def concatenate(cls, parts: Sequence["LayerDataset"]) -> "LayerDataset":
        """The rows of `parts`, one after another, copied (from stores, `split_layer_datasets` fills one matrix
        directly instead)."""
        return cls(*(np.concatenate([getattr(part, name) for part in parts])
                     for name in ("X", "y", "text_ids", "positions")))

    def subset(self, rows: np.ndarray | slice) -> "LayerDataset":
        """The given rows: copies for an index or mask array, views for a slice."""
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


def _width(store: ActivationStore, sources: list[tuple[int, int | str]]) -> int:
    return store.layer(sources[0][1]).shape[1]


def _stack(store: ActivationStore, rows: np.ndarray, sources: list[tuple[int, int | str]],
           out: np.ndarray | None = None) -> LayerDataset:
    """The `rows` of every source, layer after layer, written into `out` (float32, the exact shape) if given."""
    tokens = store.tokens[rows]
    n_rows = int(rows.sum())
    shape = (n_rows * len(sources), _width(store, sources))
    if out is None:
        X = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 of shape {shape}, got {out.dtype} {out.shape}")
    else:
        X = out
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
    on_train, on_test = _split_rows(store, test_fraction, seed, include_position0)
    sources = _sources(store, exclude_layers, final_norm_last)
    return _stack(store, on_train, sources), _stack(store, on_test, sources)


def _split_rows(store: ActivationStore, test_fraction: float, seed: int, include_position0: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """Token masks (train, test) of the analysed rows, split by text."""
    rows = store.position_mask(include_position0)
    text_index = store.tokens["text_index"].to_numpy(np.int64)
    train, test = split_by_text(text_index[rows], test_fraction, seed)
    on_train, on_test = rows.copy(), rows.copy()
    on_train[rows], on_test[rows] = train, test
    return on_train, on_test


def split_layer_datasets(stores: Sequence[ActivationStore], test_fraction: float, seed: int, *,
                         include_position0: bool = False, exclude_layers: tuple[int, ...] = (),
                         final_norm_last: bool = False
                         ) -> tuple[LayerDataset, list[LayerDataset], list[LayerDataset]]:
    """(joint train, trains, tests): each store split as `split_layer_dataset` splits it, and the training
    rows of all stores written store after store into one matrix, `joint`; `trains[i]` is store i's part of it
    (a view, no copy).

    For a probe trained on the stores together (the transfer's A+B): filling one matrix holds each vector once,
    where loading the stores separately and concatenating held every training vector twice. `joint.text_ids`
    are each store's own, so they repeat across stores.
    """
    if not stores:
        raise ValueError("need at least one store")
    splits = [_split_rows(store, test_fraction, seed, include_position0) for store in stores]
    sources = [_sources(store, exclude_layers, final_norm_last) for store in stores]
    widths = {_width(store, src) for store, src in zip(stores, sources)}
    if len(widths) != 1:
        raise ValueError(f"the stores' vectors differ in width ({sorted(widths)}): one matrix cannot hold them")
    sizes = [int(on_train.sum()) * len(src) for (on_train, _), src in zip(splits, sources)]
    parts = [slice(end - size, end) for end, size in zip(np.cumsum(sizes).tolist(), sizes)]
    X = np.empty((sum(sizes), widths.pop()), dtype=np.float32)
    stacked = [_stack(store, on_train, src, out=X[part])
               for store, (on_train, _), src, part in zip(stores, splits, sources, parts)]
    joint = LayerDataset(X, *(np.concatenate([getattr(data, name) for data in stacked])
                              for name in ("y", "text_ids", "positions")))
    trains = [joint.subset(part) for part in parts]
    tests = [_stack(store, on_test, src) for store, (_, on_test), src in zip(stores, splits, sources)]
    return joint, trains, tests
