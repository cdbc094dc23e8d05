"""Study 2's paper text (`layerwise.narrative.lens`) from planted tables, helper by helper: `_ci`, `_one`,
`lens_macros`, the sub-block, long-context and trained-decoder sentences.

The tables are shaped like the workflow's (tests/narrative/planted.py): the lens summary as
`scripts/lens_dataset.py` writes it, with a "final" row; the changes as `layer_change` writes them. Planted edges:
a first layer at the input row or the last block, never (every layer exactly at the threshold), an odd number of
blocks (mid-depth is n // 2), a change of exactly 0 (its sign), values whose third significant digit the rounding
decides, a lens that decoded sub-blocks. Every expected string is written out from the planted numbers and the
templates' wording, never pasted from a run."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from layerwise.narrative import lens as lens_mod
from layerwise.narrative.lens import _ci, _one
from layerwise.workflow.macros import LaTeX

from tests.narrative.planted import lens_changes, lens_summary, run_lens


def common_caption(where: str = "the last 14 positions", rows: str = "every block, plus the input row") -> str:
    return (f"decoder \\texttt{{full}} (the post's: the final norm with its gain, then the unembedding); {where} of "
            f"the text; rows: {rows}; the full grids, with every block, are in the Snakemake report. Drawn by rule "
            "\\texttt{lens\\_heatmap} (\\texttt{scripts/lens\\_heatmap.py}).")


# --------------------------------------------------------------------------- _ci, _one


@pytest.mark.parametrize("low, high, text", [
    (4.8764, 5.3764, "95\\% CI 4.88 to 5.38"),           # three significant digits, rounded
    (-0.012345, 1234.5, "95\\% CI -0.0123 to 1.23e+03"),  # small and large: still three digits
    (-9.0, -7.0, "95\\% CI -9 to -7"),                    # no trailing zeros; "to", not a dash, between minus signs
    (4.0, 4.0, "95\\% CI 4 to 4"),
])
def test_ci_states_three_significant_digits_low_to_high(low, high, text):
    assert _ci(pd.Series({"ci_low": low, "ci_high": high, "mean": 123.0})) == text


def test_ci_reads_the_named_columns():
    row = pd.Series({"ci_low": 1.0, "ci_high": 2.0, "lo": 0.5, "hi": 0.75})
    assert _ci(row, "lo", "hi") == "95\\% CI 0.5 to 0.75"
    assert _ci(row, high="lo", low="hi") == "95\\% CI 0.75 to 0.5"


def test_one_takes_the_first_row_matching_both_metric_and_layer():
    """Planted: rows that match only the metric, only the layer, a layer whose label ends in the asked one ("12"),
    then the answer (12.0), then a duplicate (99.0) that must lose to the first."""
    rows = pd.DataFrame({"metric": ["kl_final", "agreement", "kl_final", "kl_final", "kl_final"],
                         "layer": ["1", "2", "12", "2", "2"], "mean": [11.0, 22.0, 112.0, 12.0, 99.0]})
    assert _one(rows, "kl_final", "2")["mean"] == 12.0
    assert _one(rows, "agreement", "2")["mean"] == 22.0
    assert _one(rows, "kl_final", "1")["mean"] == 11.0
    with pytest.raises(IndexError):  # a missing row is an error, not some other row
        _one(rows, "agreement", "1")


def test_one_reads_the_block_output_of_a_lens_that_decoded_sub_blocks():
    """With `lens.subblocks` the rows of block i are "i.attn" and "i.mlp" (the block output); there is no "i"."""
    rows = pd.DataFrame({"metric": "kl_final", "layer": ["0", "1.attn", "1.mlp", "2.attn", "2.mlp"],
                         "mean": [0.0, 1.5, 1.0, 2.5, 2.0]})
    assert _one(rows, "kl_final", "2")["mean"] == 2.0
    assert _one(rows, "kl_final", "0")["mean"] == 0.0


# --------------------------------------------------------------------------- lens_macros: the sentences

ODD_AGREE = [0.1, 0.2, 0.45, 0.55, 0.6, 0.7]   # 5 blocks; first > 0.5 at layer 3
ODD_KL = [9.0, 7.5, 5.1264, 3.0, 2.0, 1.23]    # mid-depth 5 // 2 = 2: 5.1264 -> 5.13; last block 1.23
ODD_RANK = [0.3, 0.6, 0.9, 1.0, 1.2, 1.5]      # log10 rank > 1 first at layer 4 (layer 3 equals 1)


def test_lens_sentences_odd_depth_norm_only_full_text():
    """Planted: 5 blocks (mid-depth is layer 2, not 3), norm_only (so the last-block sentence follows), the
    input rank exactly at the threshold at layer 3 (not "exceeds"), KL(final||.) falling 10.5 -> 2.25 and
    KL(input||.) rising 0 -> 5.6; the changes table lists KL(input||.) first."""
    macros = run_lens(lens_summary("G_2", "norm_only", ODD_AGREE, ODD_KL, ODD_RANK),
                      lens_changes("G_2", "norm_only", kf=(10.5, 2.25, -9.5, -7.1), ki=(0.0, 5.6, 4.0, 6.0)))
    assert str(macros["LensSummary"]) == (
        "With the \\texttt{norm\\_only} decoder, the top-1 agreement of G\\_2 with its own output first exceeds 50\\% "
        "at layer 3 of 5; at mid-depth (layer 2) KL(final$\\|$layer) is 5.13 nats (95\\% CI 4.88 to 5.38). At the "
        "last block it is 1.23 nats (95\\% CI 0.98 to 1.48) from the output, which only \\texttt{full} reproduces "
        "there (the model's own head applies the gain).")
    assert str(macros["LensDiscarding"]) == (
        "With \\texttt{norm\\_only}, from the input row to layer 1 KL(final$\\|$layer) of G\\_2 moves by -8.25 nats "
        "(from 10.5 to 2.25; 95\\% CI -9.5 to -7.1) and KL(input$\\|$layer) by +5.6 nats (to 5.6; 95\\% CI 4 to 6); "
        "the input token's geometric-mean rank first exceeds 10 at layer 4.")
    assert isinstance(macros["LensSummary"], LaTeX) and isinstance(macros["LensDiscarding"], LaTeX)


@pytest.mark.parametrize("norm, says", [("rmsnorm", True), ("layernorm", False)])
def test_lens_norm_only_on_rmsnorm_is_said_to_rank_like_the_raw_stream(norm, says):
    """Planted: the summary's final_norm column; only an RMSNorm model gets the sentence that norm_only ranks
    tokens exactly as the raw stream (a positive scalar per position), and never for the full decoder."""
    summary = pd.concat([lens_summary("G_2", d, ODD_AGREE, ODD_KL, ODD_RANK) for d in ("full", "norm_only")],
                        ignore_index=True).assign(final_norm=norm)
    changes = pd.concat([lens_changes("G_2", d, kf=(10.5, 2.25, -9.5, -7.1), ki=(0.0, 5.6, 4.0, 6.0))
                         for d in ("full", "norm_only")], ignore_index=True)
    text = str(run_lens(summary, changes)["LensSummary"])
    claim = "ranks tokens exactly as the raw, undecoded stream does"
    assert text.count(claim) == (1 if says else 0)
    if says:
        assert text.index(claim) > text.index("\\texttt{norm\\_only} decoder")


@pytest.mark.parametrize("n_blocks, mid, kl, ci", [(7, 3, "4", "3.75 to 4.25"), (6, 3, "4", "3.75 to 4.25"),
                                                   (3, 1, "2", "1.75 to 2.25"), (2, 1, "2", "1.75 to 2.25")])
def test_lens_mid_depth_is_the_floor_of_half_the_blocks(n_blocks, mid, kl, ci):
    """Planted: KL(final||.) = 1 + layer, so the quoted KL names the layer it was read at."""
    agreement = [0.9] * (n_blocks + 1)
    values = [1.0 + i for i in range(n_blocks + 1)]
    text = str(run_lens(lens_summary("A", "full", agreement, values, [0.0] * (n_blocks + 1)),
                        lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)))["LensSummary"])
    assert text.endswith(f"first exceeds 50\\% at layer 0 of {n_blocks}; at mid-depth (layer {mid}) "
                         f"KL(final$\\|$layer) is {kl} nats (95\\% CI {ci}).")


@pytest.mark.parametrize("agreement, where", [
    ([0.9, 0.2, 0.6, 0.8, 0.9], "first exceeds 50\\% at layer 0 of 4"),        # at the input row already
    ([0.1, 0.2, 0.3, 0.4, 0.75], "first exceeds 50\\% at layer 4 of 4"),       # only at the last block
    ([0.1, 0.6, 0.4, 0.4, 0.4], "first exceeds 50\\% at layer 1 of 4"),        # exceeds, then falls back
    ([0.1, 0.2, 0.3, 0.5, 0.4], "never exceeds 50\\% before the output (it reaches 0.40 at layer 4)"),
    ([0.5, 0.5, 0.5, 0.5, 0.5], "never exceeds 50\\% before the output (it reaches 0.50 at layer 4)"),  # flat
    ([0.1, 0.2, 0.3, 0.4, 0.456], "never exceeds 50\\% before the output (it reaches 0.46 at layer 4)"),
    ([0.1, 0.2, 0.3, 0.4, 0.5000001], "first exceeds 50\\% at layer 4 of 4"),  # just above the threshold
])
def test_lens_first_layer_above_half_agreement(agreement, where):
    """Planted: the threshold crossed at the first layer, the last, once and never again, or never (equal is
    not "exceeds"; the ignored "final" row has agreement 1); "never" quotes the last block's agreement, two
    decimals."""
    text = str(run_lens(lens_summary("A", "full", agreement, [6, 5, 4, 3, 2], [0.5] * 5),
                        lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)))["LensSummary"])
    assert text == (f"With the \\texttt{{full}} decoder, the top-1 agreement of A with its own output {where}; at "
                    "mid-depth (layer 2) KL(final$\\|$layer) is 4 nats (95\\% CI 3.75 to 4.25).")


@pytest.mark.parametrize("rank, leave", [
    ([1.5, 0.5, 0.5, 0.5, 0.5], "first exceeds 10 at layer 0"),     # the input row (a rank of 10^1.5)
    ([0.5, 0.5, 0.5, 0.5, 2.0], "first exceeds 10 at layer 4"),     # the last block
    ([0.0, 0.9, 1.1, 0.2, 3.0], "first exceeds 10 at layer 2"),     # the first, not the highest
    ([1.0, 1.0, 1.0, 1.0, 1.0], "never exceeds 10"),                # rank exactly 10 everywhere: not above
    ([0.0, 0.0, 0.0, 0.0, 0.0], "never exceeds 10"),                # rank 1 throughout
    ([0.0, 0.0, 1.0 + 1e-9, 0.0, 0.0], "first exceeds 10 at layer 2"),
])
def test_lens_layer_where_the_input_token_leaves_the_top_ranks(rank, leave):
    text = str(run_lens(lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], rank),
                        lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)))["LensDiscarding"])
    assert text.endswith(f"; the input token's geometric-mean rank {leave}.")
    assert lens_mod.INPUT_TOP_RANK == 10 and math.log10(lens_mod.INPUT_TOP_RANK) == 1.0


@pytest.mark.parametrize("kf, ki, moves", [
    ((10.0, 2.0, -9.0, -7.0), (0.0, 5.0, 4.0, 6.0),
     "moves by -8 nats (from 10 to 2; 95\\% CI -9 to -7) and KL(input$\\|$layer) by +5 nats (to 5; 95\\% CI 4 to 6)"),
    ((20.0, 20.0, -0.5, 0.5), (3.0, 1.0, -3.0, -1.0),    # no change: still signed; KL(input||.) falling
     "moves by +0 nats (from 20 to 20; 95\\% CI -0.5 to 0.5) and KL(input$\\|$layer) by -2 nats (to 1; 95\\% CI "
     "-3 to -1)"),
    ((1.0, 1.03456, 0.0123, 0.0567), (0.5, 1234.5, 1000.0, 1500.0),   # three significant digits
     "moves by +0.0346 nats (from 1 to 1.03; 95\\% CI 0.0123 to 0.0567) and KL(input$\\|$layer) by +1.23e+03 "
     "nats (to 1.23e+03; 95\\% CI 1e+03 to 1.5e+03)"),
])
def test_lens_input_discarding_signs_and_digits(kf, ki, moves):
    text = str(run_lens(lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5),
                        lens_changes("A", "full", kf, ki))["LensDiscarding"])
    assert text == (f"With \\texttt{{full}}, from the input row to layer 1 KL(final$\\|$layer) of A {moves}; the input "
                    "token's geometric-mean rank never exceeds 10.")


def test_lens_every_model_and_decoder_reads_its_own_rows_in_table_order():
    """Planted: A full (4 blocks, first layer 3, input rank above 10 at layer 1), A norm_only (first at layer 0,
    rank flat at exactly 10, 3.5 nats left at the last block), B full (6 blocks: mid-depth 3, first at the last
    block, the rank crosses at the last block, no change of KL(final||.)). Only norm_only gets the last-block
    sentence; each discarding sentence quotes its own change row."""
    summary = pd.concat([
        lens_summary("A", "full", [0.2, 0.4, 0.5, 0.8, 0.9], [6, 5, 4, 3, 2], [0.5, 1.5, 2, 2, 2], seed=1),
        lens_summary("A", "norm_only", [0.6, 0.7, 0.8, 0.9, 0.95], [8, 7, 6.5, 5, 3.5], [1.0] * 5, seed=2,
                     n_tokens=310),
        lens_summary("B", "full", [0.1] * 6 + [0.9], [12, 11, 10, 9.25, 8, 7, 0.5], [0.1] * 6 + [1.01],
                     n_texts=9, n_tokens=500, seed=3)], ignore_index=True)
    changes = pd.concat([lens_changes("B", "full", (20.0, 20.0, -0.5, 0.5), (3.0, 1.0, -3.0, -1.0)),
                         lens_changes("A", "norm_only", (12.0, 11.5, -1.5, 0.5), (0.0, 0.25, 0.1, 0.4)),
                         lens_changes("A", "full", (10.0, 2.0, -9.0, -7.0), (0.0, 5.0, 4.0, 6.0))],
                        ignore_index=True)
    macros = run_lens(summary, changes)
    assert str(macros["LensSummary"]) == " ".join([
        "With the \\texttt{full} decoder, the top-1 agreement of A with its own output first exceeds 50\\% at layer 3 "
        "of 4; at mid-depth (layer 2) KL(final$\\|$layer) is 4 nats (95\\% CI 3.75 to 4.25).",
        "With the \\texttt{norm\\_only} decoder, the top-1 agreement of A with its own output first exceeds 50\\% at "
        "layer 0 of 4; at mid-depth (layer 2) KL(final$\\|$layer) is 6.5 nats (95\\% CI 6.25 to 6.75). At the last "
        "block it is 3.5 nats (95\\% CI 3.25 to 3.75) from the output, which only \\texttt{full} reproduces there "
        "(the model's own head applies the gain).",
        "With the \\texttt{full} decoder, the top-1 agreement of B with its own output first exceeds 50\\% at layer 6 "
        "of 6; at mid-depth (layer 3) KL(final$\\|$layer) is 9.25 nats (95\\% CI 9 to 9.5)."])
    assert str(macros["LensDiscarding"]) == " ".join([
        "With \\texttt{full}, from the input row to layer 1 KL(final$\\|$layer) of A moves by -8 nats (from 10 to 2; "
        "95\\% CI -9 to -7) and KL(input$\\|$layer) by +5 nats (to 5; 95\\% CI 4 to 6); the input token's "
        "geometric-mean rank first exceeds 10 at layer 1.",
        "With \\texttt{norm\\_only}, from the input row to layer 1 KL(final$\\|$layer) of A moves by -0.5 nats (from "
        "12 to 11.5; 95\\% CI -1.5 to 0.5) and KL(input$\\|$layer) by +0.25 nats (to 0.25; 95\\% CI 0.1 to 0.4); the "
        "input token's geometric-mean rank never exceeds 10.",
        "With \\texttt{full}, from the input row to layer 1 KL(final$\\|$layer) of B moves by +0 nats (from 20 to 20; "
        "95\\% CI -0.5 to 0.5) and KL(input$\\|$layer) by -2 nats (to 1; 95\\% CI -3 to -1); the input token's "
        "geometric-mean rank first exceeds 10 at layer 6."])
    # texts: the largest count over all rows (B's 9); tokens: the first table row of layer 0's KL(final||.) (A full)
    assert macros["LensTexts"] == 9 and type(macros["LensTexts"]) is int
    assert macros["LensTokens"] == 300 and type(macros["LensTokens"]) is int


def test_lens_texts_is_the_largest_count_and_tokens_the_input_rows_kl_final():
    """Planted: 7 texts on most rows, 5 on the agreement rows, 8 on one KL(input||.) row; layer 0's KL(final||.)
    counts 300 tokens, every other metric 1300 + layer, layer 1's KL(final||.) 301."""
    summary = lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5)
    summary.loc[summary["metric"] == "agreement", "n_texts"] = 5
    summary.loc[(summary["metric"] == "kl_input") & (summary["layer"] == "3"), "n_texts"] = 8
    macros = run_lens(summary, lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)))
    assert macros["LensTexts"] == 8 and macros["LensTokens"] == 300


@pytest.mark.parametrize("position0, expected", [(True, "included"), (False, "excluded"), (None, "included")])
def test_lens_position_zero_after_the_csv_round_trip(tmp_path, position0, expected):
    """As `scripts/lens_figures.py` reads them: CSVs with the layer as text, the model column set to the display
    name; the flag comes back as a boolean. A summary without the column (older runs) means position 0 was kept."""
    summary = lens_summary("smollm2", "full", [0.1, 0.2, 0.3, 0.8, 0.9], [6, 5, 4, 3, 2], [0, 0, 0, 2, 2],
                           position0=bool(position0))
    if position0 is None:
        summary = summary.drop(columns="include_position0")
    summary.to_csv(tmp_path / "s.csv", index=False)
    lens_changes("smollm2", "full", (10.0, 2.0, -9.0, -7.0), (0.0, 5.0, 4.0, 6.0)).to_csv(tmp_path / "c.csv",
                                                                                         index=False)
    summary = pd.read_csv(tmp_path / "s.csv", dtype={"layer": str}).assign(model="Smol_LM")
    changes = pd.read_csv(tmp_path / "c.csv", dtype={"from_layer": str, "to_layer": str}).assign(model="Smol_LM")
    macros = run_lens(summary, changes)
    assert macros["LensPositionZero"] == expected
    assert "agreement of Smol\\_LM with its own output first exceeds 50\\% at layer 3 of 4;" in macros["LensSummary"]
    assert macros["LensDiscarding"].endswith("rank first exceeds 10 at layer 3.")


def test_lens_with_sub_blocks_quotes_block_outputs():
    """`lens.subblocks: true` labels the rows "i.attn" / "i.mlp" (block output) and the first change row is
    "1.attn": mid-depth and the last block are read at "2.mlp" and "4.mlp", never at the attention halves;
    the first layer above 50% may be an attention half."""
    labels = ["0"] + [f"{i}.{part}" for i in range(1, 5) for part in ("attn", "mlp")]
    #             0    1.a  1.m  2.a  2.m  3.a  3.m  4.a  4.m
    agreement = [0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.8, 0.9, 0.9]
    kl = [9.0, 8.0, 7.0, 6.5, 6.0, 5.0, 4.0, 3.0, 2.5]
    rank = [0.0, 0.5, 1.5, 2, 2, 2, 2, 2, 2]
    macros = run_lens(lens_summary("A", "norm_only", agreement, kl, rank, labels=labels, n_layers=4),
                      lens_changes("A", "norm_only", (10.0, 2.0, -9.0, -7.0), (0.0, 5.0, 4.0, 6.0), to_layer="1.attn"))
    assert str(macros["LensSummary"]) == (
        "With the \\texttt{norm\\_only} decoder, the top-1 agreement of A with its own output first exceeds 50\\% at "
        "layer 2.attn of 4; at mid-depth (layer 2) KL(final$\\|$layer) is 6 nats (95\\% CI 5.75 to 6.25). At the "
        "last block it is 2.5 nats (95\\% CI 2.25 to 2.75) from the output, which only \\texttt{full} reproduces "
        "there (the model's own head applies the gain).")
    assert str(macros["LensDiscarding"]).startswith("With \\texttt{norm\\_only}, from the input row to layer 1.attn ")
    assert str(macros["LensDiscarding"]).endswith("rank first exceeds 10 at layer 1.mlp.")


def test_lens_without_rows_of_the_mid_depth_layer_fails_loudly():
    """Missing rows: no KL(final||.) at mid-depth, so no number can be quoted; an error, not another layer's."""
    summary = lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5)
    summary = summary[~((summary["metric"] == "kl_final") & (summary["layer"] == "2"))]
    with pytest.raises(IndexError):
        run_lens(summary, lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)))


# --------------------------------------------------------------------------- lens_macros: the heatmap figures


LOGIT_CAPTION = ("top-1 token per layer and position, coloured by its logit (top; colour range: 5th to 95th "
                 "percentile of the block rows, so the input row, whose logits are far larger, saturates) and by the "
                 "rank of the model's final top-1 token (bottom; colours saturate at rank 100, as in the post); ")


def test_lens_heatmap_figures_full_text():
    macros = run_lens(lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5),
                      lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)))
    common = common_caption()
    example = (
        "\\begin{figure}[!htbp]\\centering\\includegraphics[width=\\linewidth]{lens/a/top1_logit.window.pdf}"
        "\\par\\medskip\\includegraphics[width=\\linewidth]{lens/a/final_top1_rank.window.pdf}\\caption{Logit lens "
        f"of G\\_2 on the \\emph{{plasma}} text: {LOGIT_CAPTION}{common}}}\\label{{fig:lens-plasma-a}}\\end{{figure}}")
    discarding = (
        "\\begin{figure}[!htbp]\\centering\\includegraphics[width=\\linewidth]{lens/a/kl_final.window.pdf}\\par"
        "\\medskip\\includegraphics[width=\\linewidth]{lens/a/kl_input.window.pdf}\\caption{Input discarding in G\\_2 "
        "on the \\emph{plasma} text: KL(final$\\|$layer) (top) and KL(input$\\|$layer) (bottom), both with the input "
        "row and block 1 (the post's jump) and on the post's colour scale capped at 30 nats; "
        f"{common}}}\\label{{fig:lens-discarding-a}}\\end{{figure}}")
    assert str(macros["LensHeatmapFigures"]) == "\n".join([example, discarding])
    assert (str(macros["LensFigureExample"]), str(macros["LensFigureDiscarding"])) == (example, discarding)
    assert macros["LensFigureMore"] == ""
    assert isinstance(macros["LensHeatmapFigures"], LaTeX)


def test_lens_more_examples_and_model_macros_in_captions():
    """A second text (the GPT-3 abstract) gets its logit and rank figure with its own window; a model with a
    name macro is called by it, unescaped; the examples' decoder is named in every caption."""
    macros = run_lens(lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5),
                      lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)), model_tex={"a": "\\ModelSmolName"},
                      more_examples={"gpt3_abstract": ({"a": "lens/a/abs/{value}.window.pdf"}, (139, 153))},
                      window_layer_step=2, decoder="norm_only")
    more = str(macros["LensFigureMore"])
    assert re.findall(r"\{(lens/[^}]*)\}", more) == ["lens/a/abs/top1_logit.window.pdf",
                                                     "lens/a/abs/final_top1_rank.window.pdf"]
    assert "Logit lens of \\ModelSmolName on the \\emph{gpt3\\_abstract} text" in more
    assert "positions 139 to 153 (stop excluded) of the text" in more and "fig:lens-gpt3abstract-a" in more
    for figure in str(macros["LensHeatmapFigures"]).split("\n"):
        assert "decoder \\texttt{norm\\_only}; " in figure and "G\\_2" not in figure
        assert ("rows: the input row, block 1, every second block and the last block (the post also skips layers)"
                in figure)
    assert str(macros["LensHeatmapFigures"]).count("\\begin{figure}") == 3
    assert (macros["LensRefExample"], macros["LensRefDiscarding"], macros["LensRefMore"]) == (
        "\\ref{fig:lens-plasma-a}", "\\ref{fig:lens-discarding-a}", "\\ref{fig:lens-gpt3abstract-a}")


def test_lens_heatmap_figures_follow_the_heatmap_keys_and_their_names():
    """Two heatmaps, in the order given (not alphabetical); names come from `model_names` by key (one more name
    than heatmaps: unused); each key's files in its own figures."""
    macros = run_lens(lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5),
                      lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)),
                      heatmaps={"z": "figs/z_{value}.pdf", "b": "figs/b_{value}.pdf"},
                      model_names={"b": "Bert#1", "z": "Zed", "c": "Unused"}, example="a_b")
    figures = str(macros["LensHeatmapFigures"]).split("\n")
    assert len(figures) == 4
    assert [re.findall(r"\{(figs/[^}]*)\}", f) for f in figures] == [
        ["figs/z_top1_logit.pdf", "figs/z_final_top1_rank.pdf"], ["figs/z_kl_final.pdf", "figs/z_kl_input.pdf"],
        ["figs/b_top1_logit.pdf", "figs/b_final_top1_rank.pdf"], ["figs/b_kl_final.pdf", "figs/b_kl_input.pdf"]]
    assert "\\caption{Logit lens of Zed on the \\emph{a\\_b} text:" in figures[0]
    assert "\\caption{Input discarding in Zed on the \\emph{a\\_b} text:" in figures[1]
    assert "\\caption{Logit lens of Bert\\#1" in figures[2] and "\\caption{Input discarding in Bert\\#1" in figures[3]
    assert all(("; " + common_caption() + "}") in f for f in figures)
    assert "Unused" not in str(macros["LensHeatmapFigures"])


@pytest.mark.parametrize("window, step, where, rows", [
    ((-14, None), 1, "the last 14 positions", "every block, plus the input row"),
    ((-3, None), 1, "the last 3 positions", "every block, plus the input row"),
    ((0, None), 1, "positions 0 to the end (stop excluded)", "every block, plus the input row"),
    ((2, None), 2, "positions 2 to the end (stop excluded)",
     "the input row, block 1, every second block and the last block (the post also skips layers)"),
    ((-5, -1), 3, "positions -5 to -1 (stop excluded)",
     "the input row, block 1, every third block and the last block (the post also skips layers)"),
    ((None, 8), 1, "positions 0 to 8 (stop excluded)", "every block, plus the input row"),
    ((3, 9), 5, "positions 3 to 9 (stop excluded)",
     "the input row, block 1, every 5th block and the last block (the post also skips layers)"),
    ((None, None), 1, "positions 0 to the end (stop excluded)", "every block, plus the input row"),
])
def test_lens_heatmap_captions_state_the_window(window, step, where, rows):
    macros = run_lens(lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5),
                      lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)), window=window, window_layer_step=step)
    figures = str(macros["LensHeatmapFigures"]).split("\n")
    assert len(figures) == 2
    assert all(f"; {common_caption(where, rows)}}}\\label{{fig:lens-" in f for f in figures)


def test_lens_without_heatmaps_has_no_figures():
    macros = run_lens(lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5),
                      lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)), heatmaps={}, model_names={})
    assert macros["LensHeatmapFigures"] == ""


def test_lens_subblock_sentence_from_planted_steps():
    """Planted: KL(final||.) 9 -> 1.attn 4 -> 1.mlp 7 (block 1: attention -5, MLP +3), 2.attn 6.5 (-0.5),
    2.mlp 6 (-0.5), 3.attn 2 (-4), 3.mlp 2.5 (+0.5); later blocks: attention -4.5, MLP 0; largest step
    block 3's attention. No sub-block rows: no sentence."""
    from layerwise.narrative.lens import subblock_sentence
    labels = ["0"] + [f"{i}.{part}" for i in range(1, 4) for part in ("attn", "mlp")]
    summary = lens_summary("A_1", "full", [0.1] * 7, [9, 4, 7, 6.5, 6, 2, 2.5], [0.0] * 7, labels=labels,
                           n_layers=3)
    assert subblock_sentence(summary) == (
        "With the sub-block lens (\\texttt{full}, A\\_1), of the -2-nat change of KL(final$\\|$layer) from the input "
        "to block 1's output, -5 nats come from block 1's attention and +3 from its MLP. Over blocks 2 to 3, the "
        "attention sub-blocks change it by -4.5 nats in total and the MLP sub-blocks by +0; the largest single step "
        "is block 3's attention (-4 nats).")
    assert subblock_sentence(lens_summary("A", "full", [0.1] * 4, [9, 4, 3, 2], [0.0] * 4)) == ""
    assert subblock_sentence(summary, where="the a_b text").startswith(
        "With the sub-block lens (\\texttt{full}, A\\_1) on the a\\_b text, of the -2-nat change")


def test_lens_long_context_sentence_per_bucket_and_empty_when_off():
    """Planted: two buckets of a 4-block lens; agreement at mid-depth (layer 2) 0.3 for early positions (first above
    50% at layer 4) and 0.6 for late ones (first at layer 2); intervals mean -/+ 0.25."""
    from layerwise.narrative.lens import long_context_macros
    early = lens_summary("A", "full", [0.1, 0.2, 0.3, 0.4, 0.9], [5, 4, 3, 2, 1], [0.0] * 5).assign(bucket="1-15")
    late = lens_summary("A", "full", [0.1, 0.2, 0.6, 0.7, 0.9], [5, 4, 3, 2, 1], [0.0] * 5).assign(bucket="16-63")
    macros = long_context_macros(pd.concat([early, late]), dataset="imdb", n_texts=16, max_tokens=64,
                                 figure="lens_long.pdf")
    assert str(macros["LensLongContext"]) == (
        "On 16 IMDB texts of 64 tokens each, closer to the post's paragraphs, the top-1 agreement with the output at "
        "mid-depth (layer 2 of 4, decoder \\texttt{full}) is 0.30 (95\\% CI 0.05 to 0.55; first above 50\\% at layer "
        "4) at positions 1-15; 0.60 (95\\% CI 0.35 to 0.85; first above 50\\% at layer 2) at positions 16-63.")
    assert "\\includegraphics[width=\\linewidth]{lens_long.pdf}" in macros["LensLongFigure"]
    assert long_context_macros(None, dataset="imdb", n_texts=0, max_tokens=64, figure=None) == {
        "LensLongContext": "", "LensLongFigure": ""}


@pytest.mark.parametrize("norm_vs_raw, says", [
    ([1.0, 1.0], "give the same top-1 at every position"),
    ([0.997, 0.998], "at 99.7\\% to 99.8\\% of positions (by block): on LayerNorm, unlike RMSNorm, the centring can "
                     "change the ranking, but it does so at few positions"),
    ([0.6, 0.6], "at 60.0\\% of positions (by block): on LayerNorm, unlike RMSNorm, the centring can change the "
                 "ranking, and it does so often enough that \\texttt{norm\\_only} is a reading of its own."),
])
def test_lens_trained_decoder_wording_follows_the_top1_overlap(norm_vs_raw, says):
    """Planted: a 2-block lens with decoders full and norm_only; the overlap of norm_only with the raw stream
    decides the wording (all, nearly all: >= 95%, or not); full vs norm_only quoted as the mean over blocks."""
    from layerwise.narrative.lens import trained_decoder_macros
    summary = pd.concat([lens_summary("m", d, [0.1, 0.6, 1.0], [3, 1.5, 0], [0.0] * 3).assign(decoder=d)
                         for d in ("full", "norm_only")]).drop(columns="model")
    overlap = pd.DataFrame({"pair": ["norm_only vs none"] * 3 + ["full vs norm_only"] * 3,
                            "layer": ["0", "1", "2"] * 2, "depth": [0.0, 1.0, 2.0] * 2,
                            "agree": [0.5, *norm_vs_raw, 0.5, 0.8, 0.9], "n": [10] * 6})
    text = str(trained_decoder_macros(summary, overlap, name="D", n_chunks=3, chunk_len=8)["LensTrained"])
    assert text.startswith("On D, a LayerNorm model of 2 blocks, over 3 held-out chunks of 8 tokens, the top-1 "
                           "agreement with the output and KL(final$\\|$layer) at mid-depth (layer 1) are \\texttt{full} 0.60 (95\\% CI "
                           "0.35 to 0.85) and 1.5 nats; \\texttt{norm\\_only} 0.60")
    assert says in text
    assert text.endswith("\\texttt{full} and \\texttt{norm\\_only} share the top-1 at 85.0\\% of block positions on "
                         "average.")
