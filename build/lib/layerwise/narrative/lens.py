"""Study 2: how early each layer agrees with the model's output and how abruptly the input is discarded,
in words and numbers; the heatmap figures of the paper."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from layerwise.lens.stats import SUMMARY_VALUE_COLUMNS, first_layer_above, subblock_steps
from layerwise.workflow.macros import LaTeX, latex_escape

DATASET_NAMES = {"imdb": "IMDB", "ag_news": "AG News", "enwik8": "enwik8"}  # as the paper names the corpora
FINAL_LABEL = "final"
NEARLY_SAME = 0.95  # norm_only "reads almost as the raw stream" when they share the top-1 this often
INPUT_TOP_RANK = 10  # "the input token leaves the top ranks": its geometric-mean rank first exceeds this


def _ci(row: pd.Series, low: str = "ci_low", high: str = "ci_high") -> str:
    return f"95\\% CI {row[low]:.3g} to {row[high]:.3g}"  # "to": a dash would merge with a minus sign


def _one(rows: pd.DataFrame, metric: str, layer: str) -> pd.Series:
    """The row of `metric` at block output `layer`: "i", or "i.mlp" where the lens also decoded sub-blocks."""
    return rows[(rows["metric"] == metric) & rows["layer"].isin([layer, f"{layer}.mlp"])].iloc[0]


def _label(text: str) -> str:
    """A LaTeX label part: letters and digits only."""
    return "".join(ch for ch in str(text) if ch.isalnum())


def _heatmap_common(text: str, window: Sequence[int | None], window_layer_step: int, decoder: str) -> str:
    """The caption's shared part: decoder, positions and rows shown, where the full grids are."""
    start, stop = window
    where = ("the last " + str(-start) + " positions" if start is not None and start < 0 and stop is None
             else f"positions {start if start is not None else 0} to {stop if stop is not None else 'the end'} "
                  "(stop excluded)")
    rows = ("every block, plus the input row" if window_layer_step == 1 else
            f"the input row, block 1, every {_ordinal(window_layer_step)} block and the last block (the post also "
            "skips layers)")
    decoded = (f"decoder \\texttt{{{latex_escape(decoder)}}}"
               + (" (the post's: the final norm with its gain, then the unembedding)" if decoder == "full" else ""))
    return (f"{decoded}; {where} of the text; rows: {rows}; the full grids, with every block, are in the Snakemake "
            "report. Drawn by rule \\texttt{lens\\_heatmap} (\\texttt{scripts/lens\\_heatmap.py}).")


def subblock_sentence(summary: pd.DataFrame, where: str = "") -> str:
    """What the sub-block lens shows, per model and decoder that ran it: how the drop of KL(final||layer) from
    the input to block 1 splits between block 1's attention and MLP, the total change over the later blocks'
    attention and MLP sub-blocks, and the largest single step. `where` names the data (e.g. a text). Empty
    when no sub-block rows exist."""
    sentences = []
    for (model, decoder), rows in summary.groupby(["model", "decoder"], sort=False):
        steps = subblock_steps(rows)
        if steps.empty:
            continue
        first, later = steps.iloc[0], steps.iloc[1:]
        on = f" on {latex_escape(where)}" if where else ""
        sentence = (f"With the sub-block lens (\\texttt{{{latex_escape(decoder)}}}, {latex_escape(model)}){on}, of the "
                    f"{first['attn'] + first['mlp']:+.3g}-nat change of KL(final$\\|$layer) from the input to block "
                    f"1's output, {first['attn']:+.3g} nats come from block 1's attention and {first['mlp']:+.3g} "
                    "from its MLP.")
        if len(later):
            long = later.melt(id_vars="block", var_name="part", value_name="change")
            top = long.loc[long["change"].abs().idxmax()]
            part = "attention" if top["part"] == "attn" else "MLP"
            sentence += (f" Over blocks 2 to {int(later['block'].max())}, the attention sub-blocks change it by "
                         f"{later['attn'].sum():+.3g} nats in total and the MLP sub-blocks by "
                         f"{later['mlp'].sum():+.3g}; the largest single step is block {int(top['block'])}'s "
                         f"{part} ({top['change']:+.3g} nats).")
        sentences.append(sentence)
    return " ".join(sentences)


def _refs(patterns: dict[str, str], label) -> str:
    """`\\ref`s to one figure per model key, joined by commas."""
    return ", ".join(f"\\ref{{{label(key)}}}" for key in patterns)


def _ordinal(k: int) -> str:
    return {2: "second", 3: "third", 4: "fourth"}.get(k, f"{k}th")


def lens_macros(summary: pd.DataFrame, changes: pd.DataFrame, *, heatmaps: dict[str, str],
                model_names: dict[str, str], example: str, window: Sequence[int | None],
                window_layer_step: int, decoder: str = "full", model_tex: dict[str, str] | None = None,
                more_examples: dict[str, tuple[dict[str, str], Sequence[int | None]]] | None = None,
                dataset: str = "", max_tokens: int = 0) -> dict[str, float | int | str]:
    """Numbers of study 2 (first layer with >50% agreement, KL at mid-depth, the input-discarding jump,
    where the input token leaves the top ranks, norm_only's distance from the output at the last
    block) and the heatmap figures. `summary` comes from `summarize_lens`, `changes` from `layer_change`
    (both with model and decoder columns); the model column holds display names. Heatmaps: `heatmaps` {model
    key: path pattern with {value}} of the `example` text (four values: logits, ranks, both KLs), and
    `more_examples` {text: ({model key: pattern}, window)} (logits and ranks); captions name the model by
    `model_tex` (LaTeX, e.g. a name macro) or else its escaped display name, and the examples' `decoder`."""
    heatmap_decoder = decoder  # `decoder` below names each summary row's decoder
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
    figures, groups = [], {"example": [], "discarding": [], "more": []}
    for text, patterns, text_window, values in [(example, heatmaps, window, ("top1_logit", "final_top1_rank",
                                                                           "kl_final", "kl_input")),
                                                *[(t, pats, w, ("top1_logit", "final_top1_rank"))
                                                  for t, (pats, w) in (more_examples or {}).items()]]:
        common = _heatmap_common(text, text_window, window_layer_step, heatmap_decoder)
        for key, pattern in patterns.items():
            name = (model_tex or {}).get(key) or latex_escape(model_names[key])
            group = "example" if len(values) > 2 else "more"
            figures.append(
                "\\begin{figure}[!htbp]\\centering"
                f"\\includegraphics[width=\\linewidth]{{{pattern.format(value=values[0])}}}\\par\\medskip"
                f"\\includegraphics[width=\\linewidth]{{{pattern.format(value=values[1])}}}"
                f"\\caption{{Logit lens of {name} on the \\emph{{{latex_escape(text)}}} text: top-1 token per layer and "
                "position, coloured by its logit (top; colour range: 5th to 95th percentile of the block rows, so the "
                "input row, whose logits are far larger, saturates) and by the rank of the model's final top-1 token "
                f"(bottom; colours saturate at rank 100, as in the post); {common}}}"
                f"\\label{{fig:lens-{_label(text)}-{_label(key)}}}\\end{{figure}}")
            groups[group].append(figures[-1])
            if len(values) > 2:
                figures.append(
                    "\\begin{figure}[!htbp]\\centering"
                    f"\\includegraphics[width=\\linewidth]{{{pattern.format(value=values[2])}}}\\par\\medskip"
                    f"\\includegraphics[width=\\linewidth]{{{pattern.format(value=values[3])}}}"
                    f"\\caption{{Input discarding in {name} on the \\emph{{{latex_escape(text)}}} text: "
                    "KL(final$\\|$layer) (top) and KL(input$\\|$layer) (bottom), both with the input row and block 1 "
                    f"(the post's jump) and on the post's colour scale capped at 30 nats; {common}}}"
                    f"\\label{{fig:lens-discarding-{_label(key)}}}\\end{{figure}}")
                groups["discarding"].append(figures[-1])
    first = summary[(summary["layer"] == "0") & (summary["metric"] == "kl_final")].iloc[0]
    position0 = bool(summary["include_position0"].iloc[0]) if "include_position0" in summary else True
    return {"LensSummary": LaTeX(" ".join(sentences)), "LensDiscarding": LaTeX(" ".join(discarding)),
            "LensHeatmapFigures": LaTeX("\n".join(figures)),
            "LensFigureExample": LaTeX("\n".join(groups["example"])),
            "LensFigureDiscarding": LaTeX("\n".join(groups["discarding"])),
            "LensFigureMore": LaTeX("\n".join(groups["more"])), "LensTexts": int(summary["n_texts"].max()),
            "LensSubblocks": LaTeX(subblock_sentence(summary)),
            # references to the first model's heatmap figures, for the section's text
            "LensRefExample": LaTeX(_refs(heatmaps, lambda k: f"fig:lens-{_label(example)}-{_label(k)}")),
            "LensRefDiscarding": LaTeX(_refs(heatmaps, lambda k: f"fig:lens-discarding-{_label(k)}")),
            "LensRefMore": LaTeX(", ".join(_refs(pats, lambda k, t=t: f"fig:lens-{_label(t)}-{_label(k)}")
                                           for t, (pats, _) in (more_examples or {}).items())),
            "LensTokens": int(first["n_tokens"]),
            "LensPositionZero": "included" if position0 else "excluded",
            "LensDataset": LaTeX(DATASET_NAMES.get(dataset, latex_escape(dataset))), "LensMaxTokens": int(max_tokens)}


# Why we think a claim fails here, used only when its verdict is "not reproduced" (so the direction is known).
_WHY_NOT: dict[str, str] = {
    "good-guess-mid": ("At mid-depth the reading is still far from the output: in this model most of the top-1 "
                       "agreement is reached in the last blocks."),
    "converges-early": ("The agreement curve rises late, so the readings do not converge long before the end in "
                        "this model; with a model much smaller than the post's, trained (instruction tuning) and "
                        "quantised differently, we cannot tell which difference causes it."),
    "input-drop": "KL(final||layer) does not fall after the input here.",
    "smooth-after": ("After the drop, KL(final||layer) rises before it falls: the path from the input to the "
                     "output is not monotone in this model, so the post's picture of one jump followed by smooth "
                     "refinement does not hold for it (the post's addendum already warns that KL is no distance)."),
    "input-jump-smaller": "The jump of KL(input||layer) is not small next to the drop of KL(final||layer) here.",
    "kl30-absent": ("The dataset mean of KL(input||layer) itself exceeds 30 nats at its peak layer, so values at "
                    "the post's cap of 30 are common here, where the post's plot shows none."),
    "input-ranks": ("The input token's geometric-mean rank after layer 0 lies outside the post's 100s to 1000s "
                    "({side}): the input token is {kept} than the post describes."),
    "plasma-late": "The copied token is found before the last layers here.",
    "plasma-preserved": ("The first instance of the word is not kept within the post's colour scale (rank 1000): "
                         "at the blocks listed its input rank lies in the range shown, so this model gives no sign "
                         "of the preservation the post reads as the copying mechanism."),
}


def lens_verdict_macros(frame: pd.DataFrame, *, units: dict[str, str], model_name: str) -> dict[str, str]:
    """The verdict table of study 2 (`verdicts.verdict_frame` of `lens.claims.lens_claims`), an opening sentence
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
            above = r["faithful_estimate"] > 1000  # only read by the input-ranks text: which side it fails on
            sentence += " " + latex_escape(_WHY_NOT[r["key"]].format(
                side="in the 10000s or beyond" if above else "below 100",
                kept="kept far less" if above else "kept far more"))
        elif r["verdict"] != NOT_REPRODUCED:
            sentence += " " + latex_escape(str(r["reason"])) + "."
        sentences.append(sentence)
    return {"LensVerdictTable": LaTeX(table), "LensVerdictOpening": LaTeX(opening),
            "LensVerdictDiscussion": LaTeX("\n\n".join(sentences))}


def long_context_macros(summary: pd.DataFrame, *, dataset: str, n_texts: int, max_tokens: int,
                        figure: str | None) -> dict[str, str]:
    """The long-context run (`summarize_lens` by bucket, layer, depth; decoder full): per position bucket, the
    top-1 agreement at mid-depth with its interval and the first layer above 50%, in one sentence, and the
    figure. Without a summary (the run is off) both macros are empty."""
    if summary is None or summary.empty:
        return {"LensLongContext": LaTeX(""), "LensLongFigure": LaTeX("")}
    n_blocks = int(round(summary.loc[summary["layer"] != FINAL_LABEL, "depth"].astype(float).max()))
    mid = str(n_blocks // 2)
    firsts = first_layer_above(summary[["bucket", "layer", "depth", *SUMMARY_VALUE_COLUMNS]], metric="agreement",
                               threshold=0.5).set_index("bucket")
    parts = []
    for bucket in dict.fromkeys(summary["bucket"]):
        rows = summary[summary["bucket"] == bucket]
        agree = _one(rows, "agreement", mid)
        first = firsts.loc[bucket, "layer"]
        where = f"first above 50\\% at layer {first}" if not pd.isna(first) else "never above 50\\% before the output"
        parts.append(f"{agree['mean']:.2f} ({_ci(agree)}; {where}) at positions {latex_escape(str(bucket))}")
    name = DATASET_NAMES.get(dataset, latex_escape(dataset))
    sentence = (f"On {n_texts} {name} texts of {max_tokens} tokens each, closer to the post's paragraphs, the top-1 "
                f"agreement with the output at mid-depth (layer {mid} of {n_blocks}, decoder \\texttt{{full}}) is "
                + "; ".join(parts) + ".")
    fig = ("\\begin{figure}[!htbp]\\centering"
           f"\\includegraphics[width=\\linewidth]{{{figure}}}"
           f"\\caption{{Logit lens over {n_texts} {name} texts of {max_tokens} tokens each, one line per position "
           "bucket (the input row left out; decoder \\texttt{full}, the post's): later positions, with more context, "
           "against earlier ones. 95\\% intervals from a bootstrap over texts. Drawn by rule \\texttt{lens\\_long} "
           "(\\texttt{scripts/lens\\_long.py}).}\\label{fig:lens-long}\\end{figure}") if figure else ""
    return {"LensLongContext": LaTeX(sentence), "LensLongFigure": LaTeX(fig)}


def trained_decoder_macros(summary: pd.DataFrame, overlap: pd.DataFrame, *, name: str, n_chunks: int,
                           chunk_len: int) -> dict[str, str]:
    """The lens of a LayerNorm decoder (Study 3's own GPT-2-architecture model): per decoder the top-1 agreement
    and KL(final||layer) at mid-depth, and how often norm_only and the raw stream share the top-1 (on RMSNorm
    they always do). `summary`: `summarize_lens` by decoder, layer, depth; `overlap`: `top1_overlap`."""
    n_blocks = int(round(summary.loc[summary["layer"] != FINAL_LABEL, "depth"].astype(float).max()))
    mid = str(n_blocks // 2)
    parts = []
    for decoder, rows in summary.groupby("decoder", sort=False):
        agree, kl = _one(rows, "agreement", mid), _one(rows, "kl_final", mid)
        parts.append(f"\\texttt{{{latex_escape(decoder)}}} {agree['mean']:.2f} ({_ci(agree)}) and "
                     f"{kl['mean']:.3g} nats")
    blocks = f"{n_blocks} block" + ("s" if n_blocks != 1 else "")
    sentence = (f"On {name}, a LayerNorm model of {blocks}, over {n_chunks} held-out chunks of {chunk_len} tokens, "
                f"the top-1 agreement with the output and KL(final$\\|$layer) at mid-depth (layer {mid}) are "
                + "; ".join(parts) + ".")
    pair = overlap[(overlap["pair"] == "norm_only vs none") & (overlap["depth"] > 0)]
    if len(pair):
        low, high = pair["agree"].min(), pair["agree"].max()
        if low == 1.0:
            sentence += (" Here \\texttt{norm\\_only} and the raw stream give the same top-1 at every position: "
                         "the normalisation without gain does not change the ranking on this model either.")
        else:
            span = f"{100 * low:.1f}\\% to {100 * high:.1f}\\%" if high > low else f"{100 * low:.1f}\\%"
            nearly = low >= NEARLY_SAME
            sentence += (f" Here \\texttt{{norm\\_only}} and the raw stream give the same top-1 at {span} of "
                         "positions (by block): on LayerNorm, unlike RMSNorm, the centring can change the ranking, "
                         + ("but it does so at few positions, so \\texttt{norm\\_only} reads almost as the raw "
                            "stream here too." if nearly else
                            "and it does so often enough that \\texttt{norm\\_only} is a reading of its own."))
    full = overlap[(overlap["pair"] == "full vs norm_only") & (overlap["depth"] > 0)]
    if len(full):
        sentence += (f" \\texttt{{full}} and \\texttt{{norm\\_only}} share the top-1 at "
                     f"{100 * full['agree'].mean():.1f}\\% of block positions on average.")
    return {"LensTrained": LaTeX(sentence)}
