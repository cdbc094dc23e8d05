"""Figures of geometry across training: per-layer profiles per checkpoint, layer-averaged ID per step."""

from __future__ import annotations

from typing import Sequence

import matplotlib.colors as mcolors
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from layerwise.training.summary import layer_means


def profiles_by_checkpoint(table: pd.DataFrame, metric: str = "anisotropy",
                           kinds: Sequence[str] = ("decoder", "encoder")) -> Figure:
    """The paper's Figs 3-4: `metric` per layer, one line per checkpoint (colour = step, log scale).

    `table`: columns kind, step, layer, metric, mean (the geometry table of every checkpoint).
    """
    data = table[(table["metric"] == metric) & table["kind"].isin(kinds)].copy()
    if data.empty:
        raise ValueError(f"no rows for metric {metric!r} and kinds {list(kinds)}")
    data["layer"] = data["layer"].astype(int)
    steps = sorted(data["step"].unique())
    norm = mcolors.SymLogNorm(linthresh=1.0, vmin=0, vmax=max(steps))
    cmap = sns.color_palette("viridis", as_cmap=True)
    fig = Figure(figsize=(4.0 * len(kinds), 3.3), layout="constrained")
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        for step in steps:
            rows = data[(data["kind"] == kind) & (data["step"] == step)].sort_values("layer")
            ax.plot(rows["layer"], rows["mean"], color=cmap(norm(step)), marker="o", ms=2.5, lw=1.2)
        ax.set_title(f"{kind}")
        ax.set_xlabel("layer")
    axes[0].set_ylabel(metric.replace("_", " "))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), label="training step")
    return fig


def layer_mean_by_step(table: pd.DataFrame, metric: str = "twonn_id", *, include_layer0: bool = False) -> Figure:
    """The paper's Fig 2: `metric` averaged over layers (layer 0 only if asked) against the training
    step (symlog x)."""
    data = table[table["metric"] == metric]
    if data.empty:
        raise ValueError(f"no rows for metric {metric!r}")
    mean = layer_means(table, metric, include_layer0=include_layer0)
    fig = Figure(figsize=(4.6, 3.3), layout="constrained")
    ax = fig.add_subplot()
    sns.lineplot(data=mean, x="step", y="mean", hue="kind", marker="o", ax=ax)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_xlabel("training step (symlog)")
    first = "0" if include_layer0 else "1"
    ax.set_ylabel(f"{metric.replace('_', ' ')}, mean of layers {first}..n")
    return fig

