"""Study 1: the results table, the comparison with the published numbers, the 2-D map figures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerwise.workflow.macros import LaTeX, latex_escape
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


def _count(n: int, noun: str) -> str:
    """'one permutation', '3 permutations'."""
    return f"one {noun}" if n == 1 else f"{n} {noun}s"


def _differs(condition: str, permutations: int, seeds: int) -> str:
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
        "random_covariance_trained": "mean and covariance per layer (not the post's)",
        "random_covariance_retrained": "mean and covariance per layer, re-trained",
        "shuffled_labels": f"train labels only, {_count(permutations, 'permutation')}", "tree": "not in the post",
        "with_position0": "position 0 kept", "no_punctuation": "not run in the post (proposed)",
        "stability": f"{seeds} seeds (text splits)",
    }.get(condition, "--")


def probe_macros(summary: pd.DataFrame, dims: pd.DataFrame, *, first_model: str, mask_k: int, n_texts: int,
                 variant_n_texts: int, max_tokens: int, permutations: int, seeds: int
                 ) -> dict[str, float | int | str]:
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
    # a fit that stopped at its epoch cap is marked in its cell (dagger), never shown as if it had converged
    stopped = {(r["condition"], r["model"]) for _, r in summary.iterrows()
               if "converged" in summary and r["converged"] is not pd.NA and not pd.isna(r["converged"])
               and str(r["converged"]).lower() == "false"}
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
            if (condition, m) in stopped:
                cell += "$^{\\dagger}$"
            cells.append(cell)
        lines.append(" & ".join([latex_escape(str(condition).replace("_", " ")),
                                 latex_escape(_differs(str(condition), permutations, seeds)), str(sizes[condition]),
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
            "ProbePermutationsScored": LaTeX(f"{_count(permutations, 'permutation')}, "
                                              + ("scored" if permutations == 1 else "mean $\\pm$ std")
                                              + " on the true test labels"),
            "ProbeRawAccuracyFirst": float(raw_first["raw"])}


def reduction_figures(models: dict[str, str]) -> LaTeX:
    """A sentence citing them, then one figure environment per model for the 2-D maps drawn by rule
    `probe_reductions` (each figure cited in the text, placed right after it)."""
    refs = [f"Figure~\\ref{{fig:reductions-{key}}}" for key in models]
    cite = f"The maps are in {' and '.join(refs)}." if refs else ""
    return LaTeX(cite + "\n" + "\n".join(
        "\\begin{figure}[!htbp]\\centering"
        f"\\includegraphics[width=\\linewidth,height=0.8\\textheight,keepaspectratio]{{probes/{key}_reductions.png}}"
        f"\\caption{{PCA, t-SNE and UMAP of {latex_escape(name)}'s hidden states, coloured by layer "
        "(reverse rainbow); rows: raw (the post's Fig.~4), without layer 0 (Fig.~2), unit-norm without "
        "layer 0 (Fig.~3). Drawn by rule \\texttt{probe\\_reductions} "
        f"(\\texttt{{scripts/probe\\_reductions.py}}).}}\\label{{fig:reductions-{key}}}\\end{{figure}}"
        for key, name in models.items()))


def _signed(x: float) -> str:
    return f"{x:+.1f}"


def _interval(row: pd.Series) -> str:
    if row["low"] == row["estimate"] == row["high"]:
        return f"{_signed(row['estimate'])} points"
    return f"{_signed(row['estimate'])} points [{_signed(row['low'])}, {_signed(row['high'])}]"


def _direction(delta_low: float, delta_high: float) -> str:
    """Which way an interval of a difference goes: a word the sentences use."""
    if delta_high < 0:
        return "lowers"
    if delta_low > 0:
        return "raises"
    return "does not measurably change"


def probe_verdict_macros(verdicts: pd.DataFrame, evidence: pd.DataFrame, *, faithful_scores: pd.DataFrame,
                         random_masks: pd.DataFrame, masked_dims: list[int], model: str, units: dict[str, str],
                         fits: pd.DataFrame, random_masks_ours: pd.DataFrame | None = None) -> dict[str, LaTeX]:
    """Study 1's verdict table and the sentences read off it (every word of agreement or disagreement comes
    from the numbers): the opening count, the post's ablations in the post's setting beside ours, the
    random-dims masking baseline, the weight signs, and which fits stopped at their epoch cap.

    `faithful_scores`: rule probe_faithful's ablations table; `random_masks`: its random-dims draws;
    `fits`: one row per logistic fit reported (condition, model, converged, epochs, grad_norm)."""
    from layerwise.verdicts import VERDICTS, verdict_counts, verdict_table_latex
    counts = verdict_counts(verdicts)
    name = latex_escape(model)
    table = verdict_table_latex(
        verdicts, caption=(f"The post's claims, one per row, judged on {name} by rule (\\texttt{{layerwise.probes.claims}}, "
                           "\\texttt{layerwise.verdicts}). \\emph{Source's setting (ours)}: our run in the post's "
                           "setting (post-norm last layer, position 0 kept); \\emph{our setting}: pre-norm last layer, "
                           "position 0 dropped. Brackets: 95\\% bootstrap interval over test texts (over layers "
                           "for attribution shares; range over seed pairs for the Jaccard index). \\emph{Differs}: "
                           "\\emph{ours only} = not run in the post's setting; \\emph{not converged} = that "
                           "setting's fit stopped at its epoch cap; \\emph{point} = no interval. Generated by rule "
                           "\\texttt{probe\\_verdicts}; also \\texttt{results/verdicts/probes.csv}."),
        label="tab:probe-verdicts", units=units)
    opening = (f"Of the post's {len(verdicts)} claims tested on {name} (Table~\\ref{{tab:probe-verdicts}}), "
               + ", ".join(f"{counts[v]} {'is' if counts[v] == 1 else 'are'} \\emph{{{v}}}" for v in VERDICTS) + ".")
    ev = evidence.set_index(["quantity", "setting"])
    sc = faithful_scores.set_index("condition")
    parts = []
    if ("normalised_delta", "faithful") in ev.index:
        f = ev.loc[("normalised_delta", "faithful")]
        word = _direction(f["low"], f["high"])
        # the direction is the claim's test; the size is read against the post's, never called "as reported"
        same = ("in the post's direction, not by its size (83\\% $\\to$ 64\\%: $-19$ points)" if word == "lowers"
                else "where the post reports a drop (83\\% $\\to$ 64\\%)")
        text = (f"In the post's own setting the {name} probe reaches {_pct(sc.loc['post_faithful', 'accuracy'])}; "
                f"unit norm {word} it ({_interval(f)}) {same}")
        if ("normalised_delta", "ours") in ev.index:
            o = ev.loc[("normalised_delta", "ours")]
            agree = _direction(o["low"], o["high"]) == word
            text += (f", and in our setting it {_direction(o['low'], o['high'])} it ({_interval(o)}): "
                     + ("the two settings agree in direction" if agree else
                        "the two settings disagree even in direction; the verdict row \\emph{norm\\_drop} judges the "
                        "size the post reads (see \\emph{Where we disagree})"))
        parts.append(text + ".")
    if ("transfer_delta", "faithful") in ev.index:
        f = ev.loc[("transfer_delta", "faithful")]
        parts.append(f"Trained on IMDB and scored unchanged on AG News, the post-setting probe "
                     f"{_direction(f['low'], f['high'])} its accuracy ({_interval(f)}; post: $-17$ points).")
    if ("mask_delta", "faithful") in ev.index and len(random_masks):
        f = ev.loc[("mask_delta", "faithful")]
        deltas = random_masks["delta_pp"].to_numpy()
        lo, med, hi = np.quantile(deltas, [0.025, 0.5, 0.975])
        beyond = f["high"] < lo
        k = len(masked_dims)
        parts.append(
            f"Masking at test time the {k} dimensions most frequent in the per-layer top lists (chosen on the "
            f"training split: {', '.join(str(d) for d in masked_dims)}) changes the post-setting accuracy by "
            f"{_interval(f)} (post: $-0.19$); {k} random dimensions, {len(deltas)} seeded draws, change it by "
            f"{_signed(med)} points (median; 95\\% of draws in [{_signed(lo)}, {_signed(hi)}]). "
            + (f"The frequent dimensions therefore carry more of the layer signal than random ones, unlike the "
               f"post's reading that they barely matter." if beyond else
               f"The frequent dimensions carry no more than random ones: masking them is no evidence that they "
               f"matter."))
    if ("mask_delta", "ours") in ev.index and random_masks_ours is not None and len(random_masks_ours):
        o = ev.loc[("mask_delta", "ours")]
        lo, med, hi = np.quantile(random_masks_ours["delta_pp"].to_numpy(), [0.025, 0.5, 0.975])
        parts.append(
            f"In our setting the same masking (its own frequent dimensions) changes the accuracy by {_interval(o)}, "
            f"random dimensions by {_signed(med)} (95\\% of {len(random_masks_ours)} draws in [{_signed(lo)}, "
            f"{_signed(hi)}]): " + ("more than random dimensions." if o["high"] < lo else
                                     "no more than random dimensions."))
    signs = []
    for setting, label in (("faithful", "the post's setting"), ("ours", "our setting")):
        if ("early_positive_share", setting) in ev.index:
            e, l = ev.loc[("early_positive_share", setting)], ev.loc[("late_positive_share", setting)]
            pattern = e["high"] < 50 and l["low"] > 50
            signs.append(f"in {label} {e['estimate']:.0f}\\% of the early layers' top dimensions have a positive "
                         f"weight and {l['estimate']:.0f}\\% of the late layers' ("
                         + ("the post's pattern" if pattern else "not the post's pattern") + ")")
    if signs:
        parts.append("The post colours its Fig.~7 by the sign of the probe weight and reads ``early layers "
                     "negative, late layers positive'': " + "; ".join(signs) + ".")
    stopped = fits[fits["converged"].map(lambda c: str(c).lower() == "false")]
    total = fits["converged"].map(lambda c: str(c).lower() in ("true", "false")).sum()
    if len(stopped):
        conv = (f"{len(stopped)} of the {total} logistic fits reported here stopped at their epoch cap before "
                "the gradient tolerance and are marked $^\\dagger$ (not converged): "
                + "; ".join(f"{latex_escape(str(r['model']))} {latex_escape(str(r['condition']).replace('_', ' '))} "
                            f"({int(r['epochs'])} epochs, max $|$gradient$|$ {r['grad_norm']:.1e})"
                            for _, r in stopped.iterrows())
                + ". Their accuracies could still move with more epochs; every comparison involving one is marked "
                  "in the tables.")
    else:
        conv = f"All {total} logistic fits reported here converged to the gradient tolerance."
    return {"ProbeVerdictTable": LaTeX(table), "ProbeVerdictOpening": LaTeX(opening),
            "ProbeFaithfulAblations": LaTeX(" ".join(parts)), "ProbeConvergence": LaTeX(conv)}


# What is known to differ for each claim, beside model, N and L (the cause of a disagreement is not isolated).
_KNOWN_DIFFERENCES = {
    "layer": "smaller models than GPT-2 medium, other N and L",
    "norm_drop": "in the post's setting the last class is the final norm's output, whose vectors already share "
                 "one RMS up to the norm's gain, and position 0 (the attention sink, of very large norm) is kept; "
                 "our setting has neither, so unit norm removes different cues in the two",
    "norm_not_only": "the same last-class and position-0 differences as unit norm",
    "mask": "the recurring dimensions are our models' own (the post's 591, 690, 581, 239 are GPT-2 medium's); "
            "the random-dimension baseline above says whether ours carry more than any 4 dimensions",
    "transfer": "our AG News texts are cut to the same L as IMDB and the probe is fitted on our models",
    "random": "this control cannot succeed by construction (no direction is kept), so its verdict carries no "
              "evidence for the claim",
    "more_texts": "the grid runs in our setting only",
    "longer_context": "the grid runs in our setting only; at small L fewer positions per text are averaged",
    "larger_model": "one model per family runs here",
    "max_share": "attribution shares depend on the width (576 and 384 dimensions against GPT-2 medium's 1024)",
    "early_negative": "the weight signs are our probes'; the post gives no count, only its figure",
    "late_positive": "the weight signs are our probes'; the post gives no count, only its figure",
    "cumulative": "the post gives no number for ``almost the same''; the bound is ours",
    "stable_dims": "the seed runs use our setting at the additions' N",
    "norm_last": "the post's last layer is GPT-2's final-norm output (its gain sets the scale); ours is the "
                 "pre-norm residual stream, whose norm the final norm removes",
    "norm_exponential": "the post fits no curve; the bound on the fit is ours",
}


def verdict_discussion(verdicts: pd.DataFrame) -> LaTeX:
    """One sentence per claim whose verdict is not *reproduced*: the verdict, its reason (from the rule) and
    what is known to differ; the words come from the table, so the text can never contradict it."""
    sentences = []
    for _, row in verdicts.iterrows():
        if row["verdict"] == "reproduced":
            continue
        why = _KNOWN_DIFFERENCES.get(row["key"], "")
        sentences.append(f"\\emph{{{latex_escape(str(row['claim']))}}}: {row['verdict']} ({latex_escape(row['reason'])})"
                         + (f"; known differences: {why}" if why else "") + ".")
    if not sentences:
        return LaTeX("Every claim of the post tested here is reproduced.")
    return LaTeX("Where we do not reproduce the post, claim by claim. " + " ".join(sentences)
                 + " Which of the known differences causes a disagreement is not isolated here.")
