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
        "GeometrySummary": " ".join(sentences),
        "GeometryContrast": contrast,
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
    values: dict[str, float | int | str] = {"TrainingSummary": " ".join(sentences)}
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
        where = (f"first exceeds 50\\% at layer {row['layer']} of {n_blocks}" if row["layer"] is not None
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
    return {"LensSummary": " ".join(sentences), "LensHeatmapFigures": LaTeX("\n".join(figures)),
            "LensTexts": n_texts}
