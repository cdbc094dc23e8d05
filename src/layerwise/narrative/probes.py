"""Study 1: the results table, the comparison with the published numbers, the 2-D map figures."""

from __future__ import annotations

import pandas as pd

from layerwise.paper import LaTeX, latex_escape
from layerwise.probes.summary import PUBLISHED, PUBLISHED_SOURCE, SIZE_SUFFIX, variant_suffix


def _pct(x: float) -> str:
    return f"{100 * x:.1f}\\%"


def _near_chance(accuracy: float, chance: float) -> bool:
    """Within 5 points of chance: the threshold the sentences use to say a control "fails"."""
    return accuracy < chance + 0.05


def _base(condition: str) -> str:
    """A row's name without the " (N=...)" of a main-setting row repeated at the additions' size."""
    return SIZE_SUFFIX.sub("", condition)


def _post_cell(condition: str) -> str:
    """The post's number for a row of the table, or a dash where it reports none."""
    condition = _base(condition)
    if condition in ("raw", "post_faithful"):
        return _pct(PUBLISHED["raw"])
    if condition == "random_scalar_trained":
        return "fails"
    if condition.startswith("train ") and "+" not in condition and "no punctuation" not in condition:
        return _pct(PUBLISHED["transfer"])
    return {"masked_at_test": _pct(PUBLISHED["masked_at_test"]), "normalised": _pct(PUBLISHED["normalised"])}.get(
        condition, "--")


def _differs(condition: str, permutations: int) -> str:
    """What this row does differently from the post (beyond model, N and L, which differ everywhere)."""
    condition = _base(condition)
    if condition.endswith("no punctuation"):
        return "punctuation stripped, both datasets"
    if condition.startswith("train ") or condition.startswith("transfer gap"):
        return "last class pre-norm, position 0 dropped"
    return {
        "raw": "last class pre-norm, position 0 dropped",
        "post_faithful": "none (post-norm last class, position 0 kept)",
        "masked_at_test": "mask chosen on train (post: unclear)", "masked_retrained": "not in the post",
        "normalised": "--", "random_scalar_trained": "post's reading (one mean, variance per layer)",
        "random_scalar_retrained": "not in the post",
        "random_per_dimension_trained": "per-dimension moments (not the post's)",
        "random_per_dimension_retrained": "per-dimension moments, re-trained",
        "shuffled_labels": f"train labels only, {permutations} permutations", "tree": "not in the post",
        "with_position0": "position 0 kept", "no_punctuation": "not run in the post (proposed)",
        "stability": "five text splits",
    }.get(condition, "--")


def probe_macros(summary: pd.DataFrame, dims: pd.DataFrame, *, first_model: str, mask_k: int, n_texts: int,
                 variant_n_texts: int, max_tokens: int, permutations: int) -> dict[str, float | int | str]:
    """Study 1: one table (the post's numbers beside ours, the difference named, the N of each row) and the
    sentences; every sentence that quotes a row run at `variant_n_texts` names that N."""
    sizes = summary.groupby("condition", sort=False)["n_texts"].first()
    suffix = variant_suffix(n_texts, variant_n_texts)
    at_variant = f" (N={variant_n_texts})" if suffix else ""
    wide = summary.pivot_table(index="condition", columns="model", values="accuracy", sort=False)
    spread = summary.pivot_table(index="condition", columns="model", values="std", sort=False) \
        if "std" in summary else pd.DataFrame()
    models = list(dict.fromkeys(summary["model"]))
    chance = summary.groupby("model", sort=False)["chance"].first()
    lines = ["\\begin{tabular}{llrr" + "r" * len(models) + "}", "\\hline",
             "condition & differs from the post & $N$ & post & " + " & ".join(latex_escape(m) for m in models)
             + " \\\\", "\\hline"]
    for condition, row in wide.iterrows():
        cells = []
        for m in models:
            if str(condition).startswith("transfer gap"):
                cells.append(f"{100 * row[m]:+.1f} pp")
                continue
            cell = _pct(row[m])
            if condition in spread.index and pd.notna(spread.loc[condition, m]):
                cell += f" $\\pm$ {100 * spread.loc[condition, m]:.1f}"
            cells.append(cell)
        lines.append(" & ".join([latex_escape(str(condition).replace("_", " ")),
                                 latex_escape(_differs(str(condition), permutations)), str(sizes[condition]),
                                 _post_cell(str(condition)), *cells]) + " \\\\")
    lines += ["\\hline", "chance $1/(n+1)$ & & & & " + " & ".join(_pct(chance[m]) for m in models) + " \\\\",
              "\\hline", "\\end{tabular}"]
    sentences = []
    for m in models:
        acc, c = wide[m], chance[m]
        gaps = {k: acc[k] for k in acc.index if str(k).startswith("transfer gap")}
        scalar_fails = _near_chance(acc["random_scalar_trained"], c)
        sentences.append(
            f"For {latex_escape(m)} the raw probe reaches {_pct(acc['raw'])} (chance {_pct(c)}) and the post's "
            f"setting {_pct(acc['post_faithful'])}; masking the {mask_k} dimensions chosen on the training split "
            f"gives {_pct(acc['masked_at_test'])} and unit norm {_pct(acc['normalised'])}. "
            f"Scalar-matched random vectors are classified at {_pct(acc['random_scalar_trained'])} by the unit-norm "
            f"probe ({'near chance: the post' + chr(39) + 's claim holds' if scalar_fails else 'not near chance'}) "
            f"and at {_pct(acc['random_scalar_retrained'])} re-trained. With shuffled training labels the probe "
            f"scores {_pct(acc['shuffled_labels'])} on the true test labels. "
            + (f"The transfer gap (IMDB-trained probe, IMDB minus AG News) is {100 * gaps['transfer gap']:+.1f} "
               "points. " if "transfer gap" in gaps else "")
            + f"Per-dimension-matched random vectors{at_variant} are classified at "
            f"{_pct(acc['random_per_dimension_trained'])} by the raw probe and "
            f"{_pct(acc['random_per_dimension_retrained'])} re-trained"
            + (f"; the transfer gap{at_variant} is {100 * gaps['transfer gap' + suffix]:+.1f} points raw and "
               f"{100 * gaps['transfer gap, no punctuation']:+.1f} points with punctuation stripped from both datasets"
               if {"transfer gap" + suffix, "transfer gap, no punctuation"} <= gaps.keys() else "") + ".")
    raw_first = wide[first_model]
    comparison = (
        f"The post reports, for GPT-2 medium with L=30 and N=1000, {_pct(PUBLISHED['raw'])} raw, "
        f"{_pct(PUBLISHED['masked_at_test'])} after masking, {_pct(PUBLISHED['transfer'])} on AG News, "
        f"{_pct(PUBLISHED['normalised'])} after normalisation and about {_pct(PUBLISHED['raw_gpt2_xl'])} for "
        f"GPT-2 XL. Our run uses other models (N={n_texts}, L={max_tokens}): for {latex_escape(first_model)} the "
        f"post's setting gives {_pct(raw_first['post_faithful'])} and our default {_pct(raw_first['raw'])}; masking "
        f"changes accuracy by {100 * (raw_first['masked_at_test'] - raw_first['raw']):+.1f} points (post: "
        f"{100 * (PUBLISHED['masked_at_test'] - PUBLISHED['raw']):+.1f}) and normalisation by "
        f"{100 * (raw_first['normalised'] - raw_first['raw']):+.1f} points (post: "
        f"{100 * (PUBLISHED['normalised'] - PUBLISHED['raw']):+.1f}).")
    d = dims[(dims["variant"] == "input_x_weight")]
    half = d[d["threshold"] == 50].groupby("model", sort=False)["n_dims"].median()
    ninety = d[d["threshold"] == 90].groupby("model", sort=False)["n_dims"].median()
    dims_sentence = " ".join(
        f"In {latex_escape(m)} the median layer needs {half[m]:g} dimensions for 50\\% and {ninety[m]:g} "
        f"for 90\\% of the probe's $|w_j x_j|$ attribution (training split)." for m in half.index)
    return {"ProbeTable": LaTeX("\n".join(lines)), "ProbeSummary": LaTeX(" ".join(sentences)),
            "ProbeComparison": LaTeX(comparison), "ProbeDims": LaTeX(dims_sentence),
            "ProbeNTexts": n_texts, "ProbeVariantNTexts": variant_n_texts, "ProbeMaxTokens": max_tokens, "ProbeMaskK": mask_k,
            "ProbePermutations": permutations, "ProbePublishedSource": PUBLISHED_SOURCE,
            "ProbeRawAccuracyFirst": float(raw_first["raw"])}


def reduction_figures(models: dict[str, str]) -> LaTeX:
    """One figure environment per model for the 2-D maps drawn by rule `probe_reductions`."""
    return LaTeX("\n".join(
        "\\begin{figure}[p]\\centering"
        f"\\includegraphics[width=\\linewidth,height=0.8\\textheight,keepaspectratio]{{probes/{key}_reductions.png}}"
        f"\\caption{{PCA, t-SNE and UMAP of {latex_escape(name)}'s hidden states, coloured by layer "
        "(reverse rainbow); rows: raw (the post's Fig.~4), unit-norm, without layer 0 (Fig.~2), unit-norm "
        "without layer 0 (Fig.~3). Drawn by rule \\texttt{probe\\_reductions} "
        "(\\texttt{scripts/probe\\_reductions.py}).}\\end{figure}" for key, name in models.items()))
