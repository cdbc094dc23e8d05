"""Study 2: how early each layer agrees with the model's output and how abruptly the input is discarded,
in words and numbers; the heatmap figures of the paper."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from layerwise.lens_stats import SUMMARY_VALUE_COLUMNS, first_layer_above
from layerwise.paper import LaTeX, latex_escape

INPUT_TOP_RANK = 10  # "the input token leaves the top ranks": its geometric-mean rank first exceeds this


def _ci(row: pd.Series, low: str = "ci_low", high: str = "ci_high") -> str:
    return f"95\\% CI {row[low]:.3g} to {row[high]:.3g}"  # "to": a dash would merge with a minus sign


def _one(rows: pd.DataFrame, metric: str, layer: str) -> pd.Series:
    """The row of `metric` at block output `layer`: "i", or "i.mlp" where the lens also decoded sub-blocks."""
    return rows[(rows["metric"] == metric) & rows["layer"].isin([layer, f"{layer}.mlp"])].iloc[0]


def lens_macros(summary: pd.DataFrame, changes: pd.DataFrame, *, heatmaps: dict[str, str],
                model_names: dict[str, str], example: str, window: Sequence[int | None],
                window_layer_step: int) -> dict[str, float | int | str]:
    """Numbers of study 2 (first layer with >50% agreement, KL at mid-depth, the input-discarding jump,
    where the input token leaves the top ranks, norm_only's distance from the output at the last
    block) and the heatmap figures. `summary` comes from `summarize_lens`, `changes` from `layer_change`
    (both with model and decoder columns); the model column holds display names."""
    firsts = first_layer_above(summary[["model", "decoder", "layer", "depth", *SUMMARY_VALUE_COLUMNS]],
                               metric="agreement", threshold=0.5)
    leaves = first_layer_above(summary[["model", "decoder", "layer", "depth", *SUMMARY_VALUE_COLUMNS]],
                               metric="log10_input_rank", threshold=math.log10(INPUT_TOP_RANK))
    sentences, discarding = [], []
    for _, row in firsts.iterrows():
        model, decoder = row["model"], row["decoder"]
        rows = summary[(summary["model"] == model) & (summary["decoder"] == decoder)]
        n_blocks = int(rows["n_layers"].iloc[0])
        kl = _one(rows, "kl_final", str(n_blocks // 2))
        agree_last = _one(rows, "agreement", str(n_blocks))
        where = (f"first exceeds 50\\% at layer {row['layer']} of {n_blocks}" if not pd.isna(row["layer"])
                 else f"never exceeds 50\\% before the output (it reaches {agree_last['mean']:.2f} at layer {n_blocks})")
        sentence = (f"With the \\texttt{{{latex_escape(decoder)}}} decoder, the top-1 agreement of "
                    f"{latex_escape(model)} with its own output {where}; at mid-depth (layer {n_blocks // 2}) "
                    f"KL(final$\\|$layer) is {kl['mean']:.3g} nats ({_ci(kl)}).")
        if decoder != "full":
            last = _one(rows, "kl_final", str(n_blocks))
            norm = rows["final_norm"].iloc[0] if "final_norm" in rows else None
            sentence += (f" At the last block it is {last['mean']:.3g} nats ({_ci(last)}) from the output, which "
                         "only \\texttt{full} reproduces there (the model's own head applies the gain).")
            if norm == "rmsnorm":
                sentence += (" On this RMSNorm model \\texttt{norm\\_only} divides each position's stream by one "
                             "positive number, so it ranks tokens exactly as the raw, undecoded stream does: its "
                             "agreement and rank curves are the raw stream's, and only its KL values differ.")
        sentences.append(sentence)

        jump = changes[(changes["model"] == model) & (changes["decoder"] == decoder)].set_index("metric")
        kf, ki = jump.loc["kl_final"], jump.loc["kl_input"]
        leave = leaves[(leaves["model"] == model) & (leaves["decoder"] == decoder)].iloc[0]
        leave_text = (f"the input token's geometric-mean rank first exceeds {INPUT_TOP_RANK} at layer {leave['layer']}"
                      if not pd.isna(leave["layer"]) else
                      f"the input token's geometric-mean rank never exceeds {INPUT_TOP_RANK}")
        discarding.append(
            f"With \\texttt{{{latex_escape(decoder)}}}, from the input row to layer {kf['to_layer']} "
            f"KL(final$\\|$layer) of {latex_escape(model)} moves by {kf['change']:+.3g} nats "
            f"(from {kf['mean_from']:.3g} to {kf['mean_to']:.3g}; {_ci(kf)}) and KL(input$\\|$layer) by "
            f"{ki['change']:+.3g} nats (to {ki['mean_to']:.3g}; {_ci(ki)}); {leave_text}.")
    start, stop = window
    where = ("the last " + str(-start) + " positions" if start is not None and start < 0 and stop is None
             else f"positions {start if start is not None else 0} to {stop if stop is not None else 'the end'} (stop excluded)")
    layers = ("every layer" if window_layer_step == 1 else
              f"one layer in {window_layer_step} (the post also skips layers)")
    common = (f"{where} of the \\emph{{{latex_escape(example)}}} text, {layers}, plus the input row and the last "
              "block; the full grids are in the Snakemake report. Drawn by rule \\texttt{lens\\_heatmap} "
              "(\\texttt{scripts/lens\\_heatmap.py}).")
    figures = []
    for key, pattern in heatmaps.items():
        name = latex_escape(model_names[key])
        figures.append(
            "\\begin{figure}[p]\\centering"
            f"\\includegraphics[width=\\linewidth]{{{pattern.format(value='top1_logit')}}}\\par\\medskip"
            f"\\includegraphics[width=\\linewidth]{{{pattern.format(value='final_top1_rank')}}}"
            f"\\caption{{Logit lens of {name}: top-1 token per layer and position, coloured by its logit (top) and "
            f"by the rank of the model's final top-1 token (bottom; colours saturate at rank 100, as in the post); "
            f"{common}}}\\end{{figure}}")
        figures.append(
            "\\begin{figure}[p]\\centering"
            f"\\includegraphics[width=\\linewidth]{{{pattern.format(value='kl_final')}}}\\par\\medskip"
            f"\\includegraphics[width=\\linewidth]{{{pattern.format(value='kl_input')}}}"
            f"\\caption{{Input discarding in {name}: KL(final$\\|$layer) (top) and KL(input$\\|$layer) (bottom), "
            f"both with the input row and on the post's colour scale capped at 30 nats; {common}}}\\end{{figure}}")
    first = summary[(summary["layer"] == "0") & (summary["metric"] == "kl_final")].iloc[0]
    position0 = bool(summary["include_position0"].iloc[0]) if "include_position0" in summary else True
    return {"LensSummary": LaTeX(" ".join(sentences)), "LensDiscarding": LaTeX(" ".join(discarding)),
            "LensHeatmapFigures": LaTeX("\n".join(figures)), "LensTexts": int(summary["n_texts"].max()),
            "LensTokens": int(first["n_tokens"]),
            "LensPositionZero": "included" if position0 else "excluded"}


# Why we think a claim fails here, used only when its verdict is "not reproduced" (so the direction is known).
_WHY_NOT: dict[str, str] = {
    "good-guess-mid": ("At mid-depth the reading is still far from the output: in this model most of the top-1 "
                       "agreement is reached in the last blocks."),
    "converges-early": ("The agreement curve rises late, so the readings do not converge long before the end in "
                        "this model; with a model 11 times smaller than the post's, trained and quantised "
                        "differently, we cannot tell which difference causes it."),
    "input-drop": "KL(final||layer) does not fall after the input here.",
    "smooth-after": ("After the drop, KL(final||layer) rises before it falls: the path from the input to the "
                     "output is not monotone in this model, so the post's picture of one jump followed by smooth "
                     "refinement does not hold for it (the post's addendum already warns that KL is no distance)."),
    "input-jump-smaller": "The jump of KL(input||layer) is not small next to the drop of KL(final||layer) here.",
    "kl30-absent": ("The dataset mean of KL(input||layer) itself exceeds 30 nats at its peak, so most cells of a "
                    "heatmap capped at 30 sit at the cap, unlike the post's plot."),
    "input-ranks": ("The input token's ranks after layer 0 are in the 10000s (of a 49,152-token vocabulary), not "
                    "the post's 100s to 1000s."),
    "plasma-late": "The copied token is found before the last layers here.",
    "plasma-preserved": ("The first instance of the word is not kept within the post's colour scale (rank 1000): "
                         "at the blocks listed its input rank lies in the range shown, so this model gives no sign "
                         "of the preservation the post reads as the copying mechanism."),
}


def lens_verdict_macros(frame: pd.DataFrame, *, units: dict[str, str], model_name: str) -> dict[str, str]:
    """The verdict table of study 2 (`verdicts.verdict_frame` of `lens_claims.lens_claims`), an opening sentence
    counting the verdicts, and one sentence per claim that is not reproduced or undecided, with its numbers and
    (for "not reproduced") our reading of why."""
    from layerwise.verdicts import (DIFFERS, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, format_evidence,
                                    verdict_counts, verdict_table_latex)
    counts = verdict_counts(frame)
    table = verdict_table_latex(
        frame, caption=(f"Claims of the logit-lens post tested on {latex_escape(model_name)} with the post's decoder "
                        "(\\texttt{full}), each with our estimate, its 95\\% interval (bootstrap over texts; the "
                        "plasma rows are one text: a point, or the range over the blocks named) and the verdict, "
                        "computed from the numbers by rule \\texttt{lens\\_verdicts}."),
        label="tab:lens-verdicts", units=units)
    opening = (f"Of the post's {len(frame)} claims tested here, {counts[REPRODUCED]} reproduced, "
               f"{counts[NOT_REPRODUCED]} did not, {counts[DIFFERS]} differ in setting and {counts[NOT_TESTABLE]} "
               "could not be decided (Table~\\ref{tab:lens-verdicts}).")
    sentences = []
    for _, r in frame.iterrows():
        if r["verdict"] == REPRODUCED:
            continue
        ours = format_evidence(r["faithful_estimate"], r["faithful_low"], r["faithful_high"], units.get(r["key"], ""))
        sentence = (f"\\emph{{{latex_escape(r['claim'])}}} is {r['verdict']}: ours is {latex_escape(ours)} "
                    f"against the claim's {latex_escape(r['test'])}.")
        if r["verdict"] == NOT_REPRODUCED and r["key"] in _WHY_NOT:
            sentence += " " + latex_escape(_WHY_NOT[r["key"]])
        elif r["verdict"] != NOT_REPRODUCED:
            sentence += " " + latex_escape(str(r["reason"])) + "."
        sentences.append(sentence)
    bars = r"$\|$"  # "||" would print as dashes in the OT1 font encoding
    return {"LensVerdictTable": LaTeX(table.replace("||", bars)), "LensVerdictOpening": LaTeX(opening),
            "LensVerdictDiscussion": LaTeX("\n\n".join(sentences).replace("||", bars))}
