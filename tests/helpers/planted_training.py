"""Planted checkpoint geometry shared by the training-summary and training-paragraph tests."""

from __future__ import annotations

import pandas as pd


def training_table(id_by_step: dict[int, list[float]], an_by_step: dict[int, list[float]],
                   kind: str = "decoder") -> pd.DataFrame:
    """Checkpoint geometry: per step, one value per layer 0..n of twonn_id and anisotropy."""
    rows = []
    for metric, by_step in (("twonn_id", id_by_step), ("anisotropy", an_by_step)):
        for step, values in by_step.items():
            rows += [{"kind": kind, "step": step, "layer": str(l), "metric": metric, "mean": v}
                     for l, v in enumerate(values)]
    return pd.DataFrame(rows)
