"""Study 3's per-layer geometry paragraph (`layerwise.narrative.geometry`) from planted tables shaped like the
workflow's: peaks per model, the decoder/encoder contrast, z-scored peaks, exact duplicates dropped from TwoNN,
vectors and batches; peaks at the first or last layer, ties (the first wins), flat profiles, and tables whose
rows are not in the order the sentence lists them."""

from __future__ import annotations

import pandas as pd
import pytest

from layerwise.narrative.geometry import dropped_sentence, geometry_macros
from layerwise.plots.geometry import summarise_profiles


# --------------------------------------------------------------------------- study 3 per layer

def model_rows(model: str, kind: str, *, anisotropy: list[float], twonn_id: list[float], standardised: list[float],
               duplicates: list[float], fallback: list[float], n_batches: int, n_vectors: int,
               merged: list[float] | None = None) -> list[dict]:
    """One model's `geometry.csv` (layers 0..n; n_duplicates, n_merged and n_fallback are means over batches;
    merged defaults to half the duplicates: pairs)."""
    merged = [d / 2 for d in duplicates] if merged is None else merged
    n = len(anisotropy) - 1
    rows = []
    for layer in range(n + 1):
        for metric, values in (("anisotropy", anisotropy), ("top5_share", [0.9] * (n + 1)),
                               ("anisotropy_standardised", standardised), ("twonn_id", twonn_id),
                               ("n_duplicates", duplicates), ("n_merged", merged), ("n_fallback", fallback)):
            rows.append({"layer": layer, "metric": metric, "mean": values[layer], "std": 0.01,
                         "n_batches": n_batches, "n_vectors": n_vectors, "kind": kind, "n_layers": n,
                         "include_position0": False, "model": model})
    return rows


# In the configured order, which is not alphabetical: the decoder SmolLM2 first, then the encoder MiniLM.
# SmolLM2: 5 batches of 20000 vectors; layer 0 merges 300 copies per batch = 1500 (7.5%); the worst other layer
#   is layer 2 with 5 per batch = 25 (0.125%); the float64 recomputation 1.2*5 + 0.4*5 = 8 of 4 x 20000 = 80000.
# MiniLM: 2 batches of 9000 vectors, no duplicates anywhere (the worst other layer ties at 0: the first, layer 1);
#   recomputation 1.5 * 2 = 3 of 36000.
SMOLLM = dict(anisotropy=[0.12, 0.5, 0.875, 0.25], twonn_id=[9, 22, 14, 17], standardised=[0.02, 0.04, 0.03, 0.01],
              duplicates=[600, 2, 10, 0], fallback=[0, 1.2, 0.4, 0], n_batches=5, n_vectors=20000)
MINILM = dict(anisotropy=[0.35, 0.2, 0.25, 0.3], twonn_id=[12, 15, 18, 21], standardised=[0.06, 0.05, 0.07, 0.065],
              duplicates=[0, 0, 0, 0], fallback=[0, 0, 0, 1.5], n_batches=2, n_vectors=9000)


def planted_study3(**models: tuple[str, dict]) -> pd.DataFrame:
    rows = []
    for name, (kind, values) in models.items():
        rows += model_rows(name, kind, **values)
    return pd.DataFrame(rows)


def run_geometry(table: pd.DataFrame) -> dict:
    return geometry_macros(table, summarise_profiles(table), fraction=0.9, batch_size=4096)


DROPPED = ("Exact duplicates ($r_1=0$) are merged: TwoNN sees one copy of each vector, as in the TwoNN literature, "
           "and anisotropy keeps every copy. Dropping every copy instead would leave each point whose nearest "
           "neighbour has a copy with $\\mu=1$ and inflate the estimate. Copies merged: "
           "in SmolLM2 layer~0 (the embedding output) merges 1500 of 20000 vectors (7.5\\%), the other layers at most "
           "25 (0.125\\%, layer 2), and 8 of its 80000 layer-vectors needed the float64 recomputation; "
           "in MiniLM layer~0 (the embedding output) merges 0 of 9000 vectors (0\\%), the other layers at most "
           "0 (0\\%, layer 1), and 3 of its 36000 layer-vectors needed the float64 recomputation.")


def test_dropped_duplicates_are_counted_over_batches_per_model_in_the_configured_order():
    table = planted_study3(SmolLM2=("decoder", SMOLLM), MiniLM=("encoder", MINILM))
    assert dropped_sentence(table) == DROPPED


def test_geometry_paragraph_states_the_planted_peaks_contrast_and_counts():
    macros = run_geometry(planted_study3(SmolLM2=("decoder", SMOLLM), MiniLM=("encoder", MINILM)))
    assert set(macros) == {"GeometrySummary", "GeometryContrast", "GeometryFraction", "GeometryBatchSize",
                           "GeometryVectors", "GeometryBatches", "GeometryDropped"}
    # Per-model peaks (summarise_profiles lists models by name), then the z-scored peaks in the table's order.
    assert str(macros["GeometrySummary"]) == (
        "In MiniLM (encoder, 3 layers) anisotropy peaks at layer 0 (relative depth 0.00) at 0.35, down to 0.2 at "
        "layer 1; the TwoNN intrinsic dimension peaks at layer 3 (relative depth 1.00) with 21 and is lowest at "
        "layer 0 (12). "
        "In SmolLM2 (decoder, 3 layers) anisotropy peaks at layer 2 (relative depth 0.67) at 0.875, down to 0.12 "
        "at layer 0; the TwoNN intrinsic dimension peaks at layer 1 (relative depth 0.33) with 22 and is lowest at "
        "layer 0 (9). "
        "On z-scored dimensions (which removes the outlier dimensions' scale) the anisotropy of SmolLM2 peaks at "
        "0.04 (layer 1). "
        "On z-scored dimensions (which removes the outlier dimensions' scale) the anisotropy of MiniLM peaks at "
        "0.07 (layer 2).")
    # 0.875 / 0.35 = 2.5
    assert str(macros["GeometryContrast"]) == (
        "The highest anisotropy reached by a decoder is 2.5 times that of the most anisotropic encoder layer, but "
        "this ratio does not isolate the decoder/encoder difference: the models also differ in depth (3 against 3 "
        "layers), in architecture details such as where the layer norm sits, in training objective and data, and in "
        "the special tokens they keep; none of these is controlled here.")
    assert macros["GeometryFraction"] == 0.9 and macros["GeometryBatchSize"] == 4096
    assert macros["GeometryVectors"] == 20000 and macros["GeometryBatches"] == 5  # the larger model's
    assert str(macros["GeometryDropped"]) == DROPPED


def test_decoder_encoder_contrast_uses_the_most_anisotropic_decoder():
    """Two decoders (peaks 0.875 and 0.5): the ratio is the larger over the encoder's 0.35, 2.5."""
    weaker = {**SMOLLM, "anisotropy": [0.1, 0.5, 0.2, 0.3]}
    macros = run_geometry(planted_study3(SmolLM2=("decoder", SMOLLM), Other=("decoder", weaker),
                                         MiniLM=("encoder", MINILM)))
    assert str(macros["GeometryContrast"]).startswith("The highest anisotropy reached by a decoder is 2.5 times")


@pytest.mark.parametrize("models", [
    {"SmolLM2": ("decoder", SMOLLM)},
    {"SmolLM2": ("decoder", SMOLLM), "Other": ("decoder", {**SMOLLM, "anisotropy": [0.1, 0.5, 0.2, 0.3]})},
    {"MiniLM": ("encoder", MINILM)}])
def test_no_decoder_encoder_contrast_without_both_kinds(models):
    assert str(run_geometry(planted_study3(**models))["GeometryContrast"]) == ""


def geometry_table(profiles: dict[str, tuple[str, list[float], list[float]]]) -> pd.DataFrame:
    """Per model (kind, anisotropy per layer, ID per layer), plus a final_norm row that must be ignored."""
    rows = []
    for model, (kind, an, idim) in profiles.items():
        n = len(an) - 1
        for metric, values in (("anisotropy", an), ("twonn_id", idim), ("anisotropy_standardised", an[::-1])):
            rows += [{"model": model, "kind": kind, "n_layers": n, "layer": str(l), "metric": metric, "mean": v,
                      "std": 0.0, "n_batches": 2, "n_vectors": 100} for l, v in enumerate(values)]
            rows.append({"model": model, "kind": kind, "n_layers": n, "layer": "final_norm", "metric": metric,
                         "mean": 99.0, "std": 0.0, "n_batches": 2, "n_vectors": 100})
        # what the merged-copies sentence reads: per layer, mean copies merged per batch (times 2 batches) and
        # mean float64 recomputations per batch; planted: layer 0 merges 2, the others at most 6 (layer 2), 3 refits
        merged, fallback = [1.0, 0.5, 3.0, 0.0] + [0.0] * n, [0.0, 0.5, 1.0, 0.0] + [0.0] * n
        for metric, means in (("n_merged", merged), ("n_fallback", fallback)):
            rows += [{"model": model, "kind": kind, "n_layers": n, "layer": str(l), "metric": metric,
                      "mean": means[l], "std": 0.0, "n_batches": 2, "n_vectors": 100} for l in range(n + 1)]
    return pd.DataFrame(rows)


def test_geometry_peaks_edges_ties_and_decoder_encoder_ratio():
    table = geometry_table({
        "dec": ("decoder", [0.1, 0.2, 0.3, 0.8], [5, 5, 3, 4]),   # anisotropy peaks last; ID tie at 0 and 1
        "enc": ("encoder", [0.4, 0.2, 0.2, 0.2], [2, 2, 2, 2]),   # peak first; flat ID
    })
    summary = summarise_profiles(table)
    peak = summary.set_index(["model", "metric"])
    assert peak.loc[("dec", "anisotropy"), "peak_layer"] == 3 and peak.loc[("dec", "anisotropy"), "min_layer"] == 0
    assert peak.loc[("dec", "twonn_id"), "peak_layer"] == 0 and peak.loc[("dec", "twonn_id"), "min_layer"] == 2
    assert peak.loc[("enc", "anisotropy"), "peak_layer"] == 0
    assert peak.loc[("enc", "twonn_id"), ["peak_layer", "min_layer"]].tolist() == [0, 0]
    # The per-layer table of the paper holds numbered layers only (final_norm has a table of its own).
    macros = geometry_macros(table[table["layer"] != "final_norm"], summary, fraction=0.9, batch_size=50)
    text = str(macros["GeometrySummary"])
    assert ("In dec (decoder, 3 layers) anisotropy peaks at layer 3 (relative depth 1.00) at 0.8, down to 0.1 at "
            "layer 0; the TwoNN intrinsic dimension peaks at layer 0 (relative depth 0.00) with 5 and is lowest at "
            "layer 2 (3).") in text
    assert "In enc (encoder, 3 layers) anisotropy peaks at layer 0 (relative depth 0.00) at 0.4" in text
    assert "of dec peaks at 0.8 (layer 0)." in text  # standardised profile reversed: its peak is at layer 0
    assert str(macros["GeometryContrast"]).startswith("The highest anisotropy reached by a decoder is 2 times")
    dropped = str(macros["GeometryDropped"])
    for model in ("dec", "enc"):  # n_vectors is the total over batches (100): 2 and 6 merged; 3 of 4x100 refit
        assert (f"in {model} layer~0 (the embedding output) merges 2 of 100 vectors (2\\%), the other layers at "
                f"most 6 (6\\%, layer 2), and 3 of its 400 layer-vectors needed the float64 recomputation") in dropped
