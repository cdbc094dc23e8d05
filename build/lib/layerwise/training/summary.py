"""Summaries of geometry across training checkpoints (what the paper states about Figs 2-4)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def seed_means(table: pd.DataFrame) -> pd.DataFrame:
    """A geometry table of several training seeds (column ``seed``) as one: ``mean`` averaged over the seeds per
    kind, step, layer and metric (``n_seeds`` of them). A table without seeds is returned as it is."""
    if "seed" not in table:
        return table
    keys = [c for c in ("kind", "step", "layer", "metric") if c in table]
    out = table.groupby(keys, as_index=False, sort=False).agg(mean=("mean", "mean"), n_seeds=("seed", "nunique"))
    return out


def layer_means(table: pd.DataFrame, metric: str, *, include_layer0: bool = False) -> pd.DataFrame:
    """kind, step, mean over layers of `metric` (the series behind `layer_mean_by_step`).

    Layer 0 is left out unless asked for: it is the embedding output, and in a model without
    absolute positions every repeated token is an exact duplicate there, which TwoNN drops while
    anisotropy keeps it, so it measures a different set of points than the other layers.
    """
    data = table[table["metric"] == metric]
    if not include_layer0:
        data = data[data["layer"].astype(int) != 0]
    return data.groupby(["kind", "step"], as_index=False)["mean"].mean().sort_values(["kind", "step"])


def is_monotonic(values: Sequence[float], tolerance: float = 0.0) -> bool:
    """Non-decreasing up to `tolerance` (relative) between consecutive values."""
    v = np.asarray(values, dtype=float)
    return bool(np.all(np.diff(v) >= -tolerance * np.abs(v[:-1])))


def training_summary(table: pd.DataFrame, *, include_layer0: bool = False) -> pd.DataFrame:
    """Per kind: step where layer-mean ID peaks, whether layer-max anisotropy grows monotonically,
    and the peak layer (relative depth) of anisotropy at the last checkpoint."""
    records = []
    ids = layer_means(table, "twonn_id", include_layer0=include_layer0)
    an = table[table["metric"] == "anisotropy"]
    for kind, rows in ids.groupby("kind"):
        peak = rows.loc[rows["mean"].idxmax()]
        an_kind = an[an["kind"] == kind].copy()
        an_kind["layer"] = an_kind["layer"].astype(int)
        max_by_step = an_kind.groupby("step")["mean"].max().sort_index()
        last = an_kind[an_kind["step"] == an_kind["step"].max()]
        last_peak = last.loc[last["mean"].idxmax()]
        n_layers = int(an_kind["layer"].max())
        records.append({
            "kind": kind, "id_peak_step": int(peak["step"]), "id_peak_value": float(peak["mean"]),
            "id_first": float(rows["mean"].iloc[0]), "id_last": float(rows["mean"].iloc[-1]),
            "anisotropy_monotonic": is_monotonic(max_by_step.to_numpy(), tolerance=0.05),
            "anisotropy_first": float(max_by_step.iloc[0]), "anisotropy_last": float(max_by_step.iloc[-1]),
            "anisotropy_peak_layer": int(last_peak["layer"]),
            "anisotropy_peak_relative_depth": int(last_peak["layer"]) / n_layers,
        })
    return pd.DataFrame.from_records(records)
