"""Learning curves of our own decoder/encoder training runs (the log of :func:`layerwise.training.runs.train`)."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

_REQUIRED = {"kind", "arch", "step", "split"}


def plot_learning_curves(log: pd.DataFrame, metric: str = "bits_per_byte",
                         splits: tuple[str, ...] = ("val",)) -> Figure:
    """One line per model (and dashed/solid per split) of ``metric`` against training step.

    The x axis is symlog (linear below step 1) so step 0, the seeded initialisation, sits on
    the same axis as the log-spaced checkpoints. The encoder curve is its masked-LM loss on
    masked positions: read its trend, not its level, against the decoder's next-byte loss.
    """
    missing = (_REQUIRED | {metric}) - set(log.columns)
    if missing:
        raise ValueError(f"training log lacks columns {sorted(missing)}")
    unknown = set(splits) - {"train", "val"}
    if unknown:
        raise ValueError(f"splits must be 'train' and/or 'val', got {sorted(unknown)}")
    data = log[log["split"].isin(splits)]
    if data.empty:
        raise ValueError(f"no rows with split in {splits}; log has {sorted(log['split'].unique())}")
    objective = data["kind"].map({"decoder": "causal", "encoder": "masked"}).fillna("?")
    data = data.assign(model=data["kind"] + " (" + data["arch"] + ", " + objective + ")")
    import matplotlib

    from layerwise.plots.checkpoints import PRINT_RC

    with matplotlib.rc_context(PRINT_RC):  # drawn at its printed size (0.6 of a 6.3 in text width)
        fig = Figure(figsize=(3.78, 2.7), layout="constrained")
        ax = fig.add_subplot()
        sns.lineplot(data=data, x="step", y=metric, hue="model", style="split", markers=True,
                     dashes={"val": "", "train": (3, 2)}, errorbar=None, ax=ax)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 1000, not 10^3 (tiny exponents)
        ax.set_xlim(left=0)
        ax.set_xlabel("training step (symlog)")
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(True, which="major", alpha=0.3)
    return fig
