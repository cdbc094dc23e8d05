"""Outlier tokens in words: which tokens, how much of Study 3's anisotropy they carry, whether each model's
profile shape survives their removal, and what Study 1's probe does without them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerwise.outliers.detect import profile_shape
from layerwise.workflow.macros import LaTeX, latex_escape

# Byte-level BPE marks a leading space with Ġ and a newline with Ċ; shown as a visible space and \n.
_MARKS = {"Ġ": r"\textvisiblespace{}", "Ċ": r"\textbackslash{}n", "▁": r"\textvisiblespace{}"}


def token_latex(token: str) -> str:
    """A token string as LaTeX: escaped, with BPE space/newline marks made visible, in typewriter font."""
    text = "".join(_MARKS.get(c, latex_escape(c)) for c in str(token))
    return rf"\texttt{{{text}}}" if text else r"\textit{(empty)}"


def _num(value: float) -> str:
    """3 significant digits, whole numbers from 1000 on (no exponent in running text). From 999.5 on, 3
    significant digits round to 1000, which `.3g` would write as 1e+03."""
    return f"{value:,.0f}".replace(",", "{,}") if abs(value) >= 999.5 else f"{value:.3g}"


def _attribution_sentences(rows: pd.DataFrame, with_all: dict[str, float], without: dict[str, float]) -> list[str]:
    """How many tokens are outliers, what they carry at the anisotropy peak, and whether the shape survives."""
    most = rows.loc[rows["outlier_share"].idxmax()]
    peak = rows.set_index("layer").loc[with_all["peak_layer"]]
    verdict = "survives" if shape_survives(with_all, without) else "does not survive"
    out = [f"At most {100 * most['outlier_share']:.2g}\\% of a layer's tokens are outliers (layer {int(most['layer'])}).",
           f"Anisotropy peaks at layer {with_all['peak_layer']} at {with_all['peak_value']:.3g} "
           f"({with_all['prominence']:.3g}$\\times$ the median of the other layers); there the outliers, "
           f"{100 * peak['outlier_share']:.2g}\\% of the tokens, carry {100 * peak['sigma1_share']:.3g}\\% of "
           f"$\\sigma_1^2$, and without them anisotropy is {peak['anisotropy_without']:.3g}.",
           f"Without outlier tokens the profile peaks at layer {without['peak_layer']} at "
           f"{without['peak_value']:.3g} ({without['prominence']:.3g}$\\times$ the rest): the profile's shape "
           f"{verdict} the removal."]
    if rows["twonn_id"].notna().all():
        diff = (rows["twonn_id_without"] - rows["twonn_id"]).abs()
        at = rows.loc[diff.idxmax()]
        out.append(f"TwoNN changes by at most {diff.max():.3g} (layer {int(at['layer'])}: {at['twonn_id']:.3g} "
                   f"with, {at['twonn_id_without']:.3g} without).")
    return out


def shape_survives(with_all: dict[str, float], without: dict[str, float]) -> bool:
    """The sources' "bell shape" survives when the peak stays within one layer and keeps at least half of its
    height above the rest (prominence - 1)."""
    return (abs(with_all["peak_layer"] - without["peak_layer"]) <= 1
            and without["prominence"] - 1 >= 0.5 * (with_all["prominence"] - 1))


def _dimension_list(values: pd.Series) -> list[int]:
    """The sorted distinct dimensions of a column of ';'-joined lists. A CSV column holding only single
    dimensions and blanks is read back as floats (507.0), so numbers are taken as they are."""
    dims = set()
    for v in values.dropna():
        dims.update([int(v)] if isinstance(v, (int, float)) else [int(d) for d in str(v).split(";") if d])
    return sorted(dims)


def model_sentences(rows: pd.DataFrame, model: str, *, k: float) -> str:
    """Sentences for one model's per-layer outlier table (columns of :data:`layerwise.outliers.geometry.LAYER_COLUMNS`)."""
    rows = rows.sort_values("layer")
    name = latex_escape(model)
    layers = rows["layer"].to_numpy()
    with_all = profile_shape(layers, rows["anisotropy"].to_numpy())
    without = profile_shape(layers, rows["anisotropy_without"].to_numpy())
    n_with = int((rows["n_outliers"] > 0).sum())
    worst = rows.loc[rows["max_norm_ratio"].idxmax()]
    out = [f"In {name}, {n_with} of {len(rows)} layers have outlier tokens (norm above {k:g}$\\times$ the layer's "
           f"median); the largest norm ratio is {worst['max_norm_ratio']:.3g} (layer {int(worst['layer'])})."]
    if not n_with:
        out.append(f"Nothing is removed, so anisotropy (peak {with_all['peak_value']:.3g} at layer "
                   f"{with_all['peak_layer']}) and TwoNN are unchanged.")
    else:
        out += _attribution_sentences(rows, with_all, without)
    n_massive = int(rows["n_massive"].sum())
    if n_massive:
        dims = _dimension_list(rows["massive_dims"])
        n_layers = int((rows["n_massive"] > 0).sum())
        out.append(f"It has {n_massive} massive activations in {n_layers} layers, in dimension(s) "
                   f"{', '.join(map(str, dims))}, the largest $|x|={_num(rows['max_abs'].max())}$.")
    else:
        top = rows.loc[(rows["max_abs"] / rows["median_abs"]).idxmax()]
        out.append(f"No entry passes both massive-activation thresholds; the most extreme relative to its layer, "
                   f"$|x|={_num(top['max_abs'])}$ (layer {int(top['layer'])}), is "
                   f"{top['max_abs'] / top['median_abs']:.3g}$\\times$ the layer's median $|x|$.")
    return " ".join(out)


def source_comparison(layers: dict[str, pd.DataFrame]) -> str:
    """Which of the sources' Study 3 claims are about the outliers: the decoders' bell shape is decided by the bell
    rule of the geometry section (its verdict table, per batch, with and without the outlier tokens), so only a
    pointer here; the decoder/encoder contrast in peak anisotropy, with and without the outlier tokens."""
    out, peaks = [], {}
    for model, rows in layers.items():
        kind = str(rows["kind"].iloc[0]) if "kind" in rows else "model"
        layer = rows["layer"].to_numpy()
        with_all = profile_shape(layer, rows["anisotropy"].to_numpy())
        without = profile_shape(layer, rows["anisotropy_without"].to_numpy())
        peaks.setdefault(kind, []).append((with_all["peak_value"], without["peak_value"]))
    if "decoder" in peaks:
        out.append("Whether a decoder's profile is the sources' bell, with or without the outlier tokens, is decided "
                   "by the bell rule of Section~\\ref{sec:geometry} on every batch "
                   "(Table~\\ref{tab:geometry-verdicts}), not by where the mean profile peaks.")
    if {"decoder", "encoder"} <= set(peaks):
        dec = np.max(peaks["decoder"], axis=0)
        enc = np.max(peaks["encoder"], axis=0)
        out.append(f"The decoder/encoder contrast in peak anisotropy is {dec[0] / enc[0]:.3g}$\\times$ with all tokens "
                   f"and {dec[1] / enc[1]:.3g}$\\times$ without the outliers.")
    return " ".join(out)


def probe_sentences(scores: pd.DataFrame, dims: pd.DataFrame, model: str) -> str:
    """Study 1's probe with and without outlier tokens, and whether its top dimensions are massive ones."""
    acc = scores.set_index("condition")
    name = latex_escape(model)
    out = [f"The layer probe of {name} scores {acc.loc['all', 'accuracy']:.3f} with all vectors and "
           f"{acc.loc['without_outliers', 'accuracy']:.3f} with the {int(acc.loc['without_outliers', 'n_removed'])} "
           f"outlier vectors removed from train and test."]
    top = dims[dims["condition"] == "all"]
    listed = ", ".join(map(str, top["dim"]))

    def dim_set(column: str) -> str:
        value = dims[column].iloc[0] if len(dims) else ""
        return "" if pd.isna(value) else str(value).replace(";", ", ")

    massive, peaks = dim_set("massive_dims"), dim_set("peak_dims")
    n_massive, n_peak = int(top["is_massive"].sum()), int(top["is_peak"].sum())
    out.append(f"Of its {len(top)} most used dimensions ({listed}), "
               + (f"{n_massive} hold massive activations (massive dimensions: {massive}) and " if massive
                  else "none holds a massive activation (no dimension does) and ")
               + f"{n_peak} {'is' if n_peak == 1 else 'are'} among the dimensions holding a layer's largest entry "
               f"({peaks}).")
    return " ".join(out)


def token_table(tops: dict[str, pd.DataFrame], *, dataset: str, k: float) -> str:
    """LaTeX table of the top outlier tokens per model (columns of :func:`top_outlier_tokens`)."""
    lines = [r"\begin{table}[t]\centering\small",
             rf"\caption{{Tokens most often outliers (norm $>{k:g}\times$ the layer's median) on "
             rf"\texttt{{{latex_escape(dataset)}}}: count of (layer, vector) outlier pairs, their share of all pairs, "
             r"distinct vectors, largest norm ratio, most frequent text positions and layers. "
             r"\textvisiblespace{} marks a leading space.}\label{tab:outlier-tokens}",
             r"\begin{tabular}{llrrrrl}", r"\hline",
             r"model & token & pairs & share & vectors & max ratio & positions / layers \\", r"\hline"]
    for model, top in tops.items():
        if top.empty:
            lines.append(rf"{latex_escape(model)} & \multicolumn{{6}}{{l}}{{no outlier token}} \\")
        for i, row in enumerate(top.itertuples()):
            lines.append(f"{latex_escape(model) if i == 0 else ''} & {token_latex(row.token)} & {row.occurrences} & "
                         f"{100 * row.share:.1f}\\% & {row.n_vectors} & {row.max_norm_ratio:.3g} & "
                         f"{latex_escape(row.positions.replace(',', ', '))} / {latex_escape(row.layers)} \\\\")
        lines.append(r"\hline")
    lines += [r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def outlier_macros(layers: dict[str, pd.DataFrame], tops: dict[str, pd.DataFrame],
                   probes: dict[str, tuple[pd.DataFrame, pd.DataFrame]], *, k: float, absolute: float,
                   relative: float, dataset: str, probe_dataset: str) -> dict[str, float | str]:
    """All macros of the outlier section."""
    summary = " ".join(model_sentences(rows, model, k=k) for model, rows in layers.items())
    probe = " ".join(probe_sentences(scores, dims, model) for model, (scores, dims) in probes.items())
    shares = [float(np.nanmax(rows["sigma1_share"])) for rows in layers.values()]
    return {
        "OutliersK": k, "OutliersMassiveAbsolute": absolute, "OutliersMassiveRelative": relative,
        "OutliersDataset": dataset, "OutliersProbeDataset": probe_dataset,
        "OutliersSummary": LaTeX(summary), "OutliersProbe": LaTeX(probe),
        "OutliersSourceComparison": LaTeX(source_comparison(layers)),
        "OutliersMaxSigmaShare": 100 * max(shares),
        "OutliersTokenTable": LaTeX(token_table(tops, dataset=dataset, k=k)),
    }


def dominant_token_runs(occurrences: pd.DataFrame, *, min_share: float = 0.5) -> list[tuple[str, int, int, float]]:
    """Runs of consecutive numbered layers where one token type makes up more than ``min_share`` of the layer's
    outlier occurrences: (token, first layer, last layer, smallest share over the run)."""
    if occurrences.empty:
        return []
    rows = occurrences.assign(layer=pd.to_numeric(occurrences["layer"], errors="coerce")).dropna(subset=["layer"])
    runs: list[tuple[str, int, int, float]] = []
    for layer, group in rows.groupby("layer", sort=True):
        counts = group["token"].value_counts()
        share = float(counts.iloc[0] / counts.sum())
        token = str(counts.index[0])
        if share <= min_share:
            continue
        if runs and runs[-1][0] == token and runs[-1][2] == int(layer) - 1:
            runs[-1] = (token, runs[-1][1], int(layer), min(runs[-1][3], share))
        else:
            runs.append((token, int(layer), int(layer), share))
    return runs


def dominant_token_sentence(occurrences: dict[str, pd.DataFrame]) -> str:
    """Per model, the longest run of layers whose outliers are mostly one token type, in words."""
    out = []
    for model, occ in occurrences.items():
        runs = dominant_token_runs(occ)
        if not runs:
            out.append(f"In {latex_escape(model)} no layer's outliers are mostly one token type.")
            continue
        token, first, last, share = max(runs, key=lambda r: (r[2] - r[1], -r[1]))
        span = f"layer {first}" if first == last else f"layers {first}--{last}"
        out.append(f"In {latex_escape(model)} most outlier tokens at {span} are one token type, {token_latex(token)} "
                   f"(at least {100 * share:.3g}\\% of each layer's outlier occurrences).")
    return " ".join(out)
