"""Study 2's stated numbers (`layerwise.narrative.lens`) at the edges a sentence can get wrong: a known first
layer above 50% agreement and a known mid-depth KL, with the threshold crossed at the first layer, at the last, or
never (every layer equal to it, which is not "exceeds"); the last-block gap only for decoders without the final
norm; a table without agreement rows.

Every expected string is written out from the planted numbers, formatted as the function formats them."""

from __future__ import annotations

import pandas as pd
import pytest

from layerwise.narrative.lens import lens_macros


# --------------------------------------------------------------------------- study 2: logit lens


def lens_summary(model: str, decoder: str, agreement: list[float], kl_final: list[float],
                 input_rank: list[float], *, n_texts: int = 7, n_tokens: int = 300) -> pd.DataFrame:
    """`summarize_lens` rows of layers 0..n (one value each) plus a "final" row that must be ignored: there
    agreement is 1 and the input rank 10^5, so a function that reads it finds an answer at layer "final".
    Intervals are mean -/+ 0.25; the rows are shuffled (the first layer is the shallowest, not the first row)."""
    n = len(agreement) - 1
    rows = []
    for metric, values, final in (("agreement", agreement, 1.0), ("kl_final", kl_final, 0.0),
                                  ("log10_input_rank", input_rank, 5.0)):
        for i, v in enumerate([*values, final]):
            rows.append({"model": model, "decoder": decoder, "layer": str(i) if i <= n else "final",
                         "depth": float(i), "metric": metric, "mean": v, "ci_low": v - 0.25, "ci_high": v + 0.25,
                         "n_texts": n_texts, "n_tokens": n_tokens + i, "n_layers": n, "include_position0": False})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


def lens_changes(model: str, decoder: str, kf: tuple[float, float], ki: tuple[float, float]) -> pd.DataFrame:
    """`layer_change` rows, input row "0" to layer "1": KL(final||.) and KL(input||.) from/to, interval change -/+ 1."""
    return pd.DataFrame([{"model": model, "decoder": decoder, "metric": metric, "from_layer": "0", "to_layer": "1",
                          "mean_from": a, "mean_to": b, "change": b - a, "ci_low": b - a - 1, "ci_high": b - a + 1,
                          "n_texts": 7, "n_tokens": 300}
                         for metric, (a, b) in (("kl_final", kf), ("kl_input", ki))])


AGREE_3 = [0.1, 0.3, 0.5, 0.7, 0.9]      # first > 0.5 at layer 3 (layer 2 equals 0.5: not "exceeds")
KL_MID = [8.0, 6.0, 4.25, 2.0, 0.5]      # layer 4 // 2 = 2: 4.25 nats, interval 4 to 4.5
RANK_3 = [0.25, 0.5, 1.0, 1.25, 1.5]     # log10 rank first > log10(10) = 1 at layer 3 (layer 2 equals it)


def run_lens(summary: pd.DataFrame, changes: pd.DataFrame, **kwargs) -> dict:
    options = {"heatmaps": {"m": "lens/m/{value}.pdf"}, "model_names": {"m": "A"}, "example": "plasma",
               "window": (-14, None), "window_layer_step": 1, **kwargs}
    return lens_macros(summary, changes, **options)


def test_lens_first_agreement_mid_depth_kl_and_input_discarding():
    """Planted: agreement first above 0.5 at layer 3 of 4, KL(final||.) 4.25 at layer 2, KL(final||.) falls 10 -> 2
    and KL(input||.) rises 0 -> 5 from the input row to layer 1, the input rank first above 10 at layer 3."""
    macros = run_lens(lens_summary("A", "full", AGREE_3, KL_MID, RANK_3),
                      lens_changes("A", "full", kf=(10.0, 2.0), ki=(0.0, 5.0)))
    assert str(macros["LensSummary"]) == (
        "With the \\texttt{full} decoder, the top-1 agreement of A with its own output first exceeds 50\\% at "
        "layer 3 of 4; at mid-depth (layer 2) KL(final$\\|$layer) is 4.25 nats (95\\% CI 4 to 4.5).")
    assert str(macros["LensDiscarding"]) == (
        "With \\texttt{full}, from the input row to layer 1 KL(final$\\|$layer) of A moves by -8 nats (from 10 to 2; "
        "95\\% CI -9 to -7) and KL(input$\\|$layer) by +5 nats (to 5; 95\\% CI 4 to 6); the input token's "
        "geometric-mean rank first exceeds 10 at layer 3.")
    # texts: the largest count; tokens: layer 0's count of KL(final||.) (300 + layer index in the planted table)
    assert macros["LensTexts"] == 7 and macros["LensTokens"] == 300 and macros["LensPositionZero"] == "excluded"


@pytest.mark.parametrize("agreement, rank, where, leave", [
    ([0.9, 0.2, 0.6, 0.8, 0.9], [1.5, 0.5, 0.5, 0.5, 0.5], "first exceeds 50\\% at layer 0 of 4",
     "first exceeds 10 at layer 0"),                                        # at the input row already
    ([0.1, 0.2, 0.3, 0.4, 0.75], [0.5, 0.5, 0.5, 0.5, 2.0], "first exceeds 50\\% at layer 4 of 4",
     "first exceeds 10 at layer 4"),                                        # only at the last block
    ([0.1, 0.2, 0.3, 0.4, 0.5], [1.0, 1.0, 1.0, 1.0, 1.0],
     "never exceeds 50\\% before the output (it reaches 0.50 at layer 4)", "never exceeds 10"),  # ties at threshold
])
def test_lens_agreement_and_input_rank_at_the_edges(agreement, rank, where, leave):
    """Planted: the threshold crossed at the first layer, at the last, or never (only the ignored "final" row
    exceeds it, and every layer equals the threshold, which is not "exceeds")."""
    macros = run_lens(lens_summary("A", "full", agreement, KL_MID, rank),
                      lens_changes("A", "full", kf=(10.0, 2.0), ki=(0.0, 5.0)))
    assert f"the top-1 agreement of A with its own output {where};" in str(macros["LensSummary"])
    assert str(macros["LensDiscarding"]).endswith(f"the input token's geometric-mean rank {leave}.")


def test_lens_last_block_gap_only_for_decoders_without_the_final_norm():
    """Planted: two models x two decoders with different first layers; norm_only stays 1.5 nats from the output
    at the last block (interval 1.25 to 1.75), full reaches 0.5 there but gets no such sentence."""
    summary = pd.concat([lens_summary("A", "full", AGREE_3, KL_MID, RANK_3),
                         lens_summary("A", "norm_only", [0.1, 0.6, 0.7, 0.8, 0.9], [9, 8, 7, 6, 1.5], RANK_3),
                         lens_summary("B", "full", [0.1, 0.2, 0.3, 0.4, 0.9], KL_MID, RANK_3)], ignore_index=True)
    changes = pd.concat([lens_changes("A", "full", (10.0, 2.0), (0.0, 5.0)),
                         lens_changes("A", "norm_only", (12.0, 11.5), (0.0, 0.25)),
                         lens_changes("B", "full", (10.0, 2.0), (0.0, 5.0))], ignore_index=True)
    macros = run_lens(summary, changes)
    sentences = str(macros["LensSummary"]).split("With the ")[1:]
    by_key = {s.split("}")[0].replace("\\texttt{", "") + " " + s.split(" of ")[1].split(" ")[0]: s for s in sentences}
    assert "first exceeds 50\\% at layer 3 of 4" in by_key["full A"]
    assert ("first exceeds 50\\% at layer 1 of 4; at mid-depth (layer 2) KL(final$\\|$layer) is 7 nats"
            in by_key["norm\\_only A"])
    assert "first exceeds 50\\% at layer 4 of 4" in by_key["full B"]
    assert by_key["norm\\_only A"].endswith(
        "At the last block it is 1.5 nats (95\\% CI 1.25 to 1.75) from the output, which only \\texttt{full} "
        "reproduces there (the model's own head applies the gain). ")
    assert "At the last block" not in by_key["full A"] + by_key["full B"]
    assert ("With \\texttt{norm\\_only}, from the input row to layer 1 KL(final$\\|$layer) of A moves by -0.5 nats "
            "(from 12 to 11.5; 95\\% CI -1.5 to 0.5) and KL(input$\\|$layer) by +0.25 nats (to 0.25;") \
        in str(macros["LensDiscarding"])


@pytest.mark.parametrize("window, step, where, layers", [
    ((-14, None), 1, "the last 14 positions", "every block, plus the input row"),
    ((3, 9), 3, "positions 3 to 9 (stop excluded)",
     "the input row, block 1, every third block and the last block (the post also skips layers)"),
    ((None, None), 2, "positions 0 to the end (stop excluded)",
     "the input row, block 1, every second block and the last block (the post also skips layers)"),
])
def test_lens_heatmap_captions_state_the_window(window, step, where, layers):
    """Planted: the configured window and layer step; the caption states both (block 1, the post's jump, and the
    input row are always shown, whatever the step), in both figures."""
    macros = run_lens(lens_summary("A", "full", AGREE_3, KL_MID, RANK_3),
                      lens_changes("A", "full", (10.0, 2.0), (0.0, 5.0)), window=window, window_layer_step=step)
    figures = str(macros["LensHeatmapFigures"])
    assert figures.count("\\begin{figure}") == 2 and "lens/m/kl_input.pdf" in figures
    assert figures.count(f"; {where} of the text; rows: {layers}; the full grids, with every block, are in the "
                         "Snakemake report.") == 2
    assert figures.count("on the \\emph{plasma} text") == 2


def test_lens_without_agreement_rows_raises_a_clear_error():
    """Degenerate: agreement only on the "final" row, which is never a layer of the answer."""
    summary = lens_summary("A", "full", AGREE_3, KL_MID, RANK_3)
    summary = summary[(summary["metric"] != "agreement") | (summary["layer"] == "final")]
    with pytest.raises(ValueError, match="no non-final rows for metric 'agreement'"):
        run_lens(summary, lens_changes("A", "full", (10.0, 2.0), (0.0, 5.0)))
