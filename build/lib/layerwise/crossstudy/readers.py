"""Readers of the three studies' output files for the cross-study view: the only place that knows their columns.

Kept apart from `layerwise.crossstudy.view` so that a study changing a column means changing one function here.
Each reader returns per-layer frames keyed by an integer `layer` (labels such as "final" or "final_norm",
which are not residual-stream layers, are dropped) or per-text ingredients over integer layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from layerwise.crossstudy.view import per_text_sums


def _numeric_layers(table: pd.DataFrame, column: str = "layer") -> pd.DataFrame:
    layer = pd.to_numeric(table[column].astype(str), errors="coerce")
    return table[layer.notna()].assign(**{column: layer[layer.notna()].astype(int)})


def probe_recall_from_confusion(path: Path | str) -> pd.DataFrame:
    """`layer, probe_recall` from scripts/probe.py's raw/confusion.csv (true_layer, predicted_layer, count):
    the confusion matrix diagonal over its row sums, pooled over the test texts."""
    table = pd.read_csv(path)
    totals = table.groupby("true_layer")["count"].sum()
    hits = table[table["true_layer"] == table["predicted_layer"]].set_index("true_layer")["count"]
    recall = (hits.reindex(totals.index, fill_value=0) / totals).rename("probe_recall")
    return recall.rename_axis("layer").reset_index()


def probe_recall_per_text(path: Path | str, texts: np.ndarray, n_layers: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-text correct counts and test vectors [T, L] from per-vector test predictions (columns text_id,
    true_layer, predicted_layer), T indexed like `texts` (the store's text ids)."""
    table = pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)
    codes = pd.Index(texts).get_indexer(table["text_id"])
    if (codes < 0).any():
        raise ValueError(f"{path}: text ids not in the activation store: {sorted(set(table['text_id'][codes < 0]))[:5]}")
    layer = table["true_layer"].to_numpy(int)
    correct = (table["true_layer"] == table["predicted_layer"]).to_numpy(float)
    flat = codes * (n_layers + 1) + layer
    size = len(texts) * (n_layers + 1)
    sums = np.bincount(flat, weights=correct, minlength=size).reshape(len(texts), n_layers + 1)
    counts = np.bincount(flat, minlength=size).astype(float).reshape(len(texts), n_layers + 1)
    return sums, counts


def geometry_reference(path: Path | str) -> pd.DataFrame:
    """`layer` and Study 3's own anisotropy / TwoNN ID (mean and std over batches) from scripts/geometry.py's
    per-model table (columns layer, metric, mean, std)."""
    table = _numeric_layers(pd.read_csv(path))
    wide = []
    for metric, name in (("anisotropy", "anisotropy_study"), ("twonn_id", "twonn_id_study")):
        rows = table[table["metric"] == metric].set_index("layer")[["mean", "std"]]
        wide.append(rows.rename(columns={"mean": name, "std": f"{name}_std"}))
    return pd.concat(wide, axis=1).reset_index()


def norms_reference(path: Path | str) -> pd.DataFrame:
    """`layer, mean_norm_study`: the norm study's mean L2 norm (scripts/norm_table.py: layer, stat, value)."""
    table = _numeric_layers(pd.read_csv(path))
    mean = table[table["stat"] == "mean"]
    return pd.DataFrame({"layer": mean["layer"].to_numpy(), "mean_norm_study": mean["value"].to_numpy()})


LENS_QUANTITIES = ("kl_final", "kl_input", "agreement")


def lens_per_text(path: Path | str, include_position0: bool) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(text ids [T], {quantity: (sums, counts) [T, L]}) for KL(final||layer), KL(input||layer) and top-1
    agreement with the output, from scripts/lens_dataset.py's per-token table (text, layer, position,
    kl_final, kl_input, top1_id, final_top1_id); sub-block rows and the "final" row are dropped."""
    table = _numeric_layers(pd.read_parquet(path, columns=["text", "layer", "position", "kl_final", "kl_input",
                                                           "top1_id", "final_top1_id"]))
    if not include_position0:
        table = table[table["position"] > 0]
    codes, texts = pd.factorize(table["text"], sort=True)
    layers = table["layer"].to_numpy(int)
    n_texts, n_layers = len(texts), int(layers.max()) + 1
    values = {"kl_final": table["kl_final"].to_numpy(float), "kl_input": table["kl_input"].to_numpy(float),
              "agreement": (table["top1_id"] == table["final_top1_id"]).to_numpy(float)}
    out = {}
    for name, v in values.items():
        sums, counts = per_text_sums(v, codes * n_layers + layers, n_texts * n_layers)
        out[name] = (sums.reshape(n_texts, n_layers), counts.reshape(n_texts, n_layers))
    return np.asarray(texts), out
