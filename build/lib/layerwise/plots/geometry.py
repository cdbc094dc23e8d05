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


def _kind_panels(fig: Figure, rows: pd.DataFrame, kinds: Sequence[str]) -> list[tuple[Axes, pd.DataFrame]]:
    """One panel per model kind, side by side with a shared y axis, titled; a kind without rows says so in its
    panel. Returns (axes, rows of that kind) for the kinds that have rows."""
    panels = []
    for ax, kind in zip(fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0], kinds):
        subset = rows[rows["kind"] == kind]
        ax.set_title(f"{kind}s")
        if subset.empty:
            ax.text(0.5, 0.5, f"no {kind} models", ha="center", va="center", transform=ax.transAxes)
        else:
            panels.append((ax, subset))
    return panels


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
    for ax, subset in _kind_panels(fig, profile, kinds):
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


# --------------------------------------------------------------------------- per batch, at printed size

PRINT_RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7.5,
            "ytick.labelsize": 7.5, "legend.fontsize": 7.5}


def _batch_rows(batches: pd.DataFrame, position0: bool | None) -> pd.DataFrame:
    rows = batches.assign(layer=pd.to_numeric(batches["layer"], errors="coerce")).dropna(subset=["layer"])
    if position0 is not None and "position0" in rows:
        flag = rows["position0"].astype(str).str.lower() == "true"
        chosen = rows[flag == position0]
        rows = chosen if not chosen.empty else rows[flag]
    rows = rows.assign(relative_depth=rows["layer"] / rows["n_layers"])
    return rows


def plot_anisotropy_batches(batches: pd.DataFrame, *, kinds: Sequence[str] = ("decoder", "encoder"),
                            width: float = 6.3, height: float = 2.7) -> Figure:
    """Anisotropy per layer with every batch drawn (dots) and the median over batches (line), one panel per
    model kind: all tokens (solid), outlier tokens removed (dashed), position 0 kept as the source did
    (dotted). Drawn at its printed size (``width`` inches) with fonts of 7.5-8 pt."""
    import matplotlib

    ours = _batch_rows(batches, position0=False)
    kept = _batch_rows(batches, position0=True) if "position0" in batches else ours.iloc[0:0]
    palette = _palette(ours["model"])
    with matplotlib.rc_context(PRINT_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        for ax, subset in _kind_panels(fig, ours, kinds):
            for model, rows in subset.groupby("model", sort=False):
                colour = palette[model]
                ax.scatter(rows["relative_depth"], rows["anisotropy"], s=6, color=colour, alpha=0.45, linewidths=0)
                median = rows.groupby("relative_depth")["anisotropy"].median()
                ax.plot(median.index, median.to_numpy(), color=colour, lw=1.3, label=f"{model}, all tokens")
                if "anisotropy_without_outliers" in rows and rows["anisotropy_without_outliers"].notna().any():
                    without = rows.groupby("relative_depth")["anisotropy_without_outliers"].median()
                    ax.plot(without.index, without.to_numpy(), color=colour, lw=1.1, ls="--",
                            label="outlier tokens removed")
                with_p0 = kept[(kept["model"] == model) & (kept["position0"].astype(str).str.lower() == "true")] \
                    if not kept.empty else kept
                if not with_p0.empty and not with_p0.equals(rows):
                    p0 = with_p0.groupby("relative_depth")["anisotropy"].median()
                    ax.plot(p0.index, p0.to_numpy(), color=colour, lw=1.1, ls=":", label="position 0 kept")
            ax.set_xlabel("relative depth (layer / n_layers)")
            ax.set_xlim(0, 1)
            ax.legend(loc="best", frameon=False)
        fig.axes[0].set_ylabel("anisotropy (top direction's\nvariance share; dots: batches)")
    return fig


def plot_intrinsic_dimension_batches(batches: pd.DataFrame, *, width: float = 3.4, height: float = 2.7) -> Figure:
    """TwoNN intrinsic dimension per layer (one copy of each vector kept): every batch (dots), the median over
    batches of the linear fit (solid) and of the MLE (dashed), one colour per model, at printed size."""
    import matplotlib

    rows = _batch_rows(batches, position0=False).dropna(subset=["twonn_id"])
    palette = _palette(rows["model"])
    with matplotlib.rc_context(PRINT_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.subplots()
        for model, group in rows.groupby("model", sort=False):
            colour = palette[model]
            ax.scatter(group["relative_depth"], group["twonn_id"], s=6, color=colour, alpha=0.45, linewidths=0)
            linear = group.groupby("relative_depth")["twonn_id"].median()
            mle = group.groupby("relative_depth")["twonn_mle_id"].median()
            ax.plot(linear.index, linear.to_numpy(), color=colour, lw=1.3, label=f"{model}, linear fit")
            ax.plot(mle.index, mle.to_numpy(), color=colour, lw=1.1, ls="--", label=f"{model}, MLE")
        ax.set_xlabel("relative depth (layer / n_layers)")
        ax.set_ylabel("TwoNN intrinsic dimension")
        ax.set_xlim(0, 1)
        ax.legend(frameon=False)
    return fig
