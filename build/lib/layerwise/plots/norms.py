"""Figure: L2 norm of the residual stream per layer, one panel per model, log scale."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def norm_profile(table: pd.DataFrame) -> plt.Figure:
    """`table`: model, layer (int), stat, value. Median line, 25-75% and 5-95% bands, min/max dotted."""
    models = list(dict.fromkeys(table["model"]))
    sns.set_theme(style="whitegrid", context="paper", rc={"font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8,
                                                          "xtick.labelsize": 7.5, "ytick.labelsize": 7.5})
    # Drawn at the width it is printed at (the text width, 6.3 in), so 7.5-8 pt here is 7.5-8 pt on paper.
    fig, axes = plt.subplots(1, len(models), figsize=(6.3, 2.6), squeeze=False)
    for ax, model in zip(axes[0], models):
        wide = table[table["model"] == model].pivot(index="layer", columns="stat", values="value").sort_index()
        x = wide.index.to_numpy()
        ax.fill_between(x, wide["q05"], wide["q95"], alpha=0.2, color="C0", label="5–95%")
        ax.fill_between(x, wide["q25"], wide["q75"], alpha=0.4, color="C0", label="25–75%")
        sns.lineplot(x=x, y=wide["q50"].to_numpy(), ax=ax, color="navy", linewidth=1.4, label="median")
        sns.lineplot(x=x, y=wide["mean"].to_numpy(), ax=ax, color="C1", linestyle="--", label="mean")
        ax.plot(x, wide["min"], ":", color="grey", lw=0.8)
        ax.plot(x, wide["max"], ":", color="grey", lw=0.8, label="min / max")
        ax.set_yscale("log")
        # Plain numbers on the log axis: mathtext's 10^k prints the exponent at 0.7 of the label size (< 7 pt).
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(model)
        ax.set_xlabel("layer (0 = input embedding)")
        ax.set_ylabel("L2 norm")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
