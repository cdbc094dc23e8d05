"""The cross-study section (`layerwise.narrative.crossstudy`) from planted tables: model order as the files give
it (not alphabetical), rows that withhold an interval, the section switched off, and every macro name the paper's
section uses. Inputs go through the CSV round trip of scripts/crossstudy_figures.py; every expected string is
written out from the planted numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from layerwise.narrative.crossstudy import correlation_sentence, correlation_table_latex, crossstudy_macros

from tests.narrative.planted import paper_macros, read_back


# --------------------------------------------------------------------------- cross-study


def cross_layers(model: str, kind: str, **quantities: list[float]) -> pd.DataFrame:
    """`join_layers` output of one model: layers 0..n, relative depth layer / n, the given quantities."""
    n = len(next(iter(quantities.values()))) - 1
    table = pd.DataFrame({"model": model, "kind": kind, "n_layers": n, "layer": range(n + 1),
                          "relative_depth": np.arange(n + 1) / n})
    return table.assign(**quantities)


def correlation(model: str, x: str, y: str, rho: float, low: float, high: float, interval: str) -> dict:
    """A `correlation_table` row at 90% confidence."""
    return {"model": model, "x": x, "y": y, "rho": rho, "ci_low": low, "ci_high": high, "n_boot": 200,
            "n_layers": 5, "confidence": 0.9, "interval": interval}


NAMES = {"gpt2": "GPT_2", "bert": "BERT"}


def planted_crossstudy(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Two models in config order gpt2, bert (not alphabetical), each table through a CSV round trip.

    gpt2 (4 layers): anisotropy peaks at layer 2 (0.50), TwoNN at the last (1.00), probe recall ties at layers 0
    and 1 (the first, 0.00); agreement first above 0.5 at layer 2 (0.50). bert (2 layers, no lens): anisotropy
    peaks at layer 0 (0.00), TwoNN and probe recall at layer 1 (0.50). Correlations: gpt2 one interval excluding
    zero above it and one including zero; bert one below zero and one without an interval."""
    layers = pd.concat([cross_layers("gpt2", "decoder", anisotropy=[0.1, 0.5, 0.9, 0.3, 0.2],
                                     twonn_id=[20, 10, 10, 5, 30], probe_recall=[0.9, 0.9, 0.5, 0.4, 0.3],
                                     agreement=[0.1, 0.5, 0.6, 0.9, 1.0]),
                        cross_layers("bert", "encoder", anisotropy=[0.9, 0.1, 0.2], twonn_id=[1, 3, 2],
                                     probe_recall=[0.2, 0.8, 0.4])], ignore_index=True)
    correlations = pd.DataFrame([
        correlation("gpt2", "anisotropy", "twonn_id", 0.734, 0.41, 0.9, "excludes 0"),
        correlation("gpt2", "probe_recall", "agreement", 0.3, -0.1, 0.6, "includes 0"),
        correlation("bert", "anisotropy", "twonn_id", -0.5, -0.8, -0.2, "excludes 0"),
        correlation("bert", "anisotropy", "probe_recall", 0.8, np.nan, np.nan, "none")])
    sources = pd.DataFrame({"model": ["gpt2", "gpt2", "bert"], "quantity": ["anisotropy", "agreement", "probe_recall"],
                            "data": ["wiki", "lens_texts", "imdb_test"],
                            "interval": ["texts resampled", "texts resampled", "none"]})
    return tuple(read_back(t, tmp_path, name) for name, t in
                 (("layers", layers), ("correlations", correlations), ("sources", sources)))


CORRELATION_TABLE = "\n".join([
    r"\begin{tabular}{llrll}",
    r"\hline",
    r"Model & Quantities & $\rho$ & Interval & Zero \\",
    r"\hline",
    r"GPT\_2 & anisotropy vs TwoNN ID & 0.73 & [0.41, 0.90] & excluded \\",
    r"GPT\_2 & probe recall vs top-1 agreement & 0.30 & [-0.10, 0.60] & included \\",
    r"BERT & anisotropy vs TwoNN ID & -0.50 & [-0.80, -0.20] & excluded \\",
    r"BERT & anisotropy vs probe recall & 0.80 & -- & -- \\",
    r"\hline",
    r"\end{tabular}",
])


def test_correlation_table_states_rho_interval_and_zero_per_pair(tmp_path):
    _, correlations, _ = planted_crossstudy(tmp_path)
    assert correlation_table_latex(correlations, NAMES) == CORRELATION_TABLE


def test_crossstudy_macros_keep_the_models_in_config_order_with_every_clause(tmp_path):
    """Planted: see `planted_crossstudy`; the models come in the order of the files (gpt2 before bert)."""
    macros = crossstudy_macros(*planted_crossstudy(tmp_path), NAMES, n_boot=200, confidence=0.9)
    assert set(macros) == paper_macros("crossstudy", "Crossstudy")
    assert str(macros["CrossstudySummary"]) == (
        "In GPT\\_2 (decoder, 4 layers) anisotropy peaks at relative depth 0.50, TwoNN ID peaks at relative depth "
        "1.00, probe recall peaks at relative depth 0.00, and the logit lens first agrees with the output on more "
        "than half the tokens at relative depth 0.50. "
        "In BERT (encoder, 2 layers) anisotropy peaks at relative depth 0.00, TwoNN ID peaks at relative depth "
        "0.50, probe recall peaks at relative depth 0.50.")
    assert str(macros["CrossstudyCorrelations"]) == (
        "In GPT\\_2, anisotropy and TwoNN ID: $\\rho=0.73$ (90\\% interval 0.41 to 0.90, excluding zero: across "
        "layers they rise together); probe recall and top-1 agreement: $\\rho=0.30$ (90\\% interval -0.10 to "
        "0.60, which includes zero: the sign is not established). "
        "In BERT, anisotropy and TwoNN ID: $\\rho=-0.50$ (90\\% interval -0.80 to -0.20, excluding zero: across "
        "layers they move in opposite directions); anisotropy and probe recall: $\\rho=0.80$ (no interval: a "
        "quantity without per-text resamples; a description only, no claim).")
    assert str(macros["CrossstudyTable"]) == CORRELATION_TABLE
    assert str(macros["CrossstudySources"]) == (
        "anisotropy: wiki; interval: texts resampled; top-1 agreement: lens\\_texts; interval: texts resampled; "
        "probe recall: imdb\\_test; interval: none.")
    assert (macros["CrossstudyPairs"], macros["CrossstudyIncludesZero"], macros["CrossstudyBoot"]) == (4, 1, 200)
    assert macros["CrossstudyConfidence"] == pytest.approx(90)


def test_crossstudy_switched_off_still_defines_every_paper_macro_with_the_configured_interval():
    """Degenerate: the study is off (no layer rows). The section still typesets: every macro it uses is defined,
    the interval's level and resample count are the configured ones, and nothing else is claimed."""
    macros = crossstudy_macros(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {}, n_boot=200, confidence=0.9)
    assert set(macros) == paper_macros("crossstudy", "Crossstudy")
    assert macros["CrossstudyBoot"] == 200 and macros["CrossstudyConfidence"] == pytest.approx(90)
    assert macros["CrossstudyCorrelations"] == macros["CrossstudyTable"] == macros["CrossstudySources"] == ""
    assert macros["CrossstudyPairs"] == macros["CrossstudyIncludesZero"] == 0


@pytest.mark.parametrize("low, high, interval", [
    (0.1, 0.5, "none"),            # labelled without an interval: bounds present or not, none is stated
    (np.nan, np.nan, "includes 0"),  # no bounds: whatever the label, no interval and no sign
    (np.nan, np.nan, "excludes 0"),
])
def test_correlation_sentence_claims_no_interval_when_label_or_bounds_say_there_is_none(low, high, interval):
    """Either signal withholds the claim (the workflow keeps them in step: 'none' exactly when the bounds are NaN)."""
    row = pd.Series(correlation("gpt2", "anisotropy", "twonn_id", 0.6, low, high, interval))
    assert correlation_sentence(row) == ("anisotropy and TwoNN ID: $\\rho=0.60$ (no interval: a quantity without "
                                         "per-text resamples; a description only, no claim)")
