"""The outlier section (`layerwise.narrative.outliers`) from planted tables: the token table's cells, a layer
with exactly one outlier token, shares whose second digit the rounding decides, a largest |x| of exactly 1000, an
empty token string, an encoder whose peak changes without its outliers, probes of two models, and every macro
name the paper's section uses.

Inputs are shaped like the workflow's (scripts/outlier_figures.py): the outlier layer tables and probe tables go
through a CSV round trip, the token table is built by `top_outlier_tokens` from planted (layer, vector)
occurrences. Every expected string is written out from the planted numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerwise.narrative.outliers import (dominant_token_sentence, model_sentences, outlier_macros, probe_sentences,
                                          source_comparison, token_latex, token_table)
from layerwise.outliers.detect import top_outlier_tokens

from tests.narrative.planted import paper_macros, read_back


# --------------------------------------------------------------------------- outliers: planted tables


def outlier_table(anisotropy: list[float], without: list[float], kind: str = "decoder", **columns) -> pd.DataFrame:
    """One model's per-layer outlier table (layers 0..4, as `scripts/outliers.py` writes it).

    Layer 1 has exactly one outlier token (still a layer with outlier tokens) and the largest outlier share,
    9.5%; layer 2 has 6.5%. Massive entries: 2 at layer 1 (dims 9;1), 1 at layer 2 (dim 1), largest |x| exactly
    1000 (layer 1)."""
    n = len(anisotropy)
    base = {"layer": range(n), "kind": kind, "n_layers": n - 1, "anisotropy": anisotropy,
            "anisotropy_without": without, "n_outliers": [0, 1, 3, 2, 0], "outlier_share": [0, 0.095, 0.065, 0.01, 0],
            "max_norm_ratio": [1.5, 9, 7, 6, 2], "sigma1_share": [0, 0.3, 0.6, 0.2, 0],
            "twonn_id": [10, 12, 14, 13, 11], "twonn_id_without": [10, 12.5, 11, 13, 11],
            "n_massive": [0, 2, 1, 0, 0], "massive_dims": [np.nan, "9;1", "1", np.nan, np.nan],
            "max_abs": [5, 1000, 999.5, 4, 3], "median_abs": [0.5] * n}
    return pd.DataFrame({**base, **columns})


BELL = [0.125, 0.25, 1.0, 0.5, 0.25]          # peak layer 2 at 1: 1 / median(0.125, 0.25, 0.5, 0.25) = 4x
BELL_HALF = [0.125, 0.25, 0.625, 0.5, 0.25]   # peak layer 2 at 0.625: 2.5x, keeps half of 4x - 1: survives
ENC = [0.5, 0.25, 0.25, 0.25, 0.25]           # encoder: peak 0.5 with all tokens ...
ENC_HALF = [0.25, 0.125, 0.125, 0.125, 0.125]  # ... and 0.25 without the outliers


def test_model_sentences_count_a_layer_with_one_outlier_and_state_shares_and_a_largest_x_of_1000():
    """Planted: layers 1, 2, 3 have 1, 3, 2 outlier tokens: 3 of 5 layers (a single outlier is an outlier). The
    largest share is 9.5% (layer 1), 6.5% at the anisotropy peak (layer 2), both stated to two digits. The
    largest massive |x| is exactly 1000: a whole number with a thousands separator, not 1e+03."""
    text = model_sentences(outlier_table(BELL, BELL_HALF), "A", k=4)
    assert text == (
        "In A, 3 of 5 layers have outlier tokens (norm above 4$\\times$ the layer's median); the largest norm ratio "
        "is 9 (layer 1). At most 9.5\\% of a layer's tokens are outliers (layer 1). Anisotropy peaks at layer 2 at 1 "
        "(4$\\times$ the median of the other layers); there the outliers, 6.5\\% of the tokens, carry 60\\% of "
        "$\\sigma_1^2$, and without them anisotropy is 0.625. Without outlier tokens the profile peaks at layer 2 at "
        "0.625 (2.5$\\times$ the rest): the profile's shape survives the removal. TwoNN changes by at most 3 "
        "(layer 2: 14 with, 11 without). It has 3 massive activations in 2 layers, in dimension(s) 1, 9, the "
        "largest $|x|=1{,}000$.")


@pytest.mark.parametrize("largest, stated, ratio", [
    (12.5, "12.5", "2.5"),          # below 1000: three significant digits, the .5 is kept
    (999.5, "1{,}000", "200"),      # found: rounds to 1000 at three digits, was written "1e+03"
    (1000, "1{,}000", "200"),       # exactly 1000: a whole number with a thousands separator
    (1234.5, "1{,}234", "247"),     # whole number (half to even), not "1.23e+03"
])
def test_most_extreme_entry_without_massive_activations_is_stated_without_an_exponent(largest, stated, ratio):
    """Planted: no massive entry; median |x| is 5 in every layer, so layer 1 (largest / 5) is the most extreme
    relative to its layer (the others: 5, 4, 3, 2 over 5)."""
    rows = outlier_table(BELL, BELL_HALF, n_massive=[0] * 5, massive_dims=[np.nan] * 5,
                         max_abs=[5, largest, 4, 3, 2], median_abs=[5.0] * 5)
    assert model_sentences(rows, "A", k=4).endswith(
        f"No entry passes both massive-activation thresholds; the most extreme relative to its layer, "
        f"$|x|={stated}$ (layer 1), is {ratio}$\\times$ the layer's median $|x|$.")


def test_source_comparison_contrast_divides_each_peak_by_the_encoders_own():
    """Planted: decoder A peaks at 1 with all tokens and 0.625 without; encoder E at 0.5 and 0.25. The contrast
    is 1 / 0.5 = 2x with all tokens and 0.625 / 0.25 = 2.5x without (not 1 / 0.25 = 4x)."""
    layers = {"A": outlier_table(BELL, BELL_HALF), "E": outlier_table(ENC, ENC_HALF, "encoder")}
    assert source_comparison(layers) == (
        "Whether a decoder's profile is the sources' bell, with or without the outlier tokens, is decided by the bell "
        "rule of Section~\\ref{sec:geometry} on every batch (Table~\\ref{tab:geometry-verdicts}), not by where the mean "
        "profile peaks. The decoder/encoder "
        "contrast in peak anisotropy is 2$\\times$ with all tokens and 2.5$\\times$ without the outliers.")


def test_source_comparison_without_a_kind_column_claims_nothing_about_decoders_or_encoders():
    """Degenerate: tables that do not say which kind of model they are (no `kind` column): no bell-shape verdict,
    no contrast, and no error."""
    layers = {"A": outlier_table(BELL, BELL_HALF).drop(columns="kind"),
              "E": outlier_table(ENC, ENC_HALF).drop(columns="kind")}
    assert source_comparison(layers) == ""


def test_probe_sentence_with_no_dimension_rows_claims_no_massive_dimension():
    """Degenerate: the probe's dimension table has no rows; nothing may be claimed massive."""
    scores = pd.DataFrame({"condition": ["all", "without_outliers"], "accuracy": [0.875, 0.75], "n_removed": [0, 4]})
    dims = pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("condition", str), ("dim", int), ("rank", int),
                                                           ("is_massive", bool), ("is_peak", bool),
                                                           ("massive_dims", str), ("peak_dims", str))})
    text = probe_sentences(scores, dims, "M")
    assert text.startswith("The layer probe of M scores 0.875 with all vectors and 0.750 with the 4 outlier vectors")
    assert "none holds a massive activation (no dimension does)" in text and "massive dimensions:" not in text


# --------------------------------------------------------------------------- outliers: the token table


def occurrences(*pairs: tuple[str, int, int, int, float]) -> pd.DataFrame:
    """`outlier_study` occurrences: one row per (layer, outlier vector): token, layer, row (the vector), its text
    position and norm ratio."""
    table = pd.DataFrame(pairs, columns=["token", "layer", "row", "position", "norm_ratio"])
    return table.assign(text_index=table["row"] // 10)


# GPT_2, 8 pairs. "Ġthe": 5 pairs of 3 vectors (rows 3, 7 at position 1, row 12 at position 4), layers 2-5, largest
# ratio 9.25, share 5/8 = 62.5%. ",": 3 pairs of 3 vectors (positions 0, 3, 0), layers 1-6, largest 5.5, 37.5%.
GPT2_PAIRS = [("Ġthe", 2, 3, 1, 6.5), ("Ġthe", 3, 3, 1, 9.25), ("Ġthe", 4, 3, 1, 7.0), ("Ġthe", 2, 7, 1, 5.0),
              ("Ġthe", 5, 12, 4, 8.0), (",", 1, 20, 0, 4.5), (",", 6, 21, 3, 5.5), (",", 6, 22, 0, 4.25)]
# OPT: one token that decodes to the empty string, one vector (position 2) in layers 0 and 1, ratios 12 and 11.5.
OPT_PAIRS = [("", 0, 5, 2, 12.0), ("", 1, 5, 2, 11.5)]

TOKEN_TABLE = "\n".join([
    r"\begin{table}[t]\centering\small",
    r"\caption{Tokens most often outliers (norm $>4\times$ the layer's median) on \texttt{wiki\_text}: count of "
    r"(layer, vector) outlier pairs, their share of all pairs, distinct vectors, largest norm ratio, most frequent "
    r"text positions and layers. \textvisiblespace{} marks a leading space.}\label{tab:outlier-tokens}",
    r"\begin{tabular}{llrrrrl}",
    r"\hline",
    r"model & token & pairs & share & vectors & max ratio & positions / layers \\",
    r"\hline",
    r"GPT\_2 & \texttt{\textvisiblespace{}the} & 5 & 62.5\% & 3 & 9.25 & 1, 4 / 2-5 \\",
    r" & \texttt{,} & 3 & 37.5\% & 3 & 5.5 & 0, 3 / 1-6 \\",
    r"\hline",
    r"BERT & \multicolumn{6}{l}{no outlier token} \\",
    r"\hline",
    r"OPT & \textit{(empty)} & 2 & 100.0\% & 1 & 12 & 2 / 0-1 \\",
    r"\hline",
    r"\end{tabular}",
    r"\end{table}",
])


def planted_tops() -> dict[str, pd.DataFrame]:
    """The token tables of three models in config order: GPT_2 (two tokens), BERT (no outlier), OPT (one)."""
    return {"GPT_2": top_outlier_tokens(occurrences(*GPT2_PAIRS), 10),
            "BERT": top_outlier_tokens(occurrences(), 10),
            "OPT": top_outlier_tokens(occurrences(*OPT_PAIRS), 10)}


def test_token_latex_names_an_empty_token_instead_of_an_empty_cell():
    assert token_latex("") == r"\textit{(empty)}"
    assert token_latex("▁a") == r"\texttt{\textvisiblespace{}a}"


def test_token_table_states_the_planted_pairs_shares_vectors_ratios_positions_and_layers():
    """Planted: see GPT2_PAIRS and OPT_PAIRS; BERT has no outlier token. The model is named on its first row only,
    every model block is closed by a rule, and the table is a complete float."""
    assert token_table(planted_tops(), dataset="wiki_text", k=4) == TOKEN_TABLE


# --------------------------------------------------------------------------- outliers: the section's macros


def probe_tables(accuracy: tuple[float, float], n_removed: int, top: list[int], massive: list[int],
                 peak: list[int], without_top: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`probe_without_outliers` output: scores per condition and the top dimensions per condition, each flagged
    massive / peak, with the model's massive and peak dimension lists on every row."""
    scores = pd.DataFrame({"condition": ["all", "without_outliers"], "accuracy": list(accuracy), "n_train": 80,
                           "n_test": 20, "n_removed": [0, n_removed]})
    rows = [{"condition": c, "dim": d, "rank": r + 1, "is_massive": d in massive, "is_peak": d in peak}
            for c, dims in (("all", top), ("without_outliers", without_top)) for r, d in enumerate(dims)]
    dims = pd.DataFrame(rows).assign(massive_dims=";".join(map(str, massive)), peak_dims=";".join(map(str, peak)))
    return scores, dims


def test_outlier_macros_define_every_paper_macro_with_the_planted_values(tmp_path):
    """Planted: decoder A and encoder E (contrast 2x / 2.5x, see above); probes of two models: GPT_2 scores 0.875
    and 0.75 without 12 outlier vectors, top dims 7, 3 of which 7 is massive and both are peak dims (3;7); OPT
    scores 0.5 and 0.625 without 3, top dims 1, 2, 3, none massive (no massive dimension at all), 3 a peak dim."""
    layers = {name: read_back(table, tmp_path, name, dtype={"massive_dims": str}) for name, table in
              (("A", outlier_table(BELL, BELL_HALF)),
               ("E", outlier_table(ENC, ENC_HALF, "encoder", sigma1_share=[0.8, 0.1, 0, 0, 0])))}
    probes = {}
    for name, tables in (("GPT_2", probe_tables((0.875, 0.75), 12, [7, 3], [7], [3, 7], [7, 2])),
                         ("OPT", probe_tables((0.5, 0.625), 3, [1, 2, 3], [], [3], [1, 2, 3]))):
        probes[name] = tuple(read_back(t, tmp_path, f"{name}_{i}") for i, t in enumerate(tables))
    macros = outlier_macros(layers, planted_tops(), probes, k=4, absolute=100, relative=1000, dataset="wiki_text",
                            probe_dataset="imdb")
    # Rule outlier_figures adds the dominant-token sentence (from the raw occurrences) to outlier_macros' output:
    # together they define every macro the section uses, and nothing the section does not.
    macros["OutliersDominantToken"] = dominant_token_sentence(
        {"GPT_2": occurrences(*GPT2_PAIRS), "BERT": occurrences(), "OPT": occurrences(*OPT_PAIRS)})
    assert set(macros) == paper_macros("outliers", "Outliers") | {"OutliersMaxSigmaShare"}
    # Planted: GPT_2's layers 2-5 hold only "Ġthe" (layers 1 and 6 only ","), BERT none, OPT only "" at 0-1.
    assert str(macros["OutliersDominantToken"]) == (
        "In GPT\\_2 most outlier tokens at layers 2--5 are one token type, \\texttt{\\textvisiblespace{}the} (at "
        "least 100\\% of each layer's outlier occurrences). In BERT no layer's outliers are mostly one token type. "
        "In OPT most outlier tokens at layers 0--1 are one token type, \\textit{(empty)} (at least 100\\% of each "
        "layer's outlier occurrences).")
    assert (macros["OutliersK"], macros["OutliersMassiveAbsolute"], macros["OutliersMassiveRelative"]) == (4, 100, 1000)
    assert (macros["OutliersDataset"], macros["OutliersProbeDataset"]) == ("wiki_text", "imdb")
    assert macros["OutliersMaxSigmaShare"] == pytest.approx(80)  # E's layer 0
    assert str(macros["OutliersProbe"]) == (
        "The layer probe of GPT\\_2 scores 0.875 with all vectors and 0.750 with the 12 outlier vectors removed from "
        "train and test. Of its 2 most used dimensions (7, 3), 1 hold massive activations (massive dimensions: 7) "
        "and 2 are among the dimensions holding a layer's largest entry (3, 7). "
        "The layer probe of OPT scores 0.500 with all vectors and 0.625 with the 3 outlier vectors removed from "
        "train and test. Of its 3 most used dimensions (1, 2, 3), none holds a massive activation (no dimension "
        "does) and 1 is among the dimensions holding a layer's largest entry (3).")
    assert str(macros["OutliersSourceComparison"]) == (
        "Whether a decoder's profile is the sources' bell, with or without the outlier tokens, is decided by the bell "
        "rule of Section~\\ref{sec:geometry} on every batch (Table~\\ref{tab:geometry-verdicts}), not by where the mean "
        "profile peaks. The decoder/encoder "
        "contrast in peak anisotropy is 2$\\times$ with all tokens and 2.5$\\times$ without the outliers.")
    assert str(macros["OutliersTokenTable"]) == TOKEN_TABLE
    summary = str(macros["OutliersSummary"])
    assert summary.startswith("In A, 3 of 5 layers have outlier tokens") and " In E, 3 of 5 layers" in summary
