"""Study summaries → LaTeX macros, including generated sentences that stay true when the config changes."""

from __future__ import annotations

import pandas as pd

from layerwise.lens_stats import SUMMARY_VALUE_COLUMNS, first_layer_above
from layerwise.paper import LaTeX, latex_escape


def _depth(x: float) -> str:
    return f"{x:.2f}"


def geometry_macros(table: pd.DataFrame, summary: pd.DataFrame, *, fraction: float, batch_size: int
                    ) -> dict[str, float | int | str]:
    """Numbers of study 3: where anisotropy and ID peak per model, and how decoders and encoders differ."""
    sentences = []
    for model, rows in summary.groupby("model", sort=False):
        an = rows[rows["metric"] == "anisotropy"].iloc[0]
        idim = rows[rows["metric"] == "twonn_id"].iloc[0]
        sentences.append(
            f"In {latex_escape(model)} ({an['kind']}, {an['n_layers']} layers) anisotropy peaks at layer "
            f"{an['peak_layer']} (relative depth {_depth(an['peak_relative_depth'])}) at {an['peak_value']:.3g}, "
            f"down to {an['min_value']:.3g} at layer {an['min_layer']}; the TwoNN intrinsic dimension peaks at "
            f"layer {idim['peak_layer']} (relative depth {_depth(idim['peak_relative_depth'])}) with "
            f"{idim['peak_value']:.3g} and is lowest at layer {idim['min_layer']} ({idim['min_value']:.3g}).")
    an = summary[summary["metric"] == "anisotropy"]
    by_kind = an.groupby("kind")["peak_value"].max()
    contrast = ""
    if {"decoder", "encoder"} <= set(by_kind.index):
        ratio = by_kind["decoder"] / by_kind["encoder"]
        contrast = (f"The highest anisotropy reached by a decoder is {ratio:.3g} times that of the most "
                    f"anisotropic encoder layer.")
    standardised = table[table["metric"] == "anisotropy_standardised"]
    for model, rows in standardised.groupby("model", sort=False):
        peak = rows.loc[rows["mean"].idxmax()]
        sentences.append(f"On z-scored dimensions (which removes the outlier dimensions' scale) the anisotropy "
                         f"of {latex_escape(model)} peaks at {peak['mean']:.3g} (layer {peak['layer']}).")
    n_vectors = int(table[table["metric"] == "anisotropy"]["n_vectors"].max())
    n_batches = int(table[table["metric"] == "anisotropy"]["n_batches"].max())
    duplicates = int(table[table["metric"] == "n_duplicates"]["mean"].sum())
    return {
        "GeometrySummary": LaTeX(" ".join(sentences)),
        "GeometryContrast": LaTeX(contrast),
        "GeometryFraction": fraction,
        "GeometryBatchSize": batch_size,
        "GeometryVectors": n_vectors,
        "GeometryBatches": n_batches,
        "GeometryDuplicates": duplicates,
    }


def training_macros(summary: pd.DataFrame, log: pd.DataFrame) -> dict[str, float | int | str]:
    """Numbers of study 3 over training: learning, ID peak step, anisotropy growth, peak layers."""
    val = log[log["split"] == "val"]
    sentences = []
    for _, row in summary.iterrows():
        kind_log = val[val["kind"] == row["kind"]].sort_values("step")
        first, last = kind_log.iloc[0], kind_log.iloc[-1]
        trend = "grows monotonically" if row["anisotropy_monotonic"] else "does not grow monotonically"
        sentences.append(
            f"The {row['kind']} goes from {first['bits_per_byte']:.3g} to {last['bits_per_byte']:.3g} "
            f"validation bits per byte over {int(last['step'])} steps; its layer-averaged intrinsic dimension "
            f"peaks at step {row['id_peak_step']} ({row['id_peak_value']:.3g}, from {row['id_first']:.3g} at "
            f"step 0 to {row['id_last']:.3g} at the end), and its largest per-layer anisotropy {trend} "
            f"({row['anisotropy_first']:.3g} at step 0, {row['anisotropy_last']:.3g} at the end; within 5\\%), "
            f"peaking at layer {row['anisotropy_peak_layer']} (relative depth "
            f"{row['anisotropy_peak_relative_depth']:.2f}) at the last checkpoint.")
    values: dict[str, float | int | str] = {"TrainingSummary": LaTeX(" ".join(sentences))}
    for _, row in summary.iterrows():
        kind = row["kind"].capitalize()
        values[f"Training{kind}IdPeakStep"] = int(row["id_peak_step"])
        values[f"Training{kind}FinalBpb"] = float(val[val["kind"] == row["kind"]].sort_values("step")
                                                 ["bits_per_byte"].iloc[-1])
    return values


def lens_macros(summary: pd.DataFrame, *, heatmaps: dict[str, str], model_names: dict[str, str],
                example: str) -> dict[str, float | int | str]:
    """Numbers of study 2 (first layer with >50% agreement, KL at mid-depth) and the heatmap figures."""
    firsts = first_layer_above(summary[["model", "decoder", "layer", "depth", *SUMMARY_VALUE_COLUMNS]],
                               metric="agreement", threshold=0.5)
    sentences = []
    for _, row in firsts.iterrows():
        rows = summary[(summary["model"] == row["model"]) & (summary["decoder"] == row["decoder"])]
        n_blocks = int(rows["n_layers"].iloc[0])
        kl = rows[(rows["metric"] == "kl_final") & (rows["layer"] == str(n_blocks // 2))].iloc[0]
        agree_last = rows[(rows["metric"] == "agreement") & (rows["layer"] == str(n_blocks))].iloc[0]
        where = (f"first exceeds 50\\% at layer {row['layer']} of {n_blocks}" if not pd.isna(row["layer"])
                 else f"never exceeds 50\\% before the output (it reaches {agree_last['mean']:.2f} at layer {n_blocks})")
        sentences.append(
            f"With the \\texttt{{{latex_escape(row['decoder'])}}} decoder, the top-1 agreement of "
            f"{latex_escape(row['model'])} with its own output {where}; at mid-depth (layer {n_blocks // 2}) "
            f"KL(final$\\|$layer) is {kl['mean']:.3g} nats (95\\% CI {kl['ci_low']:.3g}--{kl['ci_high']:.3g}).")
    figures = []
    for key, pattern in heatmaps.items():
        figures.append(
            "\\begin{figure}[p]\\centering"
            f"\\includegraphics[width=\\linewidth]{{{pattern.format(value='top1_logit')}}}"
            f"\\includegraphics[width=\\linewidth]{{{pattern.format(value='final_top1_rank')}}}"
            f"\\caption{{Logit lens of {latex_escape(model_names[key])} on the \\emph{{{latex_escape(example)}}} text: "
            "top-1 token per layer and position, coloured by its logit (top) and by the rank of the model's "
            "final top-1 token (bottom). Drawn by rule \\texttt{lens\\_heatmap} (\\texttt{scripts/lens\\_heatmap.py}).}"
            "\\end{figure}")
    n_texts = int(summary["n_texts"].max())
    return {"LensSummary": LaTeX(" ".join(sentences)), "LensHeatmapFigures": LaTeX("\n".join(figures)),
            "LensTexts": n_texts}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}\\%"


def probe_macros(summary: pd.DataFrame, dims: pd.DataFrame, *, first_model: str, mask_k: int, n_texts: int,
                 max_tokens: int) -> dict[str, float | int | str]:
    """Study 1: the results table (accuracy per condition and model, chance) and the comparison with the post."""
    from layerwise.probes.summary import PUBLISHED

    wide = summary.pivot_table(index="condition", columns="model", values="accuracy", sort=False)
    models = list(dict.fromkeys(summary["model"]))
    chance = summary.groupby("model", sort=False)["chance"].first()
    std = summary[summary["condition"] == "stability"].set_index("model")["std"]
    lines = ["\\begin{tabular}{l" + "r" * len(models) + "}", "\\hline",
             "condition & " + " & ".join(latex_escape(m) for m in models) + " \\\\", "\\hline"]
    for condition, row in wide.iterrows():
        cells = []
        for m in models:
            cell = _pct(row[m])
            if condition == "stability":
                cell += f" $\\pm$ {100 * std[m]:.1f}"
            cells.append(cell)
        lines.append(latex_escape(str(condition).replace("_", " ")) + " & " + " & ".join(cells) + " \\\\")
    lines += ["\\hline", "chance $1/(n+1)$ & " + " & ".join(_pct(chance[m]) for m in models) + " \\\\",
              "\\hline", "\\end{tabular}"]
    sentences = []
    for m in models:
        acc = wide[m]
        transfer = [c for c in wide.index if str(c).startswith("train ") and "+" not in str(c)]
        verdict = "far above" if acc["raw"] > 3 * chance[m] else "above" if acc["raw"] > chance[m] + 0.05 else "near"
        sentences.append(
            f"For {latex_escape(m)} the raw probe reaches {_pct(acc['raw'])} ({verdict} chance, {_pct(chance[m])}); "
            f"masking its {mask_k} most frequent top dimensions at test time gives {_pct(acc['masked_at_test'])}, "
            f"normalising every vector to unit norm {_pct(acc['normalised'])}, "
            + (f"and the probe trained on IMDB scores {_pct(acc[transfer[0]])} on AG News. " if transfer else ". ")
            + f"Random vectors with each layer's per-dimension mean and variance are classified at "
              f"{_pct(acc['random_through_trained'])} by the trained probe and at {_pct(acc['random_trained'])} by a "
              f"probe trained on them; shuffled labels give {_pct(acc['shuffled_labels'])}.")
    raw_first = wide[first_model]
    comparison = (
        f"The post reports, for GPT-2 medium with L=30 and N=1000, {_pct(PUBLISHED['raw'])} raw, "
        f"{_pct(PUBLISHED['masked_at_test'])} after masking, {_pct(PUBLISHED['transfer'])} on AG News and "
        f"{_pct(PUBLISHED['normalised'])} after normalisation. Our default run uses other models "
        f"(N={n_texts}, L={max_tokens}): for {latex_escape(first_model)} masking changes accuracy by "
        f"{100 * (raw_first['masked_at_test'] - raw_first['raw']):+.1f} points (post: "
        f"{100 * (PUBLISHED['masked_at_test'] - PUBLISHED['raw']):+.1f}) and normalisation by "
        f"{100 * (raw_first['normalised'] - raw_first['raw']):+.1f} points (post: "
        f"{100 * (PUBLISHED['normalised'] - PUBLISHED['raw']):+.1f}).")
    d = dims[(dims["variant"] == "input_x_weight")]
    half = d[d["threshold"] == 50].groupby("model", sort=False)["n_dims"].median()
    ninety = d[d["threshold"] == 90].groupby("model", sort=False)["n_dims"].median()
    dims_sentence = " ".join(
        f"In {latex_escape(m)} the median layer needs {int(half[m])} dimensions for 50\\% and {int(ninety[m])} "
        f"for 90\\% of the probe's $|w_j x_j|$ attribution." for m in half.index)
    return {"ProbeTable": LaTeX("\n".join(lines)), "ProbeSummary": LaTeX(" ".join(sentences)),
            "ProbeComparison": LaTeX(comparison), "ProbeDims": LaTeX(dims_sentence),
            "ProbeNTexts": n_texts, "ProbeMaxTokens": max_tokens, "ProbeMaskK": mask_k,
            "ProbeRawAccuracyFirst": float(raw_first["raw"])}


def reduction_figures(models: dict[str, str]) -> LaTeX:
    """One figure environment per model for the 2-D maps drawn by rule `probe_reductions`."""
    return LaTeX("\n".join(
        "\\begin{figure}[p]\\centering"
        f"\\includegraphics[width=\\linewidth]{{probes/{key}_reductions.png}}"
        f"\\caption{{PCA, t-SNE and UMAP of {latex_escape(name)}'s hidden states, coloured by layer "
        "(reverse rainbow); rows: raw, unit-norm, without layer 0. Drawn by rule \\texttt{probe\\_reductions} "
        "(\\texttt{scripts/probe\\_reductions.py}).}\\end{figure}" for key, name in models.items()))
