"""Dataset-level logit-lens curves: per layer, token-weighted means with text-level bootstrap intervals.

Why a bootstrap over texts rather than a t-interval over tokens: tokens of one text share their
context (in a repetitive text, most of them are near copies), so they are not independent draws;
the text is the sampling unit. The point estimate is the mean over all tokens (a ratio of per-text
sums to per-text counts), and resampling whole texts and recomputing that same ratio gives an
interval for exactly this estimator, with no normality assumption on the skewed per-token KL and
rank distributions. One seeded draw of text multiplicities is shared by all layers and metrics, so
the output is deterministic and the intervals of neighbouring layers are computed coherently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from layerwise.lens.labels import FINAL

METRICS: tuple[str, ...] = ("kl_final", "kl_input", "agreement", "top5", "log10_rank", "log10_input_rank", "nll")
SUMMARY_VALUE_COLUMNS: tuple[str, ...] = ("metric", "mean", "ci_low", "ci_high", "n_texts", "n_tokens")


def token_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Per-row metrics: KL(final || layer) and KL(input || layer), the post's "input discarding"; agreement
    of the top-1 with the final top-1 (0/1); the final top-1 within the layer's top 5 (0/1); log10 rank of
    the final top-1 and of the input token (ranks are heavy-tailed, so their mean is taken on the log
    scale, i.e. a geometric mean); true next token NLL in nats (NaN at each text's last position)."""
    missing = {"kl_final", "kl_input", "top1_id", "final_top1_id", "final_top1_rank", "input_token_rank",
               "next_token_logprob"} - set(table.columns)
    if missing:
        raise ValueError(f"lens table lacks columns {sorted(missing)}")
    return pd.DataFrame({
        "kl_final": table["kl_final"].astype("float64"),
        "kl_input": table["kl_input"].astype("float64"),
        "agreement": (table["top1_id"] == table["final_top1_id"]).astype("float64"),
        "top5": (table["final_top1_rank"] <= 5).astype("float64"),
        "log10_rank": np.log10(table["final_top1_rank"].astype("float64")),
        "log10_input_rank": np.log10(table["input_token_rank"].astype("float64")),
        "nll": -table["next_token_logprob"].astype("float64"),
    }, index=table.index)


def select_positions(table: pd.DataFrame, *, include_position0: bool) -> pd.DataFrame:
    """The rows the dataset statistics use: without position 0 unless asked for.

    Position 0 has no context (for SmolLM2 it is a real token, not a BOS marker), so every layer
    there predicts from the token alone; the other studies leave it out by default for the same reason.
    """
    if "position" not in table.columns:
        raise ValueError("lens table lacks column 'position'")
    return table if include_position0 else table[table["position"] > 0]


def _multiplicities(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n_units] counts of how often each text is drawn in each bootstrap resample."""
    draws = np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))
    weights = np.zeros((n_boot, n_units))
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1.0)
    return weights


def summarize_lens(table: pd.DataFrame, *, by: Sequence[str] = ("layer", "depth"), unit: str = "text",
                   confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per group of `by` (add e.g. "model", "decoder") and metric: token-weighted mean and a percentile
    bootstrap interval resampling `unit`s (texts). Columns: *by, metric, mean, ci_low, ci_high,
    n_texts, n_tokens. Intervals are NaN for groups with fewer than two texts."""
    by = list(by)
    missing = set(by + [unit]) - set(table.columns)
    if missing:
        raise ValueError(f"lens table lacks columns {sorted(missing)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError("n_boot must be positive")
    if table.empty:
        raise ValueError("empty lens table")
    for column in ("model", "decoder"):
        if column in table and column not in by and table[column].nunique() > 1:
            raise ValueError(f"table mixes several {column}s {sorted(table[column].unique())}: add {column!r} to by")
    codes, units = pd.factorize(table[unit], sort=True)
    metrics = token_metrics(table)
    frame = pd.concat([table[by], metrics], axis=1).assign(_unit=codes)
    grouped = frame.groupby(by + ["_unit"], sort=False)
    sums, counts = grouped[list(METRICS)].sum(), grouped[list(METRICS)].count()
    weights = _multiplicities(len(units), n_boot, seed)
    tail = 100 * (1 - confidence) / 2
    rows = []
    for key, group_sums in sums.groupby(level=by, sort=False):
        unit_codes = group_sums.index.get_level_values("_unit")
        s = np.zeros((len(units), len(METRICS)))
        c = np.zeros_like(s)
        s[unit_codes] = group_sums.to_numpy()
        c[unit_codes] = counts.loc[group_sums.index].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s.sum(0) / c.sum(0)
            boot = (weights @ s) / (weights @ c)
        n_texts = (c > 0).sum(0)
        low, high = np.nanpercentile(boot, [tail, 100 - tail], axis=0)
        key = key if isinstance(key, tuple) else (key,)
        for k, metric in enumerate(METRICS):
            enough = n_texts[k] >= 2
            rows.append((*key, metric, mean[k], low[k] if enough else np.nan, high[k] if enough else np.nan,
                         int(n_texts[k]), int(c[:, k].sum())))
    return pd.DataFrame(rows, columns=by + list(SUMMARY_VALUE_COLUMNS))


CHANGE_COLUMNS: tuple[str, ...] = ("metric", "from_layer", "to_layer", "mean_from", "mean_to", "change",
                                    "ci_low", "ci_high", "n_texts", "n_tokens")


def layer_change(table: pd.DataFrame, *, metrics: Sequence[str] = ("kl_final", "kl_input"), from_layer: str = "0",
                 to_layer: str = "1", by: Sequence[str] = (), unit: str = "text", confidence: float = 0.95,
                 n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """How far each metric's token-weighted mean moves from `from_layer` to `to_layer` (to minus from),
    with a percentile bootstrap interval resampling `unit`s (texts): the post's "input discarding" is
    the jump of KL(final || .) and KL(input || .) between the input row and the first block.

    Both layers are resampled with the same texts, so the interval is that of the paired change, not
    of two independent means. Columns: *by, CHANGE_COLUMNS."""
    by = list(by)
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
    missing = set(by + [unit, "layer"]) - set(table.columns)
    if missing:
        raise ValueError(f"lens table lacks columns {sorted(missing)}")
    codes, units = pd.factorize(table[unit], sort=True)
    weights = _multiplicities(len(units), n_boot, seed)
    tail = 100 * (1 - confidence) / 2
    values = pd.concat([table[by + ["layer"]], token_metrics(table)[list(metrics)]], axis=1).assign(_unit=codes)
    rows = []
    for key, group in (values.groupby(by, sort=False) if by else [((), values)]):
        key = key if isinstance(key, tuple) else (key,)
        per_layer = {}
        for layer in (from_layer, to_layer):
            rows_of_layer = group[group["layer"] == layer]
            if rows_of_layer.empty:
                raise ValueError(f"no rows of layer {layer!r} for {dict(zip(by, key))}")
            grouped = rows_of_layer.groupby("_unit")[list(metrics)]
            sums = grouped.sum().reindex(range(len(units)), fill_value=0.0).to_numpy()
            counts = grouped.count().reindex(range(len(units)), fill_value=0).to_numpy().astype(float)
            per_layer[layer] = (sums, counts)
        (s0, c0), (s1, c1) = per_layer[from_layer], per_layer[to_layer]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean0, mean1 = s0.sum(0) / c0.sum(0), s1.sum(0) / c1.sum(0)
            boot = (weights @ s1) / (weights @ c1) - (weights @ s0) / (weights @ c0)
        low, high = np.nanpercentile(boot, [tail, 100 - tail], axis=0)
        n_texts = ((c0 > 0) & (c1 > 0)).sum(0)
        for k, metric in enumerate(metrics):
            enough = n_texts[k] >= 2
            rows.append((*key, metric, from_layer, to_layer, mean0[k], mean1[k], mean1[k] - mean0[k],
                         low[k] if enough else np.nan, high[k] if enough else np.nan, int(n_texts[k]),
                         int(c1[:, k].sum())))
    return pd.DataFrame(rows, columns=by + list(CHANGE_COLUMNS))


def first_layer_above(summary: pd.DataFrame, *, metric: str = "agreement", threshold: float = 0.5,
                      layer: str = "layer", depth: str = "depth") -> pd.DataFrame:
    """Per group (every column of `summary` besides layer, depth and the value columns), the shallowest
    layer whose mean `metric` exceeds `threshold`, ignoring the trivial "final" row; NaN if none."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    groups = [c for c in summary.columns if c not in {layer, depth, *SUMMARY_VALUE_COLUMNS}]
    rows = summary[(summary["metric"] == metric) & (summary[layer] != FINAL)]
    if rows.empty:
        raise ValueError(f"summary has no non-final rows for metric {metric!r}")
    out = []
    for key, group in (rows.groupby(groups, sort=False) if groups else [((), rows)]):
        above = group[group["mean"] > threshold].sort_values(depth)
        first = above.iloc[0] if len(above) else None
        key = key if isinstance(key, tuple) else (key,)
        out.append((*key, first[layer] if first is not None else None,
                    first[depth] if first is not None else np.nan))
    return pd.DataFrame(out, columns=groups + [layer, depth])


def subblock_steps(summary: pd.DataFrame, metric: str = "kl_final") -> pd.DataFrame:
    """Per block of a sub-block lens summary (one model and decoder, rows "0", "i.attn", "i.mlp"): how far the
    mean `metric` moves across the block's attention sub-block (from the previous block's output, or the input
    row, to "i.attn") and across its MLP ("i.attn" to "i.mlp"). Columns: block, attn, mlp. Empty when the
    summary has no sub-block rows."""
    rows = summary[summary["metric"] == metric].set_index("layer")["mean"]
    if rows.index.duplicated().any():
        raise ValueError("summary holds several models or decoders: pass one")
    out, block = [], 1
    previous = "0"
    while f"{block}.attn" in rows.index and f"{block}.mlp" in rows.index:
        attn, mlp = rows[f"{block}.attn"], rows[f"{block}.mlp"]
        out.append((block, attn - rows[previous], mlp - attn))
        previous, block = f"{block}.mlp", block + 1
    return pd.DataFrame(out, columns=["block", "attn", "mlp"])


def position_buckets(positions: pd.Series, edges: Sequence[int]) -> pd.Series:
    """Label each position by its bucket [a, b) of ascending `edges`, e.g. "16-63"; positions outside every
    bucket get <NA> (a caller drops them)."""
    edges = [int(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"bucket edges must be at least two ascending integers, got {edges}")
    labels = [f"{a}-{b - 1}" for a, b in zip(edges, edges[1:])]
    codes = np.searchsorted(np.asarray(edges), positions.to_numpy(), side="right") - 1
    inside = (codes >= 0) & (codes < len(labels))
    out = pd.Series(pd.NA, index=positions.index, dtype="object")
    out[inside] = np.asarray(labels, dtype=object)[codes[inside]]
    return out


def top1_overlap(tables: dict[str, pd.DataFrame], pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Per block output and pair of decoders (a, b): the share of positions where their top-1 tokens agree.
    `tables` maps a decoder name to its lens table of the same texts (rows matched on text, layer,
    position). On an RMSNorm model `norm_only` and `none` agree everywhere (a positive scale per position);
    on LayerNorm the centring can change the top-1. Columns: pair, layer, depth, agree, n."""
    keys = ["text", "layer", "position"]
    out = []
    for a, b in pairs:
        left = tables[a][[*keys, "depth", "top1_id"]]
        right = tables[b][[*keys, "top1_id"]]
        merged = left.merge(right, on=keys, suffixes=("_a", "_b"), validate="one_to_one")
        if len(merged) != len(left) or len(merged) != len(right):
            raise ValueError(f"tables of {a} and {b} do not hold the same rows")
        merged = merged[merged["layer"] != FINAL]
        merged["agree"] = (merged["top1_id_a"] == merged["top1_id_b"]).astype(float)
        grouped = merged.groupby(["layer", "depth"], sort=False)["agree"].agg(["mean", "size"]).reset_index()
        out.append(grouped.rename(columns={"mean": "agree", "size": "n"}).assign(pair=f"{a} vs {b}"))
    frame = pd.concat(out, ignore_index=True)
    return frame[["pair", "layer", "depth", "agree", "n"]].sort_values(["pair", "depth"], kind="stable",
                                                                      ignore_index=True)
