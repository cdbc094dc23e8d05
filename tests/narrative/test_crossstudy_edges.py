"""The cross-study section's stated numbers (`layerwise.narrative.crossstudy`) at the edges a sentence can get
wrong: a known peak depth with ties (the first wins), flat profiles and missing quantities, the correlation's
sign following the interval that excludes zero, the section switched off.

Every expected string is written out from the planted numbers, formatted as the function formats them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerwise.narrative.crossstudy import correlation_sentence, crossstudy_macros, peak_sentence


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
