"""Figures of the logit lens: the per-text heatmaps of nostalgebraist's post and the dataset-level curves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from layerwise.lens.labels import FINAL  # noqa: E402
from layerwise.lens.stats import METRICS  # noqa: E402

HEATMAP_VALUES: dict[str, str] = {
    "top1_logit": "logit of the top-1 token",
    "final_top1_rank": "rank of the final top-1 token",
    "kl_final": "KL(final ‖ layer) [nats]",
    "kl_input": "KL(input ‖ layer) [nats]",
    "input_token_rank": "rank of the input token",
}
RANK_CAPS: dict[str, float] = {"final_top1_rank": 100.0, "input_token_rank": 1000.0}  # the post's colour scales
METRIC_LABELS: dict[str, str] = {
    "kl_final": "KL(final ‖ layer)\n[nats]",
    "kl_input": "KL(input ‖ layer)\n[nats]",
    "agreement": "top-1 =\nfinal top-1",
    "top5": "final top-1\nin top 5",
    "log10_rank": "log10 rank of\nfinal top-1",
    "log10_input_rank": "log10 rank of\ninput token",
    "nll": "next-token NLL [nats]",
}
_TOKEN_COLUMNS = ("top1_token", "input_token", "next_token")


def token_label(token: str | None, max_chars: int = 8) -> str:
    """A short, visible, mathtext-safe label: spaces as '·', control characters escaped, '…' if cut."""
    if token is None or (isinstance(token, float) and math.isnan(token)):
        return ""
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in token)
    text = text.replace(" ", "·").replace("$", r"\$")
    return text if len(text) <= max_chars else text[:max_chars - 1] + "…"


def resolve_window(window: Sequence[int | None], n_positions: int) -> tuple[int, int]:
    """(start, stop) of a position window given as a Python slice (negative = from the end, None = the
    end), clipped to the text; e.g. (-20, None) is the last 20 positions, as the post truncates its
    plasma example."""
    if len(window) != 2:
        raise ValueError(f"a position window is (start, stop), got {window!r}")
    start, stop, _ = slice(*window).indices(n_positions)
    if stop <= start:
        raise ValueError(f"position window {tuple(window)} is empty for a text of {n_positions} positions")
    return start, stop


def _select_rows(layers: pd.Series, depths: pd.Series, layer_step: int) -> pd.Series:
    """The input row, block 1 (where the post's input-discarding jump is), every `layer_step`-th block (by
    block number; sub-blocks follow their block) and the last block, each once: the model's own output
    ("final") is not a row of its own, because with the `full` decoder it repeats the last block and with
    the others it is not a lens reading."""
    blocks = np.ceil(depths).astype(int)
    last_block = blocks[layers != FINAL].max()
    return (layers != FINAL) & ((blocks % layer_step == 0) | (blocks == 1) | (blocks == last_block))


def shown_blocks(n_blocks: int, layer_step: int) -> list[int]:
    """The block numbers `_select_rows` keeps for a model of `n_blocks` blocks (0 = the input row)."""
    return [b for b in range(n_blocks + 1) if b % layer_step == 0 or b in (1, n_blocks)]


def _colour_kwargs(value: str, values: np.ndarray, kl_cap: float, rank_cap: float | None) -> dict:
    """Colour scales of the post: KL capped at 30 nats on both KL plots, final-top-1 ranks saturating at
    100 and input-token ranks at 1000; top-1 logits over their 5-95 percentile range (transformer-utils)
    of the block rows only: `values` must not hold the input row, whose logits (the token's own embedding
    against the unembedding) are far larger and would darken every other cell (the post leaves it out)."""
    if value == "top1_logit":
        low, high = np.nanpercentile(values, [5, 95])  # transformer-utils' robust range
        return {"cmap": "cividis", "vmin": low, "vmax": high}
    if value in ("kl_final", "kl_input"):
        return {"cmap": "magma_r", "vmin": 0.0, "vmax": kl_cap}
    cap = rank_cap if rank_cap is not None else RANK_CAPS[value]
    return {"cmap": "Blues", "norm": LogNorm(vmin=1, vmax=cap)}


def plot_lens_heatmap(table: pd.DataFrame, *, value: str = "top1_logit", text: str | int | None = None,
                      layer_step: int = 1, positions: tuple[int, int] | None = None, max_token_chars: int = 7,
                      kl_cap: float = 30.0, rank_cap: float | None = None, width: float | None = None,
                      cell_fontsize: float = 7.0, title: str | None = None, block_outputs_only: bool = False
                      ) -> plt.Figure:
    """The post's heatmap for one text: rows = layers (final on top), columns = positions.

    Rows: the input (layer 0) and each block once (see `_select_rows`). Cells show the layer's top-1
    token, are coloured by `value` (one of HEATMAP_VALUES; KL is capped at `kl_cap`; ranks on a log
    scale capped at `rank_cap`, default `RANK_CAPS` as in the post, darker = worse), and are outlined
    where the top-1 equals the model's final top-1. Input tokens label the bottom axis; the true next
    tokens label the top axis, starred where the model's final prediction is right. `table` comes
    from `logit_lens_texts` (it needs the token-string columns of `add_token_text`); `positions` =
    (start, stop) keeps positions start..stop-1 (see `resolve_window`). The figure is sized so that
    a window of 14 positions of word tokens prints legibly at a page's width (cells 0.4 in, text 7 pt);
    `width` (inches) fixes the figure's width instead, for a figure placed at that printed width (the
    paper's: 6.3 in = \\linewidth, so its 7 pt text prints at 7 pt). `title` replaces the default title
    (text and value), e.g. to name the model and decoder. `block_outputs_only` drops the attention
    sub-block rows ("i.attn") of a sub-block lens, so each block is one row.
    """
    if value not in HEATMAP_VALUES:
        raise ValueError(f"unknown heatmap value {value!r}; choose one of {tuple(HEATMAP_VALUES)}")
    missing = {"text", "layer", "depth", "position", "top1_id", "final_top1_id", value, *_TOKEN_COLUMNS} - set(
        table.columns)
    if missing:
        raise ValueError(f"lens table lacks columns {sorted(missing)} (token strings come from add_token_text)")
    if layer_step < 1:
        raise ValueError("layer_step must be positive")
    for column in ("model", "decoder"):
        if column in table and table[column].nunique() > 1:
            raise ValueError(f"table mixes several {column}s {sorted(table[column].unique())}; pass one")
    texts = list(dict.fromkeys(table["text"]))
    if text is None:
        if len(texts) != 1:
            raise ValueError(f"table holds {len(texts)} texts; choose one with text= from {texts[:10]}")
        text = texts[0]
    sub = table[table["text"] == text]
    if sub.empty:
        raise ValueError(f"text {text!r} not in table")
    if positions is not None:
        sub = sub[(sub["position"] >= positions[0]) & (sub["position"] < positions[1])]
        if sub.empty:
            raise ValueError(f"no positions in {positions}")
    sub = sub[_select_rows(sub["layer"], sub["depth"], layer_step).to_numpy()]
    if block_outputs_only:  # a sub-block lens: keep the block outputs ("i.mlp"), one row per block
        sub = sub[~sub["layer"].astype(str).str.endswith(".attn")]

    order = sub.drop_duplicates("layer").sort_values("depth", ascending=False)["layer"].tolist()
    wide = sub.pivot(index="layer", columns="position", values=value).loc[order]
    cells = sub.pivot(index="layer", columns="position", values="top1_token").loc[order]
    match = (sub.assign(m=sub["top1_id"] == sub["final_top1_id"])
             .pivot(index="layer", columns="position", values="m").loc[order].to_numpy())
    per_position = sub.drop_duplicates("position").set_index("position").loc[wide.columns]
    values = wide.to_numpy(dtype=float)
    if value.endswith("rank"):
        values = np.clip(values, 1, None)
    elif value.startswith("kl"):
        values = np.clip(values, 0, kl_cap)

    n_rows, n_cols = values.shape
    sns.set_theme(style="white", context="paper", rc={"font.size": 8, "axes.labelsize": 8, "xtick.labelsize": 7.5,
                                                      "ytick.labelsize": 7.5, "axes.titlesize": 8.5})
    size = (width if width is not None else 0.4 * n_cols + 1.9, 0.135 * n_rows + 1.35)  # two fit a letter page
    fig, ax = plt.subplots(figsize=size)
    annot = np.vectorize(lambda t: token_label(t, max_token_chars), otypes=[str])(cells.to_numpy(dtype=object))
    blocks = np.array([label != "0" for label in order])  # the colour range of top-1 logits: block rows only
    scale_values = values[blocks] if blocks.any() else values
    sns.heatmap(values, ax=ax, annot=annot, fmt="", annot_kws={"fontsize": cell_fontsize},
                cbar_kws={"label": HEATMAP_VALUES[value]}, **_colour_kwargs(value, scale_values, kl_cap, rank_cap))
    for i, j in zip(*np.nonzero(match)):
        ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="black", lw=1.0))
    colorbar = ax.collections[0].colorbar
    if colorbar is not None and isinstance(colorbar.norm, LogNorm):
        # Plain numbers on a log colour scale: mathtext's 10^k prints its exponent below 7 pt.
        colorbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        colorbar.ax.yaxis.set_minor_formatter(NullFormatter())

    ticks = np.arange(n_cols) + 0.5
    ax.set_xticks(ticks, [token_label(t, max_token_chars) for t in per_position["input_token"]],
                  rotation=45, ha="right")
    ax.set_yticks(np.arange(n_rows) + 0.5, order, rotation=0)
    ax.set_xlabel("input token")
    ax.set_ylabel("layer")
    right = (per_position["final_top1_id"] == per_position["next_token_id"]).fillna(False).to_numpy(dtype=bool)
    top = ax.secondary_xaxis("top")
    top.set_xticks(ticks, [("*" if ok else "") + token_label(t, max_token_chars)
                           for ok, t in zip(right, per_position["next_token"])], rotation=45, ha="left")
    top.set_xlabel("true next token (* = final top-1 is right)")
    ax.set_title(title if title is not None else f"{text}: {HEATMAP_VALUES[value]}")
    fig.tight_layout()
    return fig


def plot_lens_curves(summary: pd.DataFrame, *, metrics: Sequence[str] = METRICS, hue: str = "model",
                     col: str = "decoder", relative_depth: bool = False, skip_input: bool = False,
                     width: float | None = None, row_height: float = 2.1, col_titles: dict[str, str] | None = None
                     ) -> plt.Figure:
    """Dataset-level curves from `summarize_lens`: one row per metric, one column per `col` value
    (decoders side by side), one line per `hue` value (model) with its bootstrap band. The trivial
    "final" row is left out; `relative_depth` divides depth by each model's number of blocks so
    models of different depth share an axis; `skip_input` leaves out the input row (layer 0), whose KL
    values (~100 nats) would flatten every block's; `width` (inches) sets the figure's printed width
    (fonts 7-8 pt), `col_titles` the panel titles by column value."""
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
    data = summary[(summary["layer"] != FINAL) & summary["metric"].isin(metrics)].copy()
    if skip_input:
        data = data[data["depth"].astype(float) > 0]
    if data.empty:
        raise ValueError("summary has no rows to plot")
    data["_hue"] = data[hue] if hue in data else ""
    data["_col"] = data[col] if col in data else ""
    if relative_depth:
        data["depth"] = data["depth"] / data.groupby("_hue")["depth"].transform("max")
    columns, hues = list(dict.fromkeys(data["_col"])), list(dict.fromkeys(data["_hue"]))
    palette = dict(zip(hues, sns.color_palette("colorblind", len(hues))))
    sns.set_theme(style="whitegrid", context="paper", rc={"font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8,
                                                          "xtick.labelsize": 7.5, "ytick.labelsize": 7.5,
                                                          "legend.fontsize": 8})
    fig_width = width if width is not None else 3.2 * len(columns)
    fig, axes = plt.subplots(len(metrics), len(columns), figsize=(fig_width, row_height * len(metrics) + 0.3),
                             squeeze=False, sharex=True, sharey="row")
    for r, metric in enumerate(metrics):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            for name in hues:
                line = data[(data["metric"] == metric) & (data["_col"] == column) & (data["_hue"] == name)]
                line = line.sort_values("depth")
                if line.empty:
                    continue
                ax.fill_between(line["depth"], line["ci_low"], line["ci_high"], color=palette[name], alpha=0.25,
                                lw=0)
                sns.lineplot(x=line["depth"].to_numpy(), y=line["mean"].to_numpy(), ax=ax, color=palette[name],
                             marker="o", markersize=3, label=str(name) if (r, c) == (0, 0) else None, legend=False)
            if r == 0:
                title = (col_titles or {}).get(column, f"{col} = {column}")
                ax.set_title(title if column != "" else "")
            if c == 0:
                ax.set_ylabel(METRIC_LABELS[metric])
            if r == len(metrics) - 1:
                ax.set_xlabel(("relative depth" if relative_depth else "layer")
                              + (" (input row left out)" if skip_input else " (0 = embedding)"))
    if hues != [""]:
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", ncol=len(hues),
                   frameon=False, bbox_to_anchor=(0.5, 1.0))
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.25 / fig.get_figheight()))
    else:
        fig.tight_layout()
    return fig
