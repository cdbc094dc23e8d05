"""The paper's stated numbers for studies 1 and 2, the outlier section and the cross-study section, from
planted tables: a known first layer above 50% agreement, a known mid-depth KL, known accuracy differences,
a known outlier share and sigma_1^2 share, a known peak depth and correlation sign. Each test also plants
the edge a sentence can get wrong: a value equal to the threshold (not "more than"), ties (the first wins),
flat profiles, a peak at the first or last layer, an absent effect (then no claim), a degenerate table.

Every expected string is written out from the planted numbers, formatted as the function formats them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerwise.narrative.crossstudy import correlation_sentence, crossstudy_macros, peak_sentence
from layerwise.narrative.lens import lens_macros
from layerwise.narrative.outliers import model_sentences, outlier_macros, probe_sentences, source_comparison
from layerwise.narrative.probes import probe_macros

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


# --------------------------------------------------------------------------- study 1: probes

PROBE_A = {"raw": 0.80, "post_faithful": 0.75, "masked_at_test": 0.70, "masked_retrained": 0.78,
           "normalised": 0.85, "random_scalar_trained": 0.14, "random_scalar_retrained": 0.12,
           "random_per_dimension_trained": 0.60, "random_per_dimension_retrained": 0.65, "shuffled_labels": 0.11,
           "train imdb, test ag_news": 0.6, "train imdb+ag_news, test ag_news": 0.75, "transfer gap": 0.20,
           "transfer gap, no punctuation": -0.03, "stability": 0.8}


def probe_summary(model: str, chance: float, accuracy: dict[str, float]) -> pd.DataFrame:
    """`condition_table` rows of one model; shuffled labels and stability carry a std of 0.01."""
    return pd.DataFrame([{"condition": c, "accuracy": a, "std": 0.01 if c in ("shuffled_labels", "stability")
                          else np.nan, "chance": chance, "model": model, "n_texts": 100} for c, a in accuracy.items()])


def probe_dims(model: str, half: list[int], ninety: list[int]) -> pd.DataFrame:
    """`dims_for_share` rows per layer; the `weight` variant (1000 dims) must be ignored."""
    rows = []
    for variant, h, n in (("input_x_weight", half, ninety), ("weight", [1000] * len(half), [1000] * len(half))):
        for layer, (a, b) in enumerate(zip(h, n)):
            rows += [{"model": model, "layer": layer, "variant": variant, "threshold": 50.0, "n_dims": a},
                     {"model": model, "layer": layer, "variant": variant, "threshold": 90.0, "n_dims": b}]
    return pd.DataFrame(rows)


def run_probes(summary: pd.DataFrame, dims: pd.DataFrame, first_model: str = "A") -> dict:
    return probe_macros(summary, dims, first_model=first_model, mask_k=4, n_texts=100, variant_n_texts=100,
                        max_tokens=30, permutations=2)


def test_probe_summary_states_the_planted_accuracies_and_gap_signs():
    """Planted: raw 80%, chance 10%, scalar control 14% (< chance + 5: near chance), transfer gap +20 points raw
    and -3 points without punctuation (the sign must survive)."""
    macros = run_probes(probe_summary("A", 0.1, PROBE_A), probe_dims("A", [4, 2, 9], [40, 10, 90]))
    assert str(macros["ProbeSummary"]) == (
        "For A the raw probe reaches 80.0\\% (chance 10.0\\%) and the post's setting 75.0\\%; masking the 4 "
        "dimensions chosen on the training split gives 70.0\\% and unit norm 85.0\\%. Scalar-matched random "
        "vectors are classified at 14.0\\% by the unit-norm probe (near chance: the post's claim holds) and at "
        "12.0\\% re-trained. With shuffled training labels the probe scores 11.0\\% on the true test labels. The "
        "transfer gap (IMDB-trained probe, IMDB minus AG News) is +20.0 points. Per-dimension-matched random vectors "
        "are classified at 60.0\\% by the raw probe and 65.0\\% re-trained; the transfer gap is +20.0 points raw "
        "and -3.0 points with punctuation stripped from both datasets.")
    # median over layers of the planted per-layer counts: median(4, 2, 9) = 4, median(40, 10, 90) = 40
    assert str(macros["ProbeDims"]) == ("In A the median layer needs 4 dimensions for 50\\% and 40 for 90\\% of the "
                                        "probe's $|w_j x_j|$ attribution (training split).")


def test_probe_summary_at_two_sizes_takes_each_gap_at_its_own_size():
    """Planted: the main transfer gap +20 points at N=100, the additions at N=50 with a raw gap of +8 points and -3
    points without punctuation; the punctuation comparison must use the N=50 raw gap and say N=50."""
    rows = probe_summary("A", 0.1, {**PROBE_A, "raw (N=50)": 0.7, "transfer gap (N=50)": 0.08})
    variant = ["raw (N=50)", "transfer gap (N=50)", "random_per_dimension_trained", "random_per_dimension_retrained",
               "transfer gap, no punctuation", "stability"]
    rows.loc[rows["condition"].isin(variant), "n_texts"] = 50
    macros = probe_macros(rows, probe_dims("A", [1], [2]), first_model="A", mask_k=4, n_texts=100,
                          variant_n_texts=50, max_tokens=30, permutations=2)
    text = str(macros["ProbeSummary"])
    assert "IMDB minus AG News) is +20.0 points." in text
    assert "the transfer gap (N=50) is +8.0 points raw and -3.0 points with punctuation" in text
    assert "Per-dimension-matched random vectors (N=50) are classified at 60.0" in text
    table = {line.split(" & ")[0]: line.split(" & ") for line in str(macros["ProbeTable"]).splitlines() if " & " in line}
    assert table["raw (N=50)"][2] == "50" and table["raw"][2] == "100" and table["stability"][2] == "50"
    assert table["raw (N=50)"][3] == table["raw"][3]  # the post's number: the same experiment at another N


@pytest.mark.parametrize("scalar, chance, verdict", [
    (0.14, 0.10, "near chance: the post's claim holds"),   # within 5 points
    (0.02, 0.10, "near chance: the post's claim holds"),   # below chance is not "above chance"
    (0.16, 0.10, "not near chance"),                       # 6 points above
    (0.30, 0.20, "not near chance"),
])
def test_probe_scalar_control_verdict(scalar, chance, verdict):
    """Planted: the scalar-matched control's accuracy against chance; the verdict follows the 5-point rule."""
    text = str(run_probes(probe_summary("A", chance, {**PROBE_A, "random_scalar_trained": scalar}),
                          probe_dims("A", [1], [2]))["ProbeSummary"])
    assert f"by the unit-norm probe ({verdict})" in text
    assert ("claim holds" in text) is verdict.startswith("near")


def test_probe_comparison_uses_the_first_model_and_states_the_differences():
    """Planted: first_model B is the table's second model: raw 50%, post setting 45%, masking +2 points, unit norm
    -10 points; the post's differences are 83.03 - 83.22 = -0.19 and 64 - 83.22 = -19.22 points."""
    b = {**PROBE_A, "raw": 0.5, "post_faithful": 0.45, "masked_at_test": 0.52, "normalised": 0.4}
    summary = pd.concat([probe_summary("A", 0.1, PROBE_A), probe_summary("B", 0.2, b)], ignore_index=True)
    macros = run_probes(summary, pd.concat([probe_dims("A", [4, 2, 9], [40, 10, 90]),
                                            probe_dims("B", [7, 7, 1], [8, 70, 9])]), first_model="B")
    assert str(macros["ProbeComparison"]).endswith(
        "Our run uses other models (N=100, L=30): for B the post's setting gives 45.0\\% and our default 50.0\\%; "
        "masking changes accuracy by +2.0 points (post: -0.2) and normalisation by -10.0 points (post: -19.2).")
    assert macros["ProbeRawAccuracyFirst"] == 0.5
    assert "In B the median layer needs 7 dimensions for 50\\% and 9 for 90\\%" in str(macros["ProbeDims"])
    rows = {line.split(" & ")[0]: line.split(" & ") for line in str(macros["ProbeTable"]).splitlines() if " & " in line}
    assert rows["condition"][4:] == ["A", "B \\\\"]                  # columns in the table's model order
    assert rows["raw"][4:] == ["80.0\\%", "50.0\\% \\\\"] and rows["raw"][2] == "100"  # N
    assert rows["masked at test"][3] == "83.0\\%"                     # the post's 83.03%
    assert rows["transfer gap, no punctuation"][4] == "-3.0 pp"
    assert rows["shuffled labels"][4] == "11.0\\% $\\pm$ 1.0"
    assert rows["train imdb+ag news, test ag news"][3] == "--"       # the post reports no mixed training
    assert "chance $1/(n+1)$ & & & & 10.0\\% & 20.0\\% \\\\" in str(macros["ProbeTable"]).splitlines()


def test_probe_without_transfer_rows_claims_no_gap():
    """Absent effect: no transfer gap rows, so the sentence names no gap."""
    summary = probe_summary("A", 0.1, {c: a for c, a in PROBE_A.items() if not c.startswith("transfer gap")})
    text = str(run_probes(summary, probe_dims("A", [1], [2]))["ProbeSummary"])
    assert "transfer gap" not in text and text.endswith("on the true test labels. Per-dimension-matched random "
                                                        "vectors are classified at 60.0\\% by the raw probe and "
                                                        "65.0\\% re-trained.")


def test_probe_dims_median_of_an_even_number_of_layers_is_not_truncated():
    """Planted: four layers need 1, 3, 4 and 10 dimensions for 50%: the median is 3.5, not 3; for 90% 35."""
    text = str(run_probes(probe_summary("A", 0.1, PROBE_A), probe_dims("A", [3, 4, 10, 1], [20, 30, 40, 50]))
               ["ProbeDims"])
    assert "the median layer needs 3.5 dimensions for 50\\% and 35 for 90\\%" in text


# --------------------------------------------------------------------------- outliers


def outlier_layers(anisotropy: list[float], without: list[float], kind: str = "decoder", **columns) -> pd.DataFrame:
    """One model's per-layer outlier table (layers 0..4) with the values of `outlier_rows`, overridable."""
    n = len(anisotropy)
    base = {"layer": range(n), "kind": kind, "anisotropy": anisotropy, "anisotropy_without": without,
            "n_outliers": [0, 5, 3, 2, 0], "outlier_share": [0, 0.04, 0.02, 0.01, 0],
            "max_norm_ratio": [1.5, 9, 7, 6, 2], "sigma1_share": [0, 0.3, 0.6, 0.2, 0],
            "twonn_id": [10, 12, 14, 13, 11], "twonn_id_without": [10, 12.5, 11, 13, 11],
            "n_massive": [0, 2, 1, 0, 0], "massive_dims": [np.nan, "9;1", "1", np.nan, np.nan],
            "max_abs": [5, 3000, 1200.5, 4, 3], "median_abs": [0.5] * n}
    return pd.DataFrame({**base, **columns})


BELL = [0.125, 0.25, 1.0, 0.5, 0.25]        # peak layer 2, 1 / median(0.125, 0.25, 0.5, 0.25) = 4x
BELL_HALF = [0.125, 0.25, 0.625, 0.5, 0.25]  # peak layer 2, 2.5x: keeps exactly half of 4x - 1


def test_outlier_sentences_state_the_planted_shares_and_peaks():
    """Planted: 3 of 5 layers with outliers, most (4%) at layer 1; the anisotropy peak at layer 2 (1, 4x) where
    outliers are 2% of the tokens and carry 60% of sigma_1^2; 0.625 without them (2.5x, exactly at the "half"
    boundary: survives); TwoNN changes most at layer 2 (14 -> 11); 3 massive entries in 2 layers, dims 9;1 and 1
    (listed sorted)."""
    text = model_sentences(outlier_layers(BELL, BELL_HALF).sample(frac=1.0, random_state=1), "A", k=4)
    assert text == (
        "In A, 3 of 5 layers have outlier tokens (norm above 4$\\times$ the layer's median); the largest norm ratio "
        "is 9 (layer 1). At most 4\\% of a layer's tokens are outliers (layer 1). Anisotropy peaks at layer 2 at 1 "
        "(4$\\times$ the median of the other layers); there the outliers, 2\\% of the tokens, carry 60\\% of "
        "$\\sigma_1^2$, and without them anisotropy is 0.625. Without outlier tokens the profile peaks at layer 2 at "
        "0.625 (2.5$\\times$ the rest): the profile's shape survives the removal. TwoNN changes by at most 3 "
        "(layer 2: 14 with, 11 without). It has 3 massive activations in 2 layers, in dimension(s) 1, 9, the "
        "largest $|x|=3{,}000$.")


def test_outlier_massive_dims_read_back_from_csv_as_numbers(tmp_path):
    """Found in the default run: a layers.csv whose massive dimensions are single numbers (507) and blanks is read
    back as floats (507.0); the sentence must still name dimension 507 (and 9, 1 from a list)."""
    path = tmp_path / "layers.csv"
    outlier_layers(BELL, BELL_HALF, massive_dims=[np.nan, "507", "9;1", np.nan, np.nan]).to_csv(path, index=False)
    single = outlier_layers(BELL, BELL_HALF, massive_dims=[np.nan, "507", "507", np.nan, np.nan])
    single.to_csv(tmp_path / "single.csv", index=False)
    assert pd.read_csv(tmp_path / "single.csv")["massive_dims"].dtype == float  # the pitfall itself
    assert "in dimension(s) 507, the largest" in model_sentences(pd.read_csv(tmp_path / "single.csv"), "A", k=4)
    assert "in dimension(s) 1, 9, 507, the largest" in model_sentences(pd.read_csv(path), "A", k=4)


@pytest.mark.parametrize("anisotropy, without, verdict", [
    (BELL, [0.125, 0.25, 0.5, 1.0, 0.25], "survives"),           # peak moves one layer, same height
    (BELL, [0.125, 0.25, 0.25, 0.5, 1.0], "does not survive"),   # moves two layers (to the last one)
    (BELL, [0.125, 0.25, 0.5, 0.25, 0.25], "does not survive"),  # same layer, 2x: 1 < half of 3
    ([1.0, 0.25, 0.125, 0.25, 0.5], [1.0, 0.25, 0.125, 0.25, 0.5], "survives"),  # peak at the first layer
    ([0.25] * 5, [0.25] * 5, "survives"),                        # flat stays flat
])
def test_outlier_shape_verdict(anisotropy, without, verdict):
    """Planted: the peak's move and height without outliers against the rule 'within one layer, at least half'."""
    text = model_sentences(outlier_layers(anisotropy, without), "A", k=4)
    assert f"the profile's shape {verdict} the removal." in text


def test_outlier_sentences_without_outliers_or_massive_entries_claim_neither():
    """Absent effects: no outlier in any layer (nothing removed, no share claimed) and no massive entry (the most
    extreme entry relative to its layer is named instead: layer 1, 40 = 80x its median, although layer 2 has the
    largest |x|, 60 = 40x)."""
    rows = outlier_layers(BELL, BELL, n_outliers=[0] * 5, n_massive=[0] * 5, massive_dims=[np.nan] * 5,
                          max_abs=[5, 40, 60, 4, 3], median_abs=[0.5, 0.5, 1.5, 0.5, 0.5])
    text = model_sentences(rows, "A", k=4)
    assert "In A, 0 of 5 layers have outlier tokens" in text
    assert "Nothing is removed, so anisotropy (peak 1 at layer 2) and TwoNN are unchanged." in text
    assert "At most" not in text and "survive" not in text and "massive activations in" not in text
    assert text.endswith("the most extreme relative to its layer, $|x|=40$ (layer 1), is 80$\\times$ the layer's "
                         "median $|x|$.")


def test_outlier_sentences_need_two_layers():
    """Degenerate: one layer has no profile shape; the error says so."""
    with pytest.raises(ValueError, match="at least two layers"):
        model_sentences(outlier_layers(BELL, BELL).iloc[:1], "A", k=4)


BELL_POINTER = ("Whether a decoder's profile is the sources' bell, with or without the outlier tokens, is decided by "
                "the bell rule of Section~\\ref{sec:geometry} on every batch (Table~\\ref{tab:geometry-verdicts}), not "
                "by where the mean profile peaks.")


def test_source_comparison_per_decoder_and_the_decoder_encoder_contrast():
    """Planted: decoder A's bell survives; decoder C's is carried by its outliers (without them it peaks at the
    last layer); encoder E peaks at 0.25 both ways. Highest decoder peak 1 with all tokens (A) and 0.75
    without (C): contrast 4x and 3x. The bell verdict itself is the geometry section's bell rule (per batch):
    the sentence points there and claims no bell per decoder from the mean profile."""
    layers = {"A": outlier_layers(BELL, BELL_HALF),
              "C": outlier_layers([0.125, 0.5, 0.25, 0.125, 0.125], [0.125, 0.125, 0.125, 0.125, 0.75],
                                  sigma1_share=[0, 0.9, 0.1, 0, 0]),
              "E": outlier_layers([0.25, 0.125, 0.125, 0.125, 0.125], [0.25, 0.125, 0.125, 0.125, 0.125], "encoder")}
    assert source_comparison(layers) == (
        BELL_POINTER + " The decoder/encoder contrast in peak anisotropy is 4$\\times$ with all tokens and "
        "3$\\times$ without the outliers.")
    assert source_comparison({"A": layers["A"], "C": layers["C"]}) == BELL_POINTER  # no encoder, no contrast
    assert source_comparison({"E": layers["E"]}) == ""  # no decoder: neither the pointer nor a contrast
    macros = outlier_macros(layers, {}, {}, k=4, absolute=100, relative=1000, dataset="wiki", probe_dataset="imdb")
    assert macros["OutliersMaxSigmaShare"] == pytest.approx(90)  # C's layer 1
    assert str(macros["OutliersSummary"]).startswith("In A, 3 of 5 layers") and " In E, 3 of 5 layers" in str(
        macros["OutliersSummary"])


@pytest.mark.parametrize("anisotropy, contrast", [
    ([0.125, 0.25, 0.375, 0.5, 1.0], "4"),   # rises to the end: no bell, peak 1 at the last layer
    ([0.25] * 5, "1"),                       # flat: peak 0.25, as the encoder's
    ([1.0, 0.5, 0.25, 0.25, 0.125], "4"),   # falls from the start: peak 1 at the first layer
])
def test_source_comparison_claims_no_bell_where_the_profile_has_none(anisotropy, contrast):
    """Planted: a decoder profile that peaks at an end layer or is flat (its shape survives the removal
    unchanged) next to an encoder peaking at 0.25; the sentence must claim no bell (nor its absence) from the
    mean profile, only point to the bell rule, and the contrast is the planted peak over 0.25."""
    text = source_comparison({"D": outlier_layers(anisotropy, anisotropy),
                              "E": outlier_layers([0.25, 0.125, 0.125, 0.125, 0.125],
                                                  [0.25, 0.125, 0.125, 0.125, 0.125], "encoder")})
    assert "holds in D" not in text and "property of its outlier tokens" not in text and "in D" not in text
    assert text == (f"{BELL_POINTER} The decoder/encoder contrast in peak anisotropy is {contrast}$\\times$ with all "
                    f"tokens and {contrast}$\\times$ without the outliers.")


def test_probe_sentence_without_massive_dims_and_one_peak_dim():
    """Planted: 3 top dimensions, none massive (no massive dimension at all), one (5) among the peak dims 5;8."""
    scores = pd.DataFrame({"condition": ["all", "without_outliers"], "accuracy": [0.9125, 0.5], "n_removed": [0, 12]})
    dims = pd.DataFrame({"condition": ["all"] * 3 + ["without_outliers"] * 3, "dim": [5, 2, 1, 9, 9, 9],
                         "is_massive": False, "is_peak": [True, False, False, True, True, True],
                         "massive_dims": np.nan, "peak_dims": "5;8"})
    assert probe_sentences(scores, dims, "M") == (
        "The layer probe of M scores 0.912 with all vectors and 0.500 with the 12 outlier vectors removed from train "
        "and test. Of its 3 most used dimensions (5, 2, 1), none holds a massive activation (no dimension does) and "
        "1 is among the dimensions holding a layer's largest entry (5, 8).")


# --------------------------------------------------------------------------- cross-study


def cross_layers(model: str, kind: str, **quantities: list[float]) -> pd.DataFrame:
    """`join_layers` output of one model: layers 0..n, relative depth layer / n, the given quantities."""
    n = len(next(iter(quantities.values()))) - 1
    table = pd.DataFrame({"model": model, "kind": kind, "n_layers": n, "layer": range(n + 1),
                          "relative_depth": np.arange(n + 1) / n})
    return table.assign(**quantities)


def correlation(x: str, y: str, rho: float, low: float, high: float, interval: str, model: str = "a",
                confidence: float = 0.95) -> dict:
    return {"model": model, "x": x, "y": y, "rho": rho, "ci_low": low, "ci_high": high, "n_boot": 100,
            "n_layers": 5, "confidence": confidence, "interval": interval}


def test_peak_sentence_states_planted_depths_ties_and_the_first_agreeing_layer():
    """Planted (4 layers, depths 0, .25, .5, .75, 1): anisotropy peaks at layer 2 (0.50), TwoNN at the last layer
    (1.00), probe recall ties at layers 0 and 1 (the first: 0.00); agreement is 0.5 at layer 1 (not more than
    half) and first above at layer 2 (0.50)."""
    rows = cross_layers("a", "decoder", anisotropy=[0.1, 0.5, 0.9, 0.3, 0.2], twonn_id=[20, 10, 10, 5, 30],
                        probe_recall=[0.9, 0.9, 0.5, 0.4, 0.3], agreement=[0.1, 0.5, 0.6, 0.9, 1.0])
    assert peak_sentence("GPT_2", rows) == (
        "In GPT\\_2 (decoder, 4 layers) anisotropy peaks at relative depth 0.50, TwoNN ID peaks at relative depth "
        "1.00, probe recall peaks at relative depth 0.00, and the logit lens first agrees with the output on more "
        "than half the tokens at relative depth 0.50.")


def test_peak_sentence_flat_profiles_missing_quantities_and_no_agreement():
    """Planted: flat anisotropy (first layer, 0.00); no probe recall (NaN: not named); agreement never above 0.5
    (then 'never'); an encoder without lens rows gets no lens clause at all."""
    never = cross_layers("a", "decoder", anisotropy=[0.3] * 5, twonn_id=[1, 2, 3, 4, 5],
                         probe_recall=[np.nan] * 5, agreement=[0.1, 0.2, 0.5, 0.5, 0.5])
    assert peak_sentence("A", never) == (
        "In A (decoder, 4 layers) anisotropy peaks at relative depth 0.00, TwoNN ID peaks at relative depth 1.00, "
        "and the logit lens never agrees with the output on more than half the tokens.")
    encoder = cross_layers("e", "encoder", anisotropy=[0.3, 0.9], twonn_id=[2, 1], agreement=[np.nan, np.nan])
    assert peak_sentence("E", encoder) == ("In E (encoder, 1 layers) anisotropy peaks at relative depth 1.00, "
                                           "TwoNN ID peaks at relative depth 0.00.")
    # rows in reverse layer order: the first layer above 0.5 is still the shallowest one (layer 2, 0.50)
    reverse = cross_layers("a", "decoder", anisotropy=[0.1, 0.2, 0.9, 0.3, 0.2], twonn_id=[5, 4, 3, 2, 1],
                           agreement=[0.1, 0.2, 0.6, 0.9, 1.0]).iloc[::-1]
    assert peak_sentence("A", reverse) == (
        "In A (decoder, 4 layers) anisotropy peaks at relative depth 0.50, TwoNN ID peaks at relative depth 0.00, "
        "and the logit lens first agrees with the output on more than half the tokens at relative depth 0.50.")


@pytest.mark.parametrize("row, clause", [
    (correlation("anisotropy", "twonn_id", 0.734, 0.41, 0.9, "excludes 0"),
     "anisotropy and TwoNN ID: $\\rho=0.73$ (95\\% interval 0.41 to 0.90, excluding zero: across layers they rise "
     "together)"),
    (correlation("mean_norm", "kl_final", -0.5, -0.8, -0.2, "excludes 0"),
     "mean norm and KL(final$\\,\\|\\,$layer): $\\rho=-0.50$ (95\\% interval -0.80 to -0.20, excluding zero: across "
     "layers they move in opposite directions)"),
    (correlation("probe_recall", "agreement", 0.3, -0.1, 0.6, "includes 0", confidence=0.9),
     "probe recall and top-1 agreement: $\\rho=0.30$ (90\\% interval -0.10 to 0.60, which includes zero: the sign "
     "is not established)"),
    (correlation("anisotropy", "kl_input", 0.8, np.nan, np.nan, "none"),
     "anisotropy and KL(input$\\,\\|\\,$layer): $\\rho=0.80$ (no interval: a quantity without per-text resamples; "
     "a description only, no claim)"),
])
def test_correlation_sentence_states_rho_interval_and_direction(row, clause):
    """Planted: rho, interval and its verdict; a direction only when the interval excludes zero."""
    assert correlation_sentence(pd.Series(row)) == clause


def test_correlation_direction_follows_the_interval_that_excludes_zero():
    """Planted: a percentile interval entirely below zero around a small positive point estimate (a bootstrap
    can put the estimate outside its interval): the established sign is negative, so not "rise together"."""
    text = correlation_sentence(pd.Series(correlation("anisotropy", "twonn_id", 0.05, -0.6, -0.2, "excludes 0")))
    assert "rise together" not in text and text.endswith("across layers they move in opposite directions)")


def test_crossstudy_macros_count_pairs_and_group_sources():
    """Planted: two models, 4 pairs of which 1 includes zero and 1 has no interval; sources of 3 distinct (data,
    interval) pairs, anisotropy's repeated for the second model."""
    layers = pd.concat([cross_layers("a", "decoder", anisotropy=[0.1, 0.9, 0.2], twonn_id=[1, 2, 3]),
                        cross_layers("b", "encoder", anisotropy=[0.9, 0.1, 0.2], twonn_id=[3, 2, 1])],
                       ignore_index=True)
    correlations = pd.DataFrame([correlation("anisotropy", "twonn_id", 0.734, 0.41, 0.9, "excludes 0"),
                                 correlation("anisotropy", "mean_norm", 0.3, -0.1, 0.6, "includes 0"),
                                 correlation("anisotropy", "twonn_id", -0.5, -0.8, -0.2, "excludes 0", model="b"),
                                 correlation("anisotropy", "probe_recall", 0.8, np.nan, np.nan, "none", model="b")])
    sources = pd.DataFrame({"model": ["a", "a", "a", "b", "b"],
                            "quantity": ["anisotropy", "mean_norm", "twonn_id", "anisotropy", "probe_recall"],
                            "data": ["wiki", "wiki", "wiki", "wiki", "imdb_test"],
                            "interval": ["texts resampled", "texts resampled", "texts resampled, neighbours fixed",
                                         "texts resampled", "none"]})
    macros = crossstudy_macros(layers, correlations, sources, {"a": "GPT_2", "b": "BERT"}, n_boot=200,
                               confidence=0.9)
    assert macros["CrossstudyPairs"] == 4 and macros["CrossstudyIncludesZero"] == 1
    assert macros["CrossstudyBoot"] == 200 and macros["CrossstudyConfidence"] == pytest.approx(90)
    summary = str(macros["CrossstudySummary"])
    assert summary.startswith("In GPT\\_2 (decoder, 2 layers) anisotropy peaks at relative depth 0.50, TwoNN ID peaks "
                              "at relative depth 1.00.")
    assert summary.endswith("In BERT (encoder, 2 layers) anisotropy peaks at relative depth 0.00, TwoNN ID peaks at "
                            "relative depth 0.00.")
    clauses = str(macros["CrossstudyCorrelations"])
    assert clauses.startswith("In GPT\\_2, anisotropy and TwoNN ID: $\\rho=0.73$")
    assert "In BERT, anisotropy and TwoNN ID: $\\rho=-0.50$" in clauses and "they rise together" in clauses
    lines = str(macros["CrossstudyTable"]).splitlines()
    assert "GPT\\_2 & anisotropy vs TwoNN ID & 0.73 & [0.41, 0.90] & excluded \\\\" in lines
    assert "GPT\\_2 & anisotropy vs mean norm & 0.30 & [-0.10, 0.60] & included \\\\" in lines
    assert "BERT & anisotropy vs probe recall & 0.80 & -- & -- \\\\" in lines
    assert str(macros["CrossstudySources"]) == (
        "anisotropy, mean norm: wiki; interval: texts resampled; TwoNN ID: wiki; interval: texts resampled, "
        "neighbours fixed; probe recall: imdb\\_test; interval: none.")


def test_crossstudy_switched_off_says_so_and_counts_nothing():
    """Degenerate: no layer rows (the study is off); the summary says so and no pair is counted."""
    macros = crossstudy_macros(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {}, n_boot=200, confidence=0.9)
    assert str(macros["CrossstudySummary"]).startswith("The cross-study view is switched off in this run")
    assert macros["CrossstudyPairs"] == 0 and macros["CrossstudyIncludesZero"] == 0
    assert macros["CrossstudyCorrelations"] == macros["CrossstudyTable"] == ""
