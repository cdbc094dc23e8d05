"""Figure: Study 3's anisotropy with all tokens and without the outlier tokens, one column per model, and what
share of sigma_1^2 the outliers carry compared with their share of the tokens."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

REQUIRED_COLUMNS = ("model", "layer", "anisotropy", "anisotropy_without", "sigma1_share", "outlier_share")


def plot_outlier_anisotropy(table: pd.DataFrame, *, k: float) -> Figure:
    """`table`: the per-layer outlier table stacked over models (column `model`). Top row: both anisotropy
    curves; bottom row: outliers' share of sigma_1^2 and of the tokens."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}")
    import matplotlib

    from layerwise.plots.checkpoints import PRINT_RC

    models = list(dict.fromkeys(table["model"]))
    # Drawn at its printed size: the text width (6.3 in) shared by the models, fonts 7-8 pt.
    with matplotlib.rc_context(PRINT_RC):
        return _draw_outlier_anisotropy(table, models, k)


def _draw_outlier_anisotropy(table: pd.DataFrame, models: list, k: float) -> Figure:
    fig = Figure(figsize=(6.3, 4.2), layout="constrained")
    axes = fig.subplots(2, len(models), squeeze=False, sharex="col", height_ratios=(3, 2))
    for col, model in enumerate(models):
        rows = table[table["model"] == model].sort_values("layer")
        top, bottom = axes[0, col], axes[1, col]
        top.plot(rows["layer"], rows["anisotropy"], "o-", ms=3, color="C0", label="all tokens (source)")
        top.plot(rows["layer"], rows["anisotropy_without"], "s--", ms=3, color="C3",
                 label=f"without outlier tokens (norm > {k:g}× median)")
        top.set_title(model)
        highest = float(rows[["anisotropy", "anisotropy_without"]].to_numpy().max())
        top.set_ylim(0, max(0.05, highest * 1.4))  # room for the legend above the curves
        top.set_ylabel("anisotropy")
        bottom.plot(rows["layer"], rows["sigma1_share"], "o-", ms=3, color="C2", label="outliers' share of the top direction's variance")
        bottom.plot(rows["layer"], rows["outlier_share"], ":", color="grey", label="outliers' share of tokens")
        bottom.set_ylim(-0.02, 1.02)
        bottom.set_xlabel("layer (0 = input embedding)")
        bottom.set_ylabel("share")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right")
    axes[1, 0].legend(loc="center right")
    return fig
