"""Study 2: how early each layer agrees with the model's output, in words and numbers; heatmap figures."""

from __future__ import annotations

import pandas as pd

from layerwise.lens_stats import SUMMARY_VALUE_COLUMNS, first_layer_above
from layerwise.paper import LaTeX, latex_escape


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
            f"\\includegraphics[width=\\linewidth]{{{pattern.format(value='top1_logit')}}}\\par\\medskip"
            f"\\includegraphics[width=\\linewidth]{{{pattern.format(value='final_top1_rank')}}}"
            f"\\caption{{Logit lens of {latex_escape(model_names[key])} on the \\emph{{{latex_escape(example)}}} text: "
            "top-1 token per layer and position, coloured by its logit (top) and by the rank of the model's "
            "final top-1 token (bottom). Drawn by rule \\texttt{lens\\_heatmap} (\\texttt{scripts/lens\\_heatmap.py}).}"
            "\\end{figure}")
    n_texts = int(summary["n_texts"].max())
    return {"LensSummary": LaTeX(" ".join(sentences)), "LensHeatmapFigures": LaTeX("\n".join(figures)),
            "LensTexts": n_texts}

