"""The outlier section's stated numbers (`layerwise.narrative.outliers`) at the edges a sentence can get
wrong: a known outlier share and sigma_1^2 share, massive dimensions read back from CSV, the shape verdict, no
outliers or massive entries (then no claim), fewer than two layers, the decoder/encoder contrast, a profile with
no bell.

Every expected string is written out from the planted numbers, formatted as the function formats them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerwise.narrative.outliers import model_sentences, outlier_macros, probe_sentences, source_comparison


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
