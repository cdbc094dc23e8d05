"""The cross-study figure: every per-layer quantity against relative depth, one panel each, all models overlaid.

Relative depth (layer / n_layers) puts models of different depth on one axis, so a reader sees where a
decoder's anisotropy and ID peak, where the probe tells layers apart best and where the lens becomes legible.
Decoders are solid lines with circles, encoders dashed with squares; bands are per-layer bootstrap intervals
over texts where the quantity has them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

PANELS: dict[str, str] = {
    "probe_recall": "probe recall (own layer)",
    "anisotropy": "anisotropy (top eigenvalue share)",
    "twonn_id": "TwoNN intrinsic dimension",
    "mean_norm": "mean norm $\\|x\\|$",
    "kl_final": "KL(final $\\|$ layer), nats",
    "kl_input": "KL(input $\\|$ layer), nats",
    "agreement": "top-1 agreement with output",
}
STYLE = {"decoder": dict(linestyle="-", marker="o"), "encoder": dict(linestyle="--", marker="s")}


def plot_crossstudy(table: pd.DataFrame, quantities: Sequence[str] = tuple(PANELS)) -> Figure:
    """One panel per quantity present in `table` (the joined per-layer table over models: model, kind,
    relative_depth, <quantity>, optional <quantity>_low/_high); the mean norm on a log scale."""
    present = [q for q in quantities if q in table and table[q].notna().any()]
    if not present:
        raise ValueError(f"the table has none of the quantities {list(quantities)}")
    models = list(dict.fromkeys(table["model"]))
    palette = dict(zip(models, sns.color_palette("colorblind", len(models))))
    n_cols = 3
    n_rows = -(-(len(present) + 1) // n_cols)  # one spare cell holds the legend
    # Drawn at its printed width (the text width, 6.3 in): 7.5-8 pt here is 7.5-8 pt on paper.
    fig = Figure(figsize=(6.3, 2.0 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, quantity in zip(axes, present):
        for model, rows in table.groupby("model", sort=False):
            rows = rows.sort_values("relative_depth")
            if rows[quantity].isna().all():
                continue
            kind = rows["kind"].iloc[0]
            ax.plot(rows["relative_depth"], rows[quantity], color=palette[model], markersize=3, linewidth=1.3,
                    **STYLE.get(kind, STYLE["decoder"]))
            low, high = f"{quantity}_low", f"{quantity}_high"
            if low in rows and rows[low].notna().any():
                ax.fill_between(rows["relative_depth"], rows[low], rows[high], color=palette[model], alpha=0.2,
                                linewidth=0)
        ax.set_title(PANELS.get(quantity, quantity), fontsize=8)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7.5)
        # Plain tick numbers: mathtext exponents and a shared offset ("1e-4") print below 7 pt.
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        if quantity == "mean_norm":
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
    for ax in axes[len(present):]:
        ax.axis("off")
    for ax in axes[max(0, len(present) - n_cols):len(present)]:
        ax.set_xlabel("relative depth", fontsize=8)
    kinds = dict(table.drop_duplicates("model").set_index("model")["kind"])
    handles = [Line2D([], [], color=palette[m], markersize=4, **STYLE.get(kinds[m], STYLE["decoder"]),
                      label=f"{m} ({kinds[m]})") for m in models]
    axes[len(present)].legend(handles=handles, loc="center", fontsize=7.5, frameon=False,
                              title="band: bootstrap interval\nover texts", title_fontsize=7.5)
    return fig
