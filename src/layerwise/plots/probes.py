"""Figures of Study 1 (which layer is this vector from?), each from one tidy table.

Figures are built on `matplotlib.figure.Figure` directly, not through pyplot, so nothing is
registered globally and the caller decides where the figure goes. Layers are coloured in
reverse-rainbow order (layer 0 red, the last layer violet) everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter



# Figures are drawn at the size they print (the paper's \linewidth is 6.3 in; 0.48\linewidth 3.0 in), with
# no text under 7 pt, so that no scaling in the PDF shrinks a label below 7 pt (see paper/sections/probes.tex).
LINE_WIDTH, HALF_WIDTH = 6.3, 3.0
MIN_PT = 7.0
FONTS = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "legend.fontsize": 7, "legend.title_fontsize": 7, "figure.titlesize": 8}


def _legible(fig: Figure) -> Figure:
    """Every text of `fig` at >= MIN_PT (ticks drawn later included, through tick_params)."""
    for ax in fig.axes:
        ax.tick_params(labelsize=max(MIN_PT, FONTS["xtick.labelsize"]))
    for text in fig.findobj(matplotlib.text.Text):
        if text.get_fontsize() < MIN_PT:
            text.set_fontsize(MIN_PT)
    return fig


def smallest_text_pt(fig: Figure, print_width: float) -> float:
    """The smallest visible, non-empty text of `fig` in points once the figure is scaled to `print_width`
    inches (as \\includegraphics[width=...] scales it); draws the figure first so lazy ticks exist."""
    fig.canvas.draw()
    scale = print_width / fig.get_figwidth()
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip()]
    return scale * min(sizes) if sizes else float("inf")


def printed(function):
    """Draw under the print-size fonts, then raise any smaller text to MIN_PT."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(FONTS):
            return _legible(function(*args, **kwargs))
    return wrapper


def _require(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} table lacks columns {missing}; it has {list(table.columns)}")
    if table.empty:
        raise ValueError(f"{name} table is empty")


def layer_palette(layers: Sequence[int]) -> dict[int, tuple[float, float, float]]:
    """Layer -> colour, reverse rainbow over the sorted layers."""
    layers = sorted(set(int(layer) for layer in layers))
    return dict(zip(layers, sns.color_palette("rainbow_r", len(layers))))


def _layer_colorbar(fig: Figure, axes: np.ndarray, layers: Sequence[int]) -> None:
    """One discrete colour bar for all panels, at most ~10 tick labels."""
    palette = layer_palette(layers)
    layers = list(palette)
    mappable = ScalarMappable(BoundaryNorm(np.arange(len(layers) + 1) - 0.5, len(layers)),
                              ListedColormap([palette[layer] for layer in layers]))
    bar = fig.colorbar(mappable, ax=axes, label="layer")
    step = max(1, len(layers) // 10)
    bar.set_ticks(range(0, len(layers), step), labels=[str(layer) for layer in layers[::step]])


def _grid(n_rows: int, n_cols: int, panel: tuple[float, float], **kwargs) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(panel[0] * n_cols, panel[1] * n_rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False, **kwargs))
    return fig, axes


# Row labels of the 2-D maps: "PCA · normalised_no_layer0" over each panel ran into its neighbours' titles.
REDUCTION_INPUTS = {"raw": "raw", "normalised": "unit norm", "no_layer0": "without layer 0",
                    "normalised_no_layer0": "unit norm,\nwithout layer 0"}


@printed
def plot_reductions(table: pd.DataFrame, point_size: float = 4.0) -> Figure:
    """2-D maps: one row per input variant (labelled on the left), one column per method (titled on top);
    points coloured by layer (colour bar)."""
    _require(table, ["x", "y", "layer", "method", "variant"], "reduction")
    variants, methods = list(dict.fromkeys(table["variant"])), list(dict.fromkeys(table["method"]))
    palette = layer_palette(table["layer"])
    layers = list(palette)
    fig, axes = _grid(len(variants), len(methods), ((LINE_WIDTH - 0.7) / len(methods), 1.75))
    for i, variant in enumerate(variants):
        for j, method in enumerate(methods):
            ax = axes[i, j]
            part = table[(table["variant"] == variant) & (table["method"] == method)]
            ax.scatter(part["x"], part["y"], c=[palette[layer] for layer in part["layer"]], s=point_size,
                       linewidths=0, rasterized=True)
            ax.set(title=method.upper() if i == 0 else "", xticks=[], yticks=[],
                   ylabel=REDUCTION_INPUTS.get(variant, variant) if j == 0 else "")
    _layer_colorbar(fig, axes, layers)
    return fig


@printed
def plot_confusion(table: pd.DataFrame) -> Figure:
    """Heatmap of the row-normalised confusion matrix (fraction of each true layer's vectors)."""
    _require(table, ["true_layer", "predicted_layer", "fraction"], "confusion")
    matrix = table.pivot(index="true_layer", columns="predicted_layer", values="fraction")
    fig, axes = _grid(1, 1, (HALF_WIDTH, 2.8))
    sns.heatmap(matrix, ax=axes[0, 0], cmap="viridis", vmin=0, vmax=1, square=True, xticklabels=5, yticklabels=5,
                cbar_kws={"label": "fraction of true layer"})
    axes[0, 0].set(xlabel="predicted layer", ylabel="true layer")
    return fig


@printed
def plot_training_curves(history: pd.DataFrame) -> Figure:
    """Loss and accuracy per epoch, train vs test; one column per `variant` (e.g. raw vs normalised)."""
    _require(history, ["epoch", "split", "metric", "value"], "history")
    history = history if "variant" in history.columns else history.assign(variant="")
    variants, metrics = list(dict.fromkeys(history["variant"])), ["loss", "accuracy"]
    fig, axes = _grid(len(metrics), len(variants), (LINE_WIDTH / len(variants), 1.6), sharex="col", sharey="row")
    for j, variant in enumerate(variants):
        for i, metric in enumerate(metrics):
            part = history[(history["variant"] == variant) & (history["metric"] == metric)]
            sns.lineplot(part, x="epoch", y="value", hue="split", ax=axes[i, j], legend=(i, j) == (0, 0))
            axes[i, j].set(ylabel=metric, title=str(variant).replace(": ", ":\n") if i == 0 else "")
    return fig


@printed
def plot_top_attributions(top: pd.DataFrame, sign_of: str = "weight") -> Figure:
    """Heatmap layer x rank of the top dimensions (the post's Fig 7): cell colour = share, red for a
    positive and blue for a negative `sign` (pass the weight's sign, as the post does: `top_with_weight_sign`;
    `sign_of` names it in the colour bar), the dimension index printed in the cell.

    One panel for all layers, so it stays legible at page width where one small bar chart per layer
    does not; the share scale is shared, so late layers' thin spread shows as pale rows.
    """
    _require(top, ["layer", "dim", "share", "sign", "rank"], "top-attribution")
    if "variant" in top.columns and top["variant"].nunique() > 1:
        raise ValueError("pass one attribution variant at a time (filter the `variant` column)")
    layers = sorted(top["layer"].unique())
    n_ranks = int(top["rank"].max())
    signed = np.full((len(layers), n_ranks), np.nan)
    dims = np.full((len(layers), n_ranks), -1)
    row_of = {layer: i for i, layer in enumerate(layers)}
    for layer, rank, share, sign, dim in top[["layer", "rank", "share", "sign", "dim"]].itertuples(index=False):
        signed[row_of[layer], int(rank) - 1] = share * (sign if sign != 0 else 1)
        dims[row_of[layer], int(rank) - 1] = dim
    limit = float(np.nanmax(np.abs(signed)))
    # sized to print near 1:1 at page width: 7 pt labels stay 7 pt
    fig = Figure(figsize=(LINE_WIDTH, 0.9 + 0.13 * len(layers)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(signed, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), dim in np.ndenumerate(dims):
        if dim >= 0:
            dark = abs(signed[i, j]) > 0.6 * limit
            ax.text(j, i, str(dim), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(np.arange(n_ranks), labels=[str(r) for r in range(1, n_ranks + 1)])
    ax.set_yticks(np.arange(len(layers)), labels=[str(layer) for layer in layers], fontsize=7)
    ax.set(xlabel="rank within layer (1 = largest share)", ylabel="layer")
    fig.colorbar(image, ax=ax, label=f"share (%), red: positive, blue: negative {sign_of}", shrink=0.6)
    return fig


@printed
def plot_cumulative_contributions(curve: pd.DataFrame, thresholds: Sequence[float] = (50.0, 90.0)) -> Figure:
    """Cumulative share against number of dimensions (log x), one line per layer, one panel per variant."""
    _require(curve, ["layer", "variant", "n_dims", "cumulative_share"], "cumulative-contribution")
    variants = list(dict.fromkeys(curve["variant"]))
    palette = layer_palette(curve["layer"])
    fig, axes = _grid(1, len(variants), ((LINE_WIDTH - 0.6) / len(variants), 2.4), sharey=True)
    for ax, variant in zip(axes.flat, variants):
        sns.lineplot(curve[curve["variant"] == variant], x="n_dims", y="cumulative_share", hue="layer",
                     palette=palette, ax=ax, legend=False, linewidth=0.9)
        for threshold in thresholds:
            ax.axhline(threshold, color="black", linestyle="--", linewidth=0.7)
        ax.set(xscale="log", xlabel="number of dimensions", ylabel="cumulative share (%)", title=variant)
        # Plain numbers: mathtext's 10^k prints its exponent at 0.7 of the tick size, below 7 pt.
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    _layer_colorbar(fig, axes, list(palette))
    return fig


@printed
def plot_accuracy_grid(table: pd.DataFrame) -> Figure:
    """The post's Fig 6: accuracy per N (texts), bars grouped by context length L, one panel per model."""
    _require(table, ["model", "n_texts", "context_length", "accuracy", "chance"], "accuracy-grid")
    models = list(dict.fromkeys(table["model"]))
    fig, axes = _grid(1, len(models), (LINE_WIDTH / len(models), 2.4), sharey=True)
    for ax, model in zip(axes.flat, models):
        part = table[table["model"] == model]
        sns.barplot(part, x="n_texts", y="accuracy", hue="context_length", palette="viridis", ax=ax)
        ax.axhline(part["chance"].iloc[0], color="black", linestyle="--", linewidth=0.8, label="chance")
        ax.set(title=model, xlabel="N (texts)", ylim=(0, 1))
        ax.legend(title="L", fontsize=7)
    return fig


@printed
def plot_condition_accuracy(table: pd.DataFrame) -> Figure:
    """Accuracy per condition as horizontal bars (condition names stay readable), one colour per model;
    each model's chance is a dashed line of its colour.

    Several rows per condition and model (e.g. label permutations) give a bar at their mean with a
    standard-deviation whisker.
    """
    _require(table, ["condition", "accuracy", "chance"], "condition")
    table = table if "model" in table.columns else table.assign(model="")
    models = list(dict.fromkeys(table["model"]))
    palette = dict(zip(models, sns.color_palette("colorblind", len(models))))
    n_conditions = table["condition"].nunique()
    fig = Figure(figsize=(LINE_WIDTH, min(8.0, 0.8 + 0.16 * n_conditions * max(1, len(models)) ** 0.5)),
                 layout="constrained")
    ax = fig.subplots()
    sns.barplot(table, y="condition", x="accuracy", hue="model", palette=palette, ax=ax, errorbar="sd",
                legend=len(models) > 1)
    for model in models:
        ax.axvline(table.loc[table["model"] == model, "chance"].iloc[0], color=palette[model], linestyle="--",
                   linewidth=0.9)
    if len(models) > 1:  # above the axes: the bars reach across the panel
        sns.move_legend(ax, "lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(models), frameon=False, title=None)
    ax.set(xlim=(0, 1), ylabel="", xlabel="test accuracy (dashed: chance)")
    return fig
