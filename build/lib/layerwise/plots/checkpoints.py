"""Figures of geometry across training: per-layer profiles per checkpoint, layer-averaged ID per step."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from layerwise.training.summary import layer_means


PRINT_RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7.5,
            "ytick.labelsize": 7.5, "legend.fontsize": 7.5, "legend.title_fontsize": 7.5}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")


def _batch_range(batches: pd.DataFrame | None, metric: str, keys: list[str]) -> pd.DataFrame | None:
    """min and max over batches of ``metric`` per ``keys`` (None without a per-batch table)."""
    if batches is None or batches.empty or metric not in batches:
        return None
    return batches.groupby(keys)[metric].agg(["min", "max", "median"]).reset_index()


def _units(batches: pd.DataFrame | None) -> str:
    """What the error bars run over: held-out batches, and training seeds when there are several."""
    if batches is not None and "seed" in batches and batches["seed"].nunique() > 1:
        return f"{batches['seed'].nunique()} seeds x batches"
    return "batches"


def profiles_by_checkpoint(table: pd.DataFrame, metric: str = "anisotropy",
                           kinds: Sequence[str] = ("decoder", "encoder"), *, batches: pd.DataFrame | None = None,
                           width: float = 6.3, height: float = 2.9) -> Figure:
    """The paper's Figs 3-4: `metric` per layer, one line per checkpoint: a discrete colour (ordered, dark =
    early) and marker per step, named in the legend; error bars span the batches (min to max) when the
    per-batch table is given. Drawn at its printed size (``width`` inches), fonts 7-8 pt.

    `table`: columns kind, step, layer, metric, mean (the geometry table of every checkpoint); `batches`: the
    per-batch table (kind, step, layer, batch and one column per metric).
    """
    import matplotlib

    data = table[(table["metric"] == metric) & table["kind"].isin(kinds)].copy()
    if data.empty:
        raise ValueError(f"no rows for metric {metric!r} and kinds {list(kinds)}")
    data["layer"] = data["layer"].astype(int)
    steps = sorted(data["step"].unique())
    colours = dict(zip(steps, sns.color_palette("viridis", len(steps))))
    spread, units = None, _units(batches)
    if batches is not None:
        numbered = batches.assign(layer=pd.to_numeric(batches["layer"], errors="coerce")).dropna(subset=["layer"])
        spread = _batch_range(numbered.assign(layer=numbered["layer"].astype(int)), metric, ["kind", "step", "layer"])
    with matplotlib.rc_context(PRINT_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
        for ax, kind in zip(axes, kinds):
            for i, step in enumerate(steps):
                rows = data[(data["kind"] == kind) & (data["step"] == step)].sort_values("layer")
                offset = (i - (len(steps) - 1) / 2) * 0.012  # steps side by side, error bars apart
                yerr = None
                if spread is not None:
                    r = spread[(spread["kind"] == kind) & (spread["step"] == step)].set_index("layer")
                    r = r.reindex(rows["layer"])
                    yerr = [(rows["mean"].to_numpy() - r["min"].to_numpy()).clip(0),
                            (r["max"].to_numpy() - rows["mean"].to_numpy()).clip(0)]
                ax.errorbar(rows["layer"] + offset, rows["mean"], yerr=yerr, color=colours[step],
                            marker=MARKERS[i % len(MARKERS)], ms=3, lw=1.0, elinewidth=0.7, capsize=1.5,
                            label=f"{step}")
            ax.set_title(f"{kind}")
            ax.set_xlabel("layer")
        axes[0].set_ylabel(metric.replace("_", " ") + (f"\n(bars: min to max over {units})" if spread is not None
                                                       else ""))
        axes[-1].legend(title="step", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, ncol=1)
    return fig


def layer_mean_by_step(table: pd.DataFrame, metric: str = "twonn_id", *, include_layer0: bool = False,
                       batches: pd.DataFrame | None = None, width: float = 3.45, height: float = 2.6) -> Figure:
    """The paper's Fig 2: `metric` averaged over layers (layer 0 only if asked) against the training
    step (symlog x); with the per-batch table, the median over batches with error bars from min to max."""
    import matplotlib

    data = table[table["metric"] == metric]
    if data.empty:
        raise ValueError(f"no rows for metric {metric!r}")
    mean = layer_means(table, metric, include_layer0=include_layer0)
    with matplotlib.rc_context(PRINT_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.add_subplot()
        if batches is not None and not batches.empty and metric in batches:
            rows = batches.assign(layer=pd.to_numeric(batches["layer"], errors="coerce")).dropna(subset=["layer"])
            if not include_layer0:
                rows = rows[rows["layer"] > 0]
            unit = ["seed", "batch"] if "seed" in rows else ["batch"]
            per_batch = rows.groupby(["kind", "step", *unit])[metric].mean().reset_index()
            spread = _batch_range(per_batch, metric, ["kind", "step"])
            for kind, r in spread.groupby("kind", sort=True):
                ax.errorbar(r["step"], r["median"], yerr=[r["median"] - r["min"], r["max"] - r["median"]],
                            marker="o", ms=3, lw=1.1, capsize=2, label=kind)
            ax.legend(frameon=False)
        else:
            sns.lineplot(data=mean, x="step", y="mean", hue="kind", marker="o", ax=ax)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1000, not 10^3 (tiny exponents)
        ax.set_xlim(left=0)
        ax.set_xlabel("training step (symlog)")
        first = "0" if include_layer0 else "1"
        ax.set_ylabel(f"{metric.replace('_', ' ')}, mean of layers {first}..n")
        if batches is not None and not batches.empty and metric in batches:
            ax.set_title(f"median, bars min to max over {_units(batches)}")
    return fig
