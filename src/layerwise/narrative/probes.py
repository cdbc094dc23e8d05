"""Study 1: the results table, the comparison with the published numbers, the 2-D map figures."""

from __future__ import annotations

import pandas as pd

from layerwise.paper import LaTeX, latex_escape
from layerwise.probes.summary import PUBLISHED


def _pct(x: float) -> str:
    return f"{100 * x:.1f}\\%"


def probe_macros(summary: pd.DataFrame, dims: pd.DataFrame, *, first_model: str, mask_k: int, n_texts: int,
                 max_tokens: int) -> dict[str, float | int | str]:
    """Study 1: the results table (accuracy per condition and model, chance) and the comparison with the post."""
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
        f"\\includegraphics[width=\\linewidth,height=0.8\\textheight,keepaspectratio]{{probes/{key}_reductions.png}}"
        f"\\caption{{PCA, t-SNE and UMAP of {latex_escape(name)}'s hidden states, coloured by layer "
        "(reverse rainbow); rows: raw, unit-norm, without layer 0, unit-norm without layer 0 (the post's Figs 4, 2 and 3 use the last three). Drawn by rule \\texttt{probe\\_reductions} "
        "(\\texttt{scripts/probe\\_reductions.py}).}\\end{figure}" for key, name in models.items()))
