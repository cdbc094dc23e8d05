"""Study 2's and study 1's paper text from planted tables, helper by helper: `_ci`, `_one` and `lens_macros`
(narrative/lens.py); `_pct`, `_near_chance`, `_base`, `_post_cell`, `_differs`, `probe_macros` and
`reduction_figures` (narrative/probes.py).

The tables are shaped like the workflow's: the lens summary as `scripts/lens_dataset.py` writes it
(`summarize_lens` by model, decoder, layer, depth, plus n_layers and include_position0; a "final" row; the model
column replaced by the display name in `scripts/lens_figures.py`), the changes as `layer_change` writes them, the
probe summary in the row order `condition_table` gives it at two sizes (N=100 main, N=50 additions).

Planted edges: a first layer at the input row or the last block, never (every layer exactly at the threshold),
an odd number of blocks (mid-depth is n // 2), a change of exactly 0 (its sign), values whose third significant
digit or first decimal the rounding decides, a control exactly 5 points above chance, a median of an even count,
absent gap rows, a lens that decoded sub-blocks. Every expected string is written out from the planted numbers
and the templates' wording, never pasted from a run."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from layerwise.narrative import lens as lens_mod
from layerwise.narrative import probes as probe_mod
from layerwise.narrative.lens import _ci, _one, lens_macros
from layerwise.narrative.probes import (_base, _differs, _near_chance, _pct, _post_cell, probe_macros,
                                        reduction_figures)
from layerwise.workflow.macros import LaTeX
from layerwise.probes.summary import condition_table

PAPER = Path(__file__).resolve().parents[1] / "paper"

# =========================================================================== study 2: logit lens

FINAL = {"agreement": 1.0, "kl_final": 0.0, "kl_input": 99.0, "log10_input_rank": 5.0}


def _depth(label: str) -> float:
    block, _, part = label.partition(".")
    return float(block) - (0.5 if part == "attn" else 0.0)


def lens_summary(model: str, decoder: str, agreement: list[float], kl_final: list[float], input_rank: list[float],
                 *, labels: list[str] | None = None, n_layers: int | None = None, n_texts: int = 7,
                 n_tokens: int = 300, position0: bool = False, seed: int = 0) -> pd.DataFrame:
    """One model x decoder of `summarize_lens` output (one value per row label) plus the "final" row, which must
    be ignored: there agreement is 1 and the input rank 10^5, so a reader of it finds an answer at "final".
    KL(input||.) is 20 + index (a reader of the wrong metric quotes 20-odd nats). Intervals are mean -/+ 0.25.
    n_tokens: `n_tokens` + index for KL(final||.), 1000 more for every other metric. Rows are shuffled."""
    labels = labels or [str(i) for i in range(len(agreement))]
    n_layers = len(labels) - 1 if n_layers is None else n_layers
    kl_input = [20.0 + i for i in range(len(labels))]
    rows = []
    for metric, values in (("agreement", agreement), ("kl_final", kl_final), ("kl_input", kl_input),
                           ("log10_input_rank", input_rank)):
        assert len(values) == len(labels)
        for i, (label, v) in enumerate(zip([*labels, "final"], [*values, FINAL[metric]])):
            rows.append({"model": model, "decoder": decoder, "layer": label,
                         "depth": n_layers + 1.0 if label == "final" else _depth(label), "metric": metric,
                         "mean": v, "ci_low": v - 0.25, "ci_high": v + 0.25, "n_texts": n_texts,
                         "n_tokens": n_tokens + i + (0 if metric == "kl_final" else 1000), "n_layers": n_layers,
                         "include_position0": position0})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def lens_changes(model: str, decoder: str, kf: tuple[float, float, float, float],
                 ki: tuple[float, float, float, float], to_layer: str = "1") -> pd.DataFrame:
    """`layer_change` rows from the input row "0" to `to_layer`: (mean_from, mean_to, ci_low, ci_high) of
    KL(final||.) and KL(input||.); change = to - from. KL(input||.) comes first (the lookup is by metric)."""
    return pd.DataFrame([{"model": model, "decoder": decoder, "metric": metric, "from_layer": "0",
                          "to_layer": to_layer, "mean_from": a, "mean_to": b, "change": b - a, "ci_low": lo,
                          "ci_high": hi, "n_texts": 7, "n_tokens": 300, "include_position0": False}
                         for metric, (a, b, lo, hi) in (("kl_input", ki), ("kl_final", kf))])


def run_lens(summary: pd.DataFrame, changes: pd.DataFrame, **kwargs) -> dict:
    options = {"heatmaps": {"a": "lens/a/{value}.window.pdf"}, "model_names": {"a": "G_2"}, "example": "plasma",
               "window": (-14, None), "window_layer_step": 1, "dataset": "imdb", "max_tokens": 32, **kwargs}
    return lens_macros(summary, changes, **options)


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


# =========================================================================== study 1: probes

# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("x, text", [
    (0.8322, "83.2\\%"), (0.8303, "83.0\\%"), (0.66, "66.0\\%"), (1.0, "100.0\\%"), (0.0, "0.0\\%"),
    (0.1236, "12.4\\%"), (0.1234, "12.3\\%"), (-0.0312, "-3.1\\%"), (0.0899, "9.0\\%"), (1 / 13, "7.7\\%"),
])
def test_pct_one_decimal_percent_escaped(x, text):
    assert _pct(x) == text


@pytest.mark.parametrize("accuracy, chance, near", [
    (0.0899, 0.04, True),     # 4.99 points above
    (0.0901, 0.04, False),    # 5.01 points above
    (0.25, 0.20, False),      # exactly 5 points (0.2 + 0.05 == 0.25 in binary too): not within
    (0.55, 0.50, False),      # exactly 5 points again (0.5 + 0.05 == 0.55)
    (0.5499, 0.50, True),
    (0.20, 0.20, True),       # at chance
    (0.0, 0.5, True),         # below chance: not above it
    (0.9, 0.1, False),
])
def test_near_chance_is_strictly_within_five_points_above(accuracy, chance, near):
    assert _near_chance(accuracy, chance) is near


@pytest.mark.parametrize("condition, base", [
    ("raw (N=300)", "raw"), ("transfer gap (N=50)", "transfer gap"), ("raw", "raw"),
    ("train imdb, test ag_news (N=50)", "train imdb, test ag_news"),
    ("raw (N=300) (N=50)", "raw (N=300)"),    # only the end
    ("raw (N=) ", "raw (N=) "), ("raw(N=300)", "raw(N=300)"), ("raw (N=3x)", "raw (N=3x)"),
    ("x (N=300) y", "x (N=300) y"), ("transfer gap, no punctuation", "transfer gap, no punctuation"),
])
def test_base_strips_only_a_trailing_size(condition, base):
    assert _base(condition) == base


POST_CELLS = [
    ("raw", "83.2\\%"), ("post_faithful", "83.2\\%"), ("raw (N=50)", "83.2\\%"), ("post_faithful (N=50)", "83.2\\%"),
    ("random_scalar_trained", "fails"), ("random_scalar_trained (N=50)", "fails"),
    ("random_scalar_retrained", "--"),
    ("train imdb, test ag_news", "66.0\\%"), ("train imdb, test ag_news (N=50)", "66.0\\%"),
    ("train imdb+ag_news, test ag_news", "--"), ("train imdb+ag_news, test ag_news (N=50)", "--"),
    ("train imdb, test ag_news, no punctuation", "--"), ("train imdb+ag_news, test ag_news, no punctuation", "--"),
    ("masked_at_test", "83.0\\%"), ("masked_at_test (N=50)", "83.0\\%"), ("normalised", "64.0\\%"),
    ("masked_retrained", "--"), ("transfer gap", "--"), ("transfer gap (N=50)", "--"),
    ("transfer gap, no punctuation", "--"), ("shuffled_labels", "--"), ("stability", "--"), ("tree", "--"),
    ("no_punctuation", "--"), ("with_position0", "--"), ("random_per_dimension_trained", "--"),
    ("training imdb", "--"),      # "train" without the space is not a transfer row
    ("", "--"),
]


@pytest.mark.parametrize("condition, cell", POST_CELLS)
def test_post_cell_names_the_posts_number_or_a_dash(condition, cell):
    """The post (PUBLISHED): 83.22% raw, 83.03% masked, 66% on AG News, 64% normalised; its scalar-matched
    random vectors are not classified ("fails"); the same experiment at another N gets the same number."""
    assert _post_cell(condition) == cell


DIFFERS = [
    ("raw", "last class pre-norm, position 0 dropped"), ("raw (N=50)", "last class pre-norm, position 0 dropped"),
    ("post_faithful", "none (post-norm last class, position 0 kept)"),
    ("masked_at_test", "mask chosen on train (post: unclear)"), ("masked_retrained", "not in the post"),
    ("normalised", "--"), ("random_scalar_trained", "post's reading (one mean, variance per layer)"),
    ("random_scalar_retrained", "not in the post"),
    ("random_per_dimension_trained", "per-dimension moments (not the post's)"),
    ("random_per_dimension_retrained", "per-dimension moments, re-trained"),
    ("shuffled_labels", "train labels only, 7 permutations"), ("tree", "not in the post"),
    ("with_position0", "position 0 kept"), ("no_punctuation", "not run in the post (proposed)"),
    ("stability", "five text splits"), ("stability (N=50)", "five text splits"),
    ("train imdb, test ag_news", "last class pre-norm, position 0 dropped"),
    ("train imdb+ag_news, test ag_news (N=50)", "last class pre-norm, position 0 dropped"),
    ("transfer gap", "last class pre-norm, position 0 dropped"),
    ("transfer gap (N=50)", "last class pre-norm, position 0 dropped"),
    # punctuation is checked first: these rows also start with "train " / "transfer gap"
    ("train imdb, test ag_news, no punctuation", "punctuation stripped, both datasets"),
    ("train imdb+ag_news, test ag_news, no punctuation", "punctuation stripped, both datasets"),
    ("transfer gap, no punctuation", "punctuation stripped, both datasets"),
    ("something else", "--"), ("training imdb", "--"),
]


@pytest.mark.parametrize("condition, text", DIFFERS)
def test_differs_names_what_the_row_does_differently(condition, text):
    assert _differs(condition, permutations=7) == text


def test_differs_states_the_number_of_permutations():
    assert _differs("shuffled_labels", 1) == "train labels only, 1 permutations"
    assert _differs("shuffled_labels (N=50)", 20) == "train labels only, 20 permutations"


def test_reduction_figures_one_per_model_in_order():
    """A sentence citing every map, then one figure per model in the given order, each labelled for that cite."""
    text = reduction_figures({"gpt2_medium": "GPT_2 medium", "smol": "Smol"})
    assert isinstance(text, LaTeX)
    figure = ("\\begin{{figure}}[!htbp]\\centering\\includegraphics[width=\\linewidth,height=0.8\\textheight,"
              "keepaspectratio]{{probes/{key}_reductions.png}}\\caption{{PCA, t-SNE and UMAP of {name}'s hidden "
              "states, coloured by layer (reverse rainbow); rows: raw (the post's Fig.~4), unit-norm, without layer 0 "
              "(Fig.~2), unit-norm without layer 0 (Fig.~3). Drawn by rule \\texttt{{probe\\_reductions}} "
              "(\\texttt{{scripts/probe\\_reductions.py}}).}}\\label{{fig:reductions-{key}}}\\end{{figure}}")
    cite = "The maps are in Figure~\\ref{fig:reductions-gpt2_medium} and Figure~\\ref{fig:reductions-smol}."
    assert str(text) == "\n".join([cite, figure.format(key="gpt2_medium", name="GPT\\_2 medium"),
                                   figure.format(key="smol", name="Smol")])
    assert reduction_figures({}) == "\n"


# --------------------------------------------------------------------------- probe_macros

MAIN = ["raw", "normalised", "random_scalar_trained", "random_scalar_retrained", "shuffled_labels", "post_faithful",
        "masked_at_test", "masked_retrained", "train imdb, test ag_news", "train imdb+ag_news, test ag_news",
        "transfer gap"]
VARIANT = ["raw (N=50)", "train imdb, test ag_news (N=50)", "train imdb+ag_news, test ag_news (N=50)",
           "transfer gap (N=50)", "random_per_dimension_trained", "random_per_dimension_retrained", "tree",
           "with_position0", "no_punctuation", "train imdb, test ag_news, no punctuation",
           "train imdb+ag_news, test ag_news, no punctuation", "transfer gap, no punctuation", "stability"]
# accuracy per row of MAIN + VARIANT; chance 1/25 for G_2 and 1/13 for B
ACC_G = [0.8137, 0.6049, 0.0899, 0.0412, 0.0433, 0.7777, 0.7001, 0.7788, 0.6012, 0.7512, 0.2034,
         0.7466, 0.5550, 0.7, 0.0849, 0.6149, 0.6651, 0.5, 0.8081, 0.7933, 0.65, 0.72, -0.0312, 0.8101]
ACC_B = [0.52, 0.41, 0.2, 0.11, 0.08, 0.47, 0.54, 0.5, 0.4, 0.45, 0.12,
         0.49, 0.39, 0.44, 0.1, 0.3, 0.35, 0.33, 0.51, 0.48, 0.37, 0.42, 0.07, 0.5]
STD_G = {"shuffled_labels": 0.0051, "stability": 0.0149}
STD_B = {"shuffled_labels": 0.02, "stability": 0.03}


def probe_rows(model: str, chance: float, accuracy: dict[str, float], std: dict[str, float] | None = None,
               variant: set[str] = frozenset(VARIANT), n: int = 100, variant_n: int = 50) -> pd.DataFrame:
    """`condition_table(...).assign(model=...)`: condition, accuracy, std (NaN unless several runs), n_texts, chance,
    model; rows of `variant` at `variant_n`."""
    std = std or {}
    return pd.DataFrame([{"condition": c, "accuracy": a, "std": std.get(c, np.nan),
                          "n_texts": variant_n if c in variant else n, "chance": chance, "model": model}
                         for c, a in accuracy.items()])


def two_models() -> pd.DataFrame:
    return pd.concat([probe_rows("G_2", 1 / 25, dict(zip(MAIN + VARIANT, ACC_G)), STD_G),
                      probe_rows("B", 1 / 13, dict(zip(MAIN + VARIANT, ACC_B)), STD_B)], ignore_index=True)


def dims_rows(model: str, half: list[float], ninety: list[float]) -> pd.DataFrame:
    """`dims_for_share` rows per layer (thresholds as floats, as the CSV gives them) plus rows that must be
    ignored: the `weight` variant (1000 dims) and a 75% threshold (500 dims)."""
    assert len(half) == len(ninety), "one count per layer for each threshold"
    rows = []
    for layer, (h, t) in enumerate(zip(half, ninety)):
        rows += [{"layer": layer, "variant": "input_x_weight", "threshold": 50.0, "n_dims": h},
                 {"layer": layer, "variant": "input_x_weight", "threshold": 75.0, "n_dims": 500},
                 {"layer": layer, "variant": "input_x_weight", "threshold": 90.0, "n_dims": t},
                 {"layer": layer, "variant": "weight", "threshold": 50.0, "n_dims": 1000},
                 {"layer": layer, "variant": "weight", "threshold": 90.0, "n_dims": 1000}]
    return pd.DataFrame(rows).assign(model=model)


def run_probes(summary: pd.DataFrame, dims: pd.DataFrame | None = None, *, first_model: str = "G_2",
               n_texts: int = 100, variant_n_texts: int = 50) -> dict:
    dims = dims if dims is not None else pd.concat([dims_rows("G_2", [1, 2, 9], [10, 30, 31]),
                                                    dims_rows("B", [5, 5, 6], [7, 8, 9])], ignore_index=True)
    return probe_macros(summary, dims, first_model=first_model, mask_k=4, n_texts=n_texts,
                        variant_n_texts=variant_n_texts, max_tokens=48, permutations=2)


def test_planted_rows_are_shaped_like_condition_table():
    """The row names and their order and sizes above are those `condition_table` produces at N=100 / N=50 (with
    transfer datasets imdb and ag_news), so the tests below read the table the workflow passes."""
    one = lambda c, a: pd.DataFrame([{"condition": c, "accuracy": a, "chance": 0.04}])  # noqa: E731
    transfer = pd.DataFrame({"train": ["imdb", "imdb", "imdb+ag_news", "imdb+ag_news"],
                             "test": ["imdb", "ag_news", "imdb", "ag_news"], "accuracy": [0.8, 0.6, 0.8, 0.75]})
    table = condition_table(
        raw=one("raw", 0.8),
        conditions=[one("normalised", 0.6), pd.DataFrame({"condition": ["random_scalar_trained",
                                                                         "random_scalar_retrained"],
                                                           "accuracy": [0.1, 0.1]}),
                    pd.DataFrame({"condition": "shuffled_labels", "accuracy": [0.04, 0.06]}), one("post_faithful", 0.7)],
        masks=pd.DataFrame({"condition": ["full", "masked_at_test", "masked_retrained"], "accuracy": [0.8, 0.7, 0.7]}),
        transfer=transfer, variant_raw=one("raw", 0.8),
        variant_conditions=[pd.DataFrame({"condition": ["random_per_dimension_trained",
                                                        "random_per_dimension_retrained"], "accuracy": [0.5, 0.5]}),
                            one("tree", 0.5), one("with_position0", 0.8)],
        nopunct=one("raw", 0.79), variant_transfer=transfer, transfer_nopunct=transfer,
        stability=pd.DataFrame({"accuracy": [0.8, 0.81]}), n_texts=100, variant_n_texts=50)
    assert table["condition"].tolist() == MAIN + VARIANT
    assert table["n_texts"].tolist() == [100] * len(MAIN) + [50] * len(VARIANT)
    assert table["std"].notna().tolist() == [c in ("shuffled_labels", "stability") for c in MAIN + VARIANT]


def test_probe_table_full_text_at_two_sizes():
    """Every row: escaped name, what differs from the post, its N, the post's number, each model's accuracy
    (one decimal; +/- the std where several runs; transfer gaps as signed points), then chance 1/(n+1)."""
    rows = [
        "raw & last class pre-norm, position 0 dropped & 100 & 83.2\\% & 81.4\\% & 52.0\\%",
        "normalised & -- & 100 & 64.0\\% & 60.5\\% & 41.0\\%",
        "random scalar trained & post's reading (one mean, variance per layer) & 100 & fails & 9.0\\% & 20.0\\%",
        "random scalar retrained & not in the post & 100 & -- & 4.1\\% & 11.0\\%",
        "shuffled labels & train labels only, 2 permutations & 100 & -- & 4.3\\% $\\pm$ 0.5 & 8.0\\% $\\pm$ 2.0",
        "post faithful & none (post-norm last class, position 0 kept) & 100 & 83.2\\% & 77.8\\% & 47.0\\%",
        "masked at test & mask chosen on train (post: unclear) & 100 & 83.0\\% & 70.0\\% & 54.0\\%",
        "masked retrained & not in the post & 100 & -- & 77.9\\% & 50.0\\%",
        "train imdb, test ag news & last class pre-norm, position 0 dropped & 100 & 66.0\\% & 60.1\\% & 40.0\\%",
        "train imdb+ag news, test ag news & last class pre-norm, position 0 dropped & 100 & -- & 75.1\\% & 45.0\\%",
        "transfer gap & last class pre-norm, position 0 dropped & 100 & -- & +20.3 pp & +12.0 pp",
        "raw (N=50) & last class pre-norm, position 0 dropped & 50 & 83.2\\% & 74.7\\% & 49.0\\%",
        "train imdb, test ag news (N=50) & last class pre-norm, position 0 dropped & 50 & 66.0\\% & 55.5\\% & 39.0\\%",
        "train imdb+ag news, test ag news (N=50) & last class pre-norm, position 0 dropped & 50 & -- & 70.0\\% & "
        "44.0\\%",
        "transfer gap (N=50) & last class pre-norm, position 0 dropped & 50 & -- & +8.5 pp & +10.0 pp",
        "random per dimension trained & per-dimension moments (not the post's) & 50 & -- & 61.5\\% & 30.0\\%",
        "random per dimension retrained & per-dimension moments, re-trained & 50 & -- & 66.5\\% & 35.0\\%",
        "tree & not in the post & 50 & -- & 50.0\\% & 33.0\\%",
        "with position0 & position 0 kept & 50 & -- & 80.8\\% & 51.0\\%",
        "no punctuation & not run in the post (proposed) & 50 & -- & 79.3\\% & 48.0\\%",
        "train imdb, test ag news, no punctuation & punctuation stripped, both datasets & 50 & -- & 65.0\\% & 37.0\\%",
        "train imdb+ag news, test ag news, no punctuation & punctuation stripped, both datasets & 50 & -- & 72.0\\% & "
        "42.0\\%",
        "transfer gap, no punctuation & punctuation stripped, both datasets & 50 & -- & -3.1 pp & +7.0 pp",
        "stability & five text splits & 50 & -- & 81.0\\% $\\pm$ 1.5 & 50.0\\% $\\pm$ 3.0",
    ]
    expected = ["\\begin{tabular}{llrrrr}", "\\hline",
                "condition & differs from the post & $N$ & post & G\\_2 & B \\\\", "\\hline",
                *(r + " \\\\" for r in rows),
                "\\hline", "chance $1/(n+1)$ & & & & 4.0\\% & 7.7\\% \\\\", "\\hline", "\\end{tabular}"]
    table = run_probes(two_models())["ProbeTable"]
    assert isinstance(table, LaTeX)
    assert str(table).split("\n") == expected


def test_probe_table_one_model_without_std_column():
    """One model: one accuracy column; no std column at all (no "+/-" anywhere, not even where the other test
    has one); a transfer gap of exactly 0 still signed."""
    accuracy = {**dict(zip(MAIN + VARIANT, ACC_B)), "transfer gap": 0.0}
    summary = probe_rows("A", 0.5, accuracy).drop(columns="std")
    lines = str(run_probes(summary, dims_rows("A", [3], [4]), first_model="A")["ProbeTable"]).split("\n")
    assert lines[0] == "\\begin{tabular}{llrrr}"
    assert lines[2] == "condition & differs from the post & $N$ & post & A \\\\"
    assert "$\\pm$" not in "\n".join(lines)
    assert lines[4] == "raw & last class pre-norm, position 0 dropped & 100 & 83.2\\% & 52.0\\% \\\\"
    assert lines[8] == "shuffled labels & train labels only, 2 permutations & 100 & -- & 8.0\\% \\\\"
    assert lines[14] == "transfer gap & last class pre-norm, position 0 dropped & 100 & -- & +0.0 pp \\\\"  # signed 0
    assert lines[-3] == "chance $1/(n+1)$ & & & & 50.0\\% \\\\"


def test_probe_summary_full_text_at_two_sizes():
    """Planted: G_2's scalar control at 8.99% against chance 4% (under 5 points above: near chance, although it
    prints as 9.0%), B's 20% against 7.7% (not); the additions at N=50 say so, and the punctuation comparison
    takes the N=50 raw gap (+8.5 / +10.0), not the main one (+20.3 / +12.0); G_2's gap without punctuation is
    negative."""
    text = str(run_probes(two_models())["ProbeSummary"])
    assert text == " ".join([
        "For G\\_2 the raw probe reaches 81.4\\% (chance 4.0\\%) and the post's setting 77.8\\%; masking the 4 "
        "dimensions chosen on the training split gives 70.0\\% and unit norm 60.5\\%. Scalar-matched random vectors "
        "are classified at 9.0\\% by the unit-norm probe (near chance: the post's claim holds) and at 4.1\\% "
        "re-trained. With shuffled training labels the probe scores 4.3\\% on the true test labels. The transfer gap "
        "(IMDB-trained probe, IMDB minus AG News) is +20.3 points. Per-dimension-matched random vectors (N=50) are "
        "classified at 61.5\\% by the raw probe and 66.5\\% re-trained; the transfer gap (N=50) is +8.5 points raw "
        "and -3.1 points with punctuation stripped from both datasets.",
        "For B the raw probe reaches 52.0\\% (chance 7.7\\%) and the post's setting 47.0\\%; masking the 4 "
        "dimensions chosen on the training split gives 54.0\\% and unit norm 41.0\\%. Scalar-matched random vectors "
        "are classified at 20.0\\% by the unit-norm probe (not near chance) and at 11.0\\% re-trained. With shuffled "
        "training labels the probe scores 8.0\\% on the true test labels. The transfer gap (IMDB-trained probe, IMDB "
        "minus AG News) is +12.0 points. Per-dimension-matched random vectors (N=50) are classified at 30.0\\% by the "
        "raw probe and 35.0\\% re-trained; the transfer gap (N=50) is +10.0 points raw and +7.0 points with "
        "punctuation stripped from both datasets."])
    assert isinstance(run_probes(two_models())["ProbeSummary"], LaTeX)


def _one_size(accuracy: dict[str, float]) -> dict[str, float]:
    """The same rows run at a single N: no " (N=50)" repeats."""
    return {c: a for c, a in accuracy.items() if not c.endswith(" (N=50)")}


def test_probe_summary_at_one_size_names_no_n_and_takes_the_main_gap():
    summary = probe_rows("G_2", 1 / 25, _one_size(dict(zip(MAIN + VARIANT, ACC_G))), STD_G, variant=set())
    text = str(run_probes(summary, dims_rows("G_2", [1], [2]), n_texts=100, variant_n_texts=100)["ProbeSummary"])
    assert "(N=" not in text
    assert text.endswith("The transfer gap (IMDB-trained probe, IMDB minus AG News) is +20.3 points. "
                         "Per-dimension-matched random vectors are classified at 61.5\\% by the raw probe and 66.5\\% "
                         "re-trained; the transfer gap is +20.3 points raw and -3.1 points with punctuation stripped "
                         "from both datasets.")


@pytest.mark.parametrize("drop, main_gap, tail", [
    # the size-matched raw gap is missing: no punctuation comparison (it would mix two N)
    (["transfer gap (N=50)"], True, " re-trained."),
    # no punctuation gap: no comparison either
    (["transfer gap, no punctuation"], True, " re-trained."),
    # no main gap: no main sentence, but the comparison at N=50 stands
    (["transfer gap"], False, " re-trained; the transfer gap (N=50) is +8.5 points raw and -3.1 points with "
                              "punctuation stripped from both datasets."),
    (["transfer gap", "transfer gap (N=50)", "transfer gap, no punctuation"], False, " re-trained."),
])
def test_probe_summary_names_only_the_gaps_it_has(drop, main_gap, tail):
    accuracy = {c: a for c, a in zip(MAIN + VARIANT, ACC_G) if c not in drop}
    text = str(run_probes(probe_rows("G_2", 1 / 25, accuracy, STD_G), dims_rows("G_2", [1], [2]))["ProbeSummary"])
    assert ("The transfer gap (IMDB-trained probe, IMDB minus AG News) is +20.3 points. " in text) is main_gap
    assert text.endswith("Per-dimension-matched random vectors (N=50) are classified at 61.5\\% by the raw probe and "
                         f"66.5\\%{tail}")


@pytest.mark.parametrize("scalar, chance, shown, verdict", [
    (0.25, 0.20, "25.0", "not near chance"),                           # exactly 5 points above: not within
    (0.2499, 0.20, "25.0", "near chance: the post's claim holds"),     # prints as 25.0% but is within
    (0.2, 0.20, "20.0", "near chance: the post's claim holds"),
    (0.01, 0.20, "1.0", "near chance: the post's claim holds"),        # below chance
    (0.2501, 0.20, "25.0", "not near chance"),
])
def test_probe_scalar_control_verdict_at_the_threshold(scalar, chance, shown, verdict):
    accuracy = {**dict(zip(MAIN + VARIANT, ACC_G)), "random_scalar_trained": scalar}
    text = str(run_probes(probe_rows("G_2", chance, accuracy), dims_rows("G_2", [1], [2]))["ProbeSummary"])
    assert f"classified at {shown}\\% by the unit-norm probe ({verdict}) and at 4.1\\% re-trained." in text
    assert text.count("near chance") == 1


def test_probe_comparison_full_text_and_differences():
    """First model G_2: post setting 77.8%, raw 81.37%; masking 70.01 - 81.37 = -11.36 -> -11.4 points, unit
    norm 60.49 - 81.37 = -20.88 -> -20.9; the post's 83.03 - 83.22 = -0.19 -> -0.2 and 64 - 83.22 = -19.22 ->
    -19.2. Our L is max_tokens (48); the post's stays 30."""
    macros = run_probes(two_models())
    assert str(macros["ProbeComparison"]) == (
        "The post reports, for GPT-2 medium with L=30 and N=1000, 83.2\\% raw, 83.0\\% after masking, 66.0\\% on AG "
        "News, 64.0\\% after normalisation and about 60.0\\% for GPT-2 XL. Our run uses other models (N=100, L=48): "
        "for G\\_2 the post's setting gives 77.8\\% and our default 81.4\\%; masking changes accuracy by -11.4 points "
        "(post: -0.2) and normalisation by -20.9 points (post: -19.2).")
    assert macros["ProbeRawAccuracyFirst"] == 0.8137 and type(macros["ProbeRawAccuracyFirst"]) is float


def test_probe_comparison_gains_are_signed_positive_for_the_second_model():
    """First model B (second in the table): masking 54 - 52 = +2.0 points, unit norm 41 - 52 = -11.0."""
    macros = run_probes(two_models(), first_model="B")
    assert str(macros["ProbeComparison"]).endswith(
        "for B the post's setting gives 47.0\\% and our default 52.0\\%; masking changes accuracy by +2.0 points "
        "(post: -0.2) and normalisation by -11.0 points (post: -19.2).")
    assert macros["ProbeRawAccuracyFirst"] == 0.52


def test_probe_dims_medians_per_model_of_the_input_x_weight_attribution():
    """Planted per layer: G_2 needs 1, 2, 9, 2 dimensions for 50% (median 2; the mean would be 3.5) and 10, 30, 31,
    100 for 90% (an even count: median 30.5, not truncated); B 5, 5, 6 (median 5) and 7, 8, 9 (median 8). The
    `weight` variant and the 75% threshold must not count."""
    dims = pd.concat([dims_rows("G_2", [1, 2, 9, 2], [10, 30, 31, 100]), dims_rows("B", [5, 5, 6], [7, 8, 9])],
                     ignore_index=True)
    macros = run_probes(two_models(), dims)
    assert str(macros["ProbeDims"]) == (
        "In G\\_2 the median layer needs 2 dimensions for 50\\% and 30.5 for 90\\% of the probe's $|w_j x_j|$ "
        "attribution (training split). In B the median layer needs 5 dimensions for 50\\% and 8 for 90\\% of the "
        "probe's $|w_j x_j|$ attribution (training split).")


@pytest.mark.parametrize("half, ninety, text", [
    ([1, 2, 3, 9], [7, 8, 8, 9], "needs 2.5 dimensions for 50\\% and 8 for 90\\%"),     # a half-integer median
    ([1000, 1001, 1000, 1001], [2047, 2048, 2049, 2048], "needs 1000.5 dimensions for 50\\% and 2048 for 90\\%"),  # no 1e+03
])
def test_probe_dims_median_is_printed_without_rounding(half, ninety, text):
    macros = run_probes(two_models(), pd.concat([dims_rows("G_2", half, ninety), dims_rows("B", [5], [8])]))
    assert str(macros["ProbeDims"]).startswith(f"In G\\_2 the median layer {text} of the probe's")


def test_probe_table_std_only_where_that_model_has_one():
    """Planted: G_2's shuffled-label control ran several permutations (std 0.51 points), B's one (no std): B's
    cell is the plain accuracy, not "+/- nan"."""
    summary = two_models()
    summary.loc[(summary["model"] == "B") & (summary["condition"] == "shuffled_labels"), "std"] = np.nan
    lines = str(run_probes(summary)["ProbeTable"]).split("\n")
    assert lines[8] == ("shuffled labels & train labels only, 2 permutations & 100 & -- & 4.3\\% $\\pm$ 0.5 & "
                        "8.0\\% \\\\")
    assert lines[-5] == "stability & five text splits & 50 & -- & 81.0\\% $\\pm$ 1.5 & 50.0\\% $\\pm$ 3.0 \\\\"


def test_probe_numbers_passed_through():
    macros = run_probes(two_models())
    assert (macros["ProbeNTexts"], macros["ProbeVariantNTexts"], macros["ProbeMaxTokens"], macros["ProbeMaskK"],
            macros["ProbePermutations"]) == (100, 50, 48, 4, 2)
    assert macros["ProbePublishedSource"] == "Huang et al. (2024), gpt2-medium, L=30, N=1000"


# =========================================================================== the paper's macro names


def test_every_lens_and_probe_macro_the_paper_uses_is_defined():
    tex = "\n".join(p.read_text() for p in PAPER.rglob("*.tex"))
    used_lens = set(re.findall(r"\\(Lens[A-Za-z]+)", tex))
    used_probe = set(re.findall(r"\\(Probe[A-Za-z]+)", tex))
    lens = run_lens(lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5),
                    lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)))
    verdict_frame = pd.DataFrame({"key": ["k"], "claim": ["c"], "source": ["s"], "test": ["> 1"], "setting": [""],
                                  "verdict": ["reproduced"], "reason": ["r"], "faithful_estimate": [2.0],
                                  "faithful_low": [1.5], "faithful_high": [2.5], "ours_estimate": [math.nan],
                                  "ours_low": [math.nan], "ours_high": [math.nan]})
    lens = {**lens, **lens_mod.lens_verdict_macros(verdict_frame, units={}, model_name="A"),  # lens_verdicts.py
            **lens_mod.long_context_macros(None, dataset="imdb", n_texts=0, max_tokens=8, figure=None),  # lens_long.py
            "LensTrained": ""}  # lens_trained.py (its own test above)
    from test_probes_verdict_narrative import _macros as probe_verdict_macros_planted

    probe = {**run_probes(two_models()), "ProbeReductionFigures": reduction_figures({"a": "A"}),  # probe_figures.py
             **probe_verdict_macros_planted(-3.0, -2.0, -0.1, np.linspace(-1.0, 0.2, 50), 20.0, 80.0),  # probe_verdicts.py
             "ProbeMaxEpochs": 100, "ProbeHeadlineMaxEpochs": 1000,  # probe_verdicts.py, from config
             "ProbeVerdictDiscussion": probe_mod.verdict_discussion(verdict_frame)}  # probe_verdicts.py
    assert {"LensSummary", "LensDiscarding", "LensFigureExample", "LensFigureDiscarding", "LensFigureMore",
            "LensVerdictTable", "LensVerdictOpening", "LensVerdictDiscussion", "LensSubblocks", "LensTexts",
            "LensTokens", "LensPositionZero"} <= used_lens <= set(lens)
    assert {"ProbeTable", "ProbeSummary", "ProbeComparison", "ProbeDims", "ProbeNTexts"} <= used_probe <= set(probe)
    assert probe_mod.PUBLISHED["raw"] == 0.8322


def test_probe_std_and_the_posts_differences_are_in_points_exactly(monkeypatch):
    """Values planted where a 1% error crosses a rounding step: a std of 0.0997 is 9.97 -> "10.0" points (1%
    more would print 10.1); the post's masking change 0.90 - 0.80 = +10.0 points and normalisation
    0.70 - 0.80 = -10.0."""
    summary = two_models()
    summary.loc[(summary["model"] == "G_2") & (summary["condition"] == "stability"), "std"] = 0.0997
    monkeypatch.setitem(probe_mod.PUBLISHED, "raw", 0.80)
    monkeypatch.setitem(probe_mod.PUBLISHED, "masked_at_test", 0.90)
    monkeypatch.setitem(probe_mod.PUBLISHED, "normalised", 0.70)
    macros = run_probes(summary)
    assert "stability & five text splits & 50 & -- & 81.0\\% $\\pm$ 10.0 &" in str(macros["ProbeTable"])
    assert "(post: +10.0) and normalisation by -20.9 points (post: -10.0)." in str(macros["ProbeComparison"])


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
