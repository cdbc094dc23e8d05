"""Figures and summary numbers for study 3: anisotropy and intrinsic dimension across depth.

All functions take the tidy table of :func:`layerwise.geometry.layers.layer_geometry` stacked over
models, with extra columns ``model``, ``kind`` ("decoder"/"encoder") and ``n_layers``. Depth is
shown as layer / n_layers so that models of different depth share one axis. Rows whose layer
is a label rather than an index (e.g. "final_norm", the post-norm state) are not part of a
depth profile and are left out here.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

REQUIRED_COLUMNS = ("model", "kind", "n_layers", "layer", "metric", "mean", "std")
METRIC_LABELS = {
    "anisotropy": "anisotropy  $\\sigma_1^2 / \\sum_i \\sigma_i^2$",
    "top5_share": "variance share of top 5 directions",
    "top10_share": "variance share of top 10 directions",
    "twonn_id": "TwoNN intrinsic dimension",
    "twonn_mle_id": "TwoNN intrinsic dimension (MLE)",
}


def depth_profile(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of one metric at numbered layers, with ``relative_depth`` = layer / n_layers."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}")
    rows = table[table["metric"] == metric].copy()
    if rows.empty:
        raise ValueError(f"no rows for metric {metric!r}; have {sorted(table['metric'].unique())}")
    rows["layer"] = pd.to_numeric(rows["layer"], errors="coerce")
    rows = rows.dropna(subset=["layer"])
    if rows.empty:
        raise ValueError(f"metric {metric!r} has no numbered layers")
    rows["layer"] = rows["layer"].astype(int)
    rows["relative_depth"] = rows["layer"] / rows["n_layers"]
    return rows.sort_values(["model", "relative_depth"]).reset_index(drop=True)


def _palette(models: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per model, fixed by sorted name so both figures agree."""
    names = sorted(set(models))
    return dict(zip(names, sns.color_palette("colorblind", len(names))))


def _draw_profiles(ax: Axes, profile: pd.DataFrame, palette: dict, metric: str) -> None:
    """Mean per layer as a line per model, mean +- std over batches as a band."""
    sns.lineplot(
        data=profile, x="relative_depth", y="mean", hue="model", palette=palette,
        marker="o", markersize=4, ax=ax,
    )
    for model, rows in profile.groupby("model"):
        ax.fill_between(
            rows["relative_depth"], rows["mean"] - rows["std"], rows["mean"] + rows["std"],
            color=palette[model], alpha=0.2, linewidth=0,
        )
    ax.set_xlabel("relative depth (layer / n_layers)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_xlim(0, 1)


def plot_anisotropy_profiles(
    table: pd.DataFrame,
    *,
    metric: str = "anisotropy",
    kinds: Sequence[str] = ("decoder", "encoder"),
) -> Figure:
    """The paper's Fig. 1: anisotropy per layer, one panel per model kind, one line per model."""
    profile = depth_profile(table, metric)
    palette = _palette(profile["model"])
    fig = Figure(figsize=(4.2 * len(kinds), 3.4), layout="constrained")
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        subset = profile[profile["kind"] == kind]
        ax.set_title(f"{kind}s")
        if subset.empty:
            ax.text(0.5, 0.5, f"no {kind} models", ha="center", va="center", transform=ax.transAxes)
            continue
        _draw_profiles(ax, subset, palette, metric)
    return fig


def plot_intrinsic_dimension_profiles(table: pd.DataFrame, *, metric: str = "twonn_id") -> Figure:
    """TwoNN intrinsic dimension per layer, one line per model on a shared relative-depth axis."""
    profile = depth_profile(table, metric)
    palette = _palette(profile["model"])
    fig = Figure(figsize=(5.0, 3.4), layout="constrained")
    ax = fig.subplots()
    _draw_profiles(ax, profile, palette, metric)
    ax.set_title("intrinsic dimension")
    return fig


def summarise_profiles(
    table: pd.DataFrame, metrics: Sequence[str] = ("anisotropy", "twonn_id")
) -> pd.DataFrame:
    """Per model and metric: where the profile peaks and its range, for the paper's text.

    Columns: model, kind, n_layers, metric, peak_layer, peak_relative_depth, peak_value,
    min_layer, min_relative_depth, min_value.
    """
    records = []
    for metric in metrics:
        profile = depth_profile(table, metric)
        for (model, kind, n_layers), rows in profile.groupby(["model", "kind", "n_layers"]):
            peak = rows.loc[rows["mean"].idxmax()]
            low = rows.loc[rows["mean"].idxmin()]
            records.append(
                {
                    "model": model,
                    "kind": kind,
                    "n_layers": int(n_layers),
                    "metric": metric,
                    "peak_layer": int(peak["layer"]),
                    "peak_relative_depth": float(peak["relative_depth"]),
                    "peak_value": float(peak["mean"]),
                    "min_layer": int(low["layer"]),
                    "min_relative_depth": float(low["relative_depth"]),
                    "min_value": float(low["mean"]),
                }
            )
    return pd.DataFrame.from_records(records)
