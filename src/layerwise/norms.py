"""Per-layer L2-norm statistics: the first, simplest view of how the residual stream grows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerwise.paper import latex_escape

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def norm_statistics(vectors: np.ndarray) -> dict[str, float]:
    """min, mean, max and quantiles of row norms, computed in float64 (float16 stores overflow ‖x‖²)."""
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"expected a non-empty [n, width] array, got shape {vectors.shape}")
    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1)
    stats = {"min": norms.min(), "mean": norms.mean(), "max": norms.max()}
    stats.update({f"q{int(q * 100):02d}": v for q, v in zip(QUANTILES, np.quantile(norms, QUANTILES))})
    return {k: float(v) for k, v in stats.items()}


def norm_table(layers: dict[int | str, np.ndarray], rows: np.ndarray | None = None) -> pd.DataFrame:
    """Tidy table `layer, stat, value` over the selected rows of every layer."""
    records = []
    for layer, arr in layers.items():
        stats = norm_statistics(arr[rows] if rows is not None else arr)
        records += [{"layer": layer, "stat": k, "value": v} for k, v in stats.items()]
    return pd.DataFrame.from_records(records)


def norm_growth(table: pd.DataFrame, stat: str = "mean") -> float:
    """`stat` (mean or q50, the median) norm of the last residual layer over that of layer 0."""
    values = table[table["stat"] == stat].set_index("layer")["value"]
    numeric = [l for l in values.index if isinstance(l, (int, np.integer))]
    return float(values[max(numeric)] / values[min(numeric)])


def norm_summary_sentence(table: pd.DataFrame, model: str) -> str:
    """Sentences for the paper, mean and median side by side: a few outlier tokens (massive activations) pull
    the mean far above the typical token, and the median shows the typical token. Generated so they stay true
    when the config changes."""
    wide = table.pivot(index="layer", columns="stat", values="value")
    mean, median = wide["mean"], wide["q50"]
    first, last = mean.index.min(), mean.index.max()
    peak, gap = int(mean.idxmax()), mean / median
    widest = int(gap.idxmax())
    return (f"In {latex_escape(model)} the mean norm goes from {mean[first]:.3g} (layer 0) to {mean[last]:.3g} "
            f"(layer {int(last)}), a factor of {mean[last] / mean[first]:.3g}, peaking at layer {peak} "
            f"({mean[peak]:.3g}); the median goes from {median[first]:.3g} to {median[last]:.3g} (a factor of "
            f"{median[last] / median[first]:.3g}, peak at layer {int(median.idxmax())}), and the mean exceeds it "
            f"most at layer {widest} ({gap[widest]:.3g}$\\times$).")
