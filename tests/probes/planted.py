"""Planted data shared by the probe tests: the probe settings and layered vectors of the known-answer tests,
an attribution table's column by variant and layer, and a small store whose every value names its layer and text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerwise.activations.store import FINAL_NORM, ActivationStore, StoreWriter
from layerwise.probes.features import LayerDataset
from layerwise.probes.synthetic import make_layered_vectors


PROBE = {"C": 1.0, "max_epochs": 100, "device": "cpu"}
N_LAYERS = 3  # classes 0..3
LABELS = np.arange(N_LAYERS + 1)


def layered(seed: int = 0, layer_step: float = 4.0) -> LayerDataset:
    """40 texts x 4 positions x 4 layers = 640 vectors of width 8."""
    v = make_layered_vectors(n_texts=40, n_positions=4, n_layers=N_LAYERS, width=8, layer_step=layer_step, seed=seed)
    return LayerDataset(v.X, v.y, v.text_ids, v.positions)


def part(table, variant, layer, column):
    rows = table[(table["variant"] == variant) & (table["layer"] == layer)].sort_values("dim")
    return rows[column].to_numpy()


def make_store(path, has_final_norm: bool) -> ActivationStore:
    n_texts, length, width, n_layers = 4, 5, 3, 2
    tokens = pd.DataFrame({"text_index": np.repeat(np.arange(n_texts), length),
                           "text_id": np.repeat(np.arange(n_texts), length),
                           "position": np.tile(np.arange(length), n_texts), "token_id": 7, "token": "x"})
    layers = list(range(n_layers + 1)) + ([FINAL_NORM] if has_final_norm else [])
    writer = StoreWriter(path, layers, len(tokens), width, "float32")
    values = {layer: np.full((len(tokens), width), layer, np.float32) for layer in range(n_layers + 1)}
    if has_final_norm:
        values[FINAL_NORM] = np.full((len(tokens), width), -1.0, np.float32)
    values = {k: v + tokens["text_index"].to_numpy()[:, None] * 10 for k, v in values.items()}
    writer.write(0, values)
    writer.finish(tokens, {"model": {"n_layers": n_layers}, "has_final_norm": has_final_norm})
    return ActivationStore.open(path)
