"""Per-layer L2-norm statistics: the first, simplest view of how the residual stream grows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from layerwise.workflow.macros import latex_escape

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


def per_text_norms(layers: Mapping[int | str, np.ndarray], text_index: np.ndarray,
                   rows: np.ndarray | None = None) -> pd.DataFrame:
    """Mean L2 norm of each text's selected vectors per layer (columns text, layer, norm): the resampling unit of
    the norm-growth claims (tokens of one text are not independent)."""
    text_index = np.asarray(text_index)
    keep = np.ones(len(text_index), bool) if rows is None else np.asarray(rows, bool)
    texts, inverse = np.unique(text_index[keep], return_inverse=True)
    counts = np.bincount(inverse, minlength=len(texts))
    frames = []
    for layer, arr in layers.items():
        norms = np.linalg.norm(np.asarray(arr[keep], dtype=np.float64), axis=1)
        frames.append(pd.DataFrame({"text": texts, "layer": str(layer),
                                    "norm": np.bincount(inverse, weights=norms, minlength=len(texts)) / counts}))
    return pd.concat(frames, ignore_index=True)


def growth_statistics(profile: Sequence[float]) -> dict[str, float]:
    """Two numbers for the post's "the last layer's norms are much larger than the others, and the overall trend
    is exponential", from a profile of mean norms over layers 1..n (layer 0, the embedding, left out: the post's
    curve starts at the first block):

    - ``last_ratio``: the last layer's mean norm over the largest of the layers before it;
    - ``exponential_fit``: sign(slope) x R^2 of a least-squares line through log(norm) against the layer, so 1
      is exact exponential growth and a falling or shapeless profile scores at or below 0;
    - ``growth_per_layer``: the fitted growth factor per layer minus 1, in % (what the slope means)."""
    values = np.asarray(profile, dtype=np.float64)
    if np.any(values <= 0):
        raise ValueError(f"mean norms must be positive, got {values.tolist()}")
    nan = float("nan")
    if values.size < 3:  # a line through 2 points always fits: no evidence of a trend (a 2-block model)
        return {"last_ratio": float(values[-1] / values[:-1].max()) if values.size == 2 else nan,
                "exponential_fit": nan, "growth_per_layer": nan}
    x, y = np.arange(values.size, dtype=np.float64), np.log(values)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual ** 2).sum()) / total if total > 0 else 0.0
    return {"last_ratio": float(values[-1] / values[:-1].max()),
            "exponential_fit": float(np.sign(slope) * r2),
            "growth_per_layer": float(100.0 * np.expm1(slope))}


def norm_growth_evidence(per_text: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> dict[str, tuple]:
    """:func:`growth_statistics` of the per-text table's layers 1..n (in order; a ``final_norm`` row, when given,
    stands in for the last layer, as in the post's setting) with percentile-bootstrap intervals over texts:
    {name: (estimate, low, high)}."""
    wide = per_text.pivot(index="text", columns="layer", values="norm")
    numeric = sorted(int(c) for c in wide.columns if str(c).lstrip("-").isdigit())
    order = [str(l) for l in numeric if l > 0]
    if "final_norm" in wide.columns:
        order = order[:-1] + ["final_norm"]
    matrix = wide[order].to_numpy(np.float64)
    point = growth_statistics(matrix.mean(axis=0))
    rng = np.random.default_rng(seed)
    draws = {k: [] for k in point}
    for _ in range(n_boot):
        sample = matrix[rng.integers(0, len(matrix), len(matrix))].mean(axis=0)
        for k, v in growth_statistics(sample).items():
            draws[k].append(v)
    return {k: (point[k], *(float(np.percentile(draws[k], q)) if np.isfinite(point[k]) else float("nan")
                            for q in (2.5, 97.5))) for k in point}
