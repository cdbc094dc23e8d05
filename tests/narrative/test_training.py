"""The paper's training paragraph (`layerwise.narrative.training`) from planted tables shaped like the
workflow's: learning, ID peak step, anisotropy trend and peak layer, what the decoder/encoder pair controls, the
last layer before and after the final norm.

Each expected string is written out by hand from the planted numbers, formatted as the functions format them
(3 significant digits, relative depth to 2 decimals). Edge cases planted: a peak at the first or last layer or
step, a falling trend, ties (the first wins), a model without a final norm, a run with no final norm at all."""

from __future__ import annotations

import pandas as pd
import pytest

from layerwise.narrative.training import final_norm_sentence, pair_sentence, training_macros
from layerwise.training.summary import training_summary

from tests.helpers.planted_training import training_table


# --------------------------------------------------------------------------- study 3 over training


def checkpoint_rows(kind: str, step: int, anisotropy: list[float], twonn_id: list[float], *,
                    layer: list | None = None) -> list[dict]:
    """`checkpoint_geometry` rows of one checkpoint, layers 0..n, in `layer_geometry`'s metric order. The
    metrics the sentences do not read carry values no planted answer uses (0.9, 0.05, 777)."""
    n = len(anisotropy) - 1
    layers = layer if layer is not None else list(range(n + 1))
    rows = []
    for i, label in enumerate(layers):
        for metric, value in (("anisotropy", anisotropy[i]), ("top5_share", 0.9), ("anisotropy_standardised", 0.05),
                              ("twonn_id", twonn_id[i]), ("n_duplicates", 777.0)):
            rows.append({"layer": label, "metric": metric, "mean": value, "std": 0.01, "n_batches": 2,
                         "n_vectors": 8704, "kind": kind, "step": step, "n_layers": n})
    return rows


# Decoder: max anisotropy 0.14 -> 0.35 -> 0.62 (grows), peak at the last layer (3); layer-mean ID over layers
# 1..3: 4 -> 12 -> 8 (peaks at step 10); its last layer at step 100: anisotropy 0.62, ID 7.
# Encoder: max anisotropy 0.08 -> 0.5 -> 0.3 (falls: not monotonic), peak at layer 0 at the end; layer-mean ID
# 3 -> 6 -> 50/3 = 16.7 (peaks at the last step); its last layer at step 100: anisotropy 0.083, ID 13.5.
DECODER = {0: ([0.11, 0.12, 0.13, 0.14], [1, 2, 4, 6]),
           10: ([0.2, 0.25, 0.3, 0.35], [1, 10, 12, 14]),
           100: ([0.2, 0.3, 0.4, 0.62], [5, 9, 8, 7])}
ENCODER = {0: ([0.05, 0.06, 0.07, 0.08], [3, 3, 3, 3]),
           10: ([0.5, 0.2, 0.1, 0.1], [3, 6, 6, 6]),
           100: ([0.3, 0.09, 0.1, 0.083], [3, 20, 16.5, 13.5])}


def planted_geometry() -> pd.DataFrame:
    """Both runs' checkpoint tables concatenated as `training_figures` does (decoder first, steps ascending)."""
    rows = []
    for kind, by_step in (("decoder", DECODER), ("encoder", ENCODER)):
        for step, (an, idim) in by_step.items():
            rows += checkpoint_rows(kind, step, an, idim)
    return pd.DataFrame(rows)


def final_norm_rows(kind: str, anisotropy: float, twonn_id: float, step: int = 100) -> pd.DataFrame:
    """The last checkpoint's `geometry.final_norm.csv`: one "final_norm" row per metric."""
    return pd.DataFrame(checkpoint_rows(kind, step, [anisotropy], [twonn_id], layer=["final_norm"])).assign(n_layers=3)


NO_FINAL_NORM = final_norm_rows("decoder", 0.0, 0.0).iloc[0:0]   # what a run without a final norm writes

DECODER_FINAL_NORM = ("the decoder's last layer has anisotropy 0.62 before the final norm and 0.031 after it "
                      "(TwoNN dimension 7 and 4.75)")
ENCODER_FINAL_NORM = ("the encoder's last layer has anisotropy 0.083 before the final norm and 0.27 after it "
                      "(TwoNN dimension 13.5 and 2.5)")


def both_final_norms() -> pd.DataFrame:
    # encoder's table first: the sentence still lists the decoder first
    return pd.concat([final_norm_rows("encoder", 0.27, 2.5), final_norm_rows("decoder", 0.031, 4.75)],
                     ignore_index=True)


def test_final_norm_sentence_compares_the_last_layer_of_the_last_checkpoint_with_the_normed_state():
    """Before = the last layer (3) at the last step (100) of that kind, not an earlier layer, step or the other
    kind; after = the final-norm row; kinds in a fixed order (decoder, encoder)."""
    assert final_norm_sentence(planted_geometry(), both_final_norms()) == (
        f"At the last checkpoint {DECODER_FINAL_NORM}; {ENCODER_FINAL_NORM}.")


def test_final_norm_sentence_speaks_only_of_the_model_that_has_one():
    """A post-norm BERT encoder has no final norm: its run writes an empty table and no claim is made for it."""
    final_norm = pd.concat([NO_FINAL_NORM, final_norm_rows("decoder", 0.031, 4.75)], ignore_index=True)
    assert final_norm_sentence(planted_geometry(), final_norm) == f"At the last checkpoint {DECODER_FINAL_NORM}."


def test_final_norm_sentence_without_any_final_norm():
    empty = pd.concat([NO_FINAL_NORM, NO_FINAL_NORM], ignore_index=True)
    assert final_norm_sentence(planted_geometry(), empty) == (
        "Neither model has a final norm: every layer's output is already normalised.")


def planted_log() -> pd.DataFrame:
    """Learning curves, rows out of step order; train rows (which must be ignored) hold other values."""
    rows = [("decoder", "val", 100, 1.5), ("decoder", "train", 100, 0.5), ("decoder", "val", 0, 8.0),
            ("decoder", "val", 10, 3.25), ("decoder", "train", 0, 7.5), ("encoder", "val", 10, 4.5),
            ("encoder", "val", 100, 2.25), ("encoder", "val", 0, 8.0), ("encoder", "train", 100, 0.25)]
    return pd.DataFrame(rows, columns=["kind", "split", "step", "bits_per_byte"])


def run_training(**kwargs) -> dict:
    geometry = planted_geometry()
    options = {"geometry": geometry, "final_norm": both_final_norms(), "arch": "gpt_neox", "encoder_block": "matched",
               "layer0_in_averages": False, **kwargs}
    return training_macros(training_summary(geometry), planted_log(), **options)


def test_training_paragraph_states_the_planted_numbers_for_both_runs():
    macros = run_training()
    assert set(macros) == {"TrainingSummary", "TrainingPair", "TrainingFinalNorm", "TrainingAveragedLayers",
                           "TrainingDecoderIdPeakStep", "TrainingDecoderFinalBpb",
                           "TrainingEncoderIdPeakStep", "TrainingEncoderFinalBpb"}
    assert str(macros["TrainingSummary"]) == (
        "One run per kind (one seed). The decoder goes from 8 to 1.5 validation bits per byte over 100 steps; its layer-averaged intrinsic "
        "dimension peaks at step 10 (12, from 4 at step 0 to 8 at the end), and its largest per-layer anisotropy "
        "goes from 0.14 at step 0 to 0.62 at the end, peaking at layer 3 (relative depth "
        "1.00) at the last checkpoint. "
        "The encoder goes from 8 to 2.25 validation bits per byte over 100 steps; its layer-averaged intrinsic "
        "dimension peaks at step 100 (16.7, from 3 at step 0 to 16.7 at the end), and its largest per-layer "
        "anisotropy goes from 0.08 at step 0 to 0.3 at the end, peaking at layer 0 "
        "(relative depth 0.00) at the last checkpoint. Whether the decoder's changes exceed the spread over held-out "
        "batches (the source's claims: anisotropy grows, the intrinsic dimension rises then falls) is decided by rule "
        "in Table~\\ref{tab:geometry-verdicts}.")
    assert macros["TrainingDecoderIdPeakStep"] == 10 and macros["TrainingEncoderIdPeakStep"] == 100
    assert macros["TrainingDecoderFinalBpb"] == 1.5 and macros["TrainingEncoderFinalBpb"] == 2.25
    assert str(macros["TrainingFinalNorm"]) == f"At the last checkpoint {DECODER_FINAL_NORM}; {ENCODER_FINAL_NORM}."


def test_training_paragraph_with_three_seeds_gives_means_ranges_and_passes():
    """Three seeds whose final validation bits per byte are 1.4, 1.5 and 1.7: the sentence gives their mean 1.53
    and range; the seed-averaged geometry (identical seeds here) keeps the planted peaks; the interval sentence
    speaks of seeds; ``passes`` is stated."""
    from layerwise.training.summary import seed_means
    log = pd.concat([planted_log().assign(seed=s) for s in (0, 1, 2)], ignore_index=True)
    for seed, value in ((0, 1.4), (1, 1.5), (2, 1.7)):
        log.loc[(log["seed"] == seed) & (log["kind"] == "decoder") & (log["split"] == "val") & (log["step"] == 100),
                "bits_per_byte"] = value
    geometry = seed_means(pd.concat([planted_geometry().assign(seed=s) for s in (0, 1, 2)], ignore_index=True))
    assert len(geometry) == len(planted_geometry()) and (geometry["n_seeds"] == 3).all()
    macros = training_macros(training_summary(geometry), log, geometry=geometry, final_norm=both_final_norms(),
                             arch="gpt2", encoder_block="matched", layer0_in_averages=False, passes=0.98)
    text = str(macros["TrainingSummary"])
    assert text.startswith("Each kind is trained 3 times (seeds 0, 1, 2: initialisation, data order and masking); "
                           "the numbers below are means over these runs. The steps draw 0.98 times as many bytes")
    assert "The decoder goes from 8 to 1.53 (seeds 1.4--1.7) validation bits per byte over 100 steps" in text
    assert "peaks at step 10 (12," in text and "exceed the spread over training seeds" in text
    assert macros["TrainingDecoderFinalBpb"] == pytest.approx(4.6 / 3)


@pytest.mark.parametrize("layer0, text", [
    (False, "layers 1 to $n$ (layer 0, the embedding output, left out)"),
    (True, "layers 0 to $n$")])
def test_training_states_which_layers_the_id_average_covers(layer0, text):
    assert str(run_training(layer0_in_averages=layer0)["TrainingAveragedLayers"]) == text


def test_matched_pair_claims_mask_and_objective_are_the_only_differences():
    text = str(run_training(encoder_block="matched")["TrainingPair"])
    assert text.startswith("Both models are the same gpt\\_neox network (same pre-norm block, final norm,")
    assert text.endswith("Mask and objective are the only differences.")
    assert "not a controlled comparison" not in text


def test_bert_pair_is_not_claimed_to_be_controlled():
    text = str(run_training(encoder_block="bert")["TrainingPair"])
    assert text.startswith("The encoder is a post-norm BERT and the decoder a pre-norm gpt\\_neox of the same "
                           "width and depth")
    assert text.endswith("normalisation differs as well as mask and objective, so this pair is not a controlled "
                         "comparison.")
    assert "only differences" not in text
    assert pair_sentence("llama", "bert") != pair_sentence("llama", "matched")


def test_about_one_pass_is_said_only_near_one_pass():
    options = {"geometry": planted_geometry(), "final_norm": both_final_norms(), "arch": "gpt2",
               "encoder_block": "matched", "layer0_in_averages": False}
    few = str(training_macros(training_summary(planted_geometry()), planted_log(), passes=0.0003,
                              **options)["TrainingSummary"])
    one = str(training_macros(training_summary(planted_geometry()), planted_log(), passes=0.96,
                              **options)["TrainingSummary"])
    assert "about one pass" not in few and "0.0003 times as many bytes" in few
    assert "(windows at random positions), about one pass." in one


def test_training_sentence_states_the_planted_numbers():
    ids = {0: [0, 4, 6], 100: [0, 8, 10], 200: [0, 5, 5]}
    an = {0: [0.1, 0.2, 0.1], 100: [0.1, 0.9, 0.2], 200: [0.1, 0.3, 0.5]}
    summary = training_summary(training_table(ids, an))
    log = pd.DataFrame({"kind": "decoder", "split": ["val", "val", "train"], "step": [200, 0, 300],
                        "bits_per_byte": [1.5, 8.0, 0.1]})
    macros = training_macros(summary, log, geometry=pd.DataFrame(), final_norm=pd.DataFrame(
        columns=["kind", "step", "metric", "mean"]), arch="llama", encoder_block="matched", layer0_in_averages=False)
    text = str(macros["TrainingSummary"])
    assert text.startswith("One run per kind (one seed). The decoder goes from 8 to 1.5 validation bits per byte over 200 steps;")
    assert "peaks at step 100 (9, from 5 at step 0 to 5 at the end)" in text
    # The trend is no longer judged here ("within 5%" was replaced by the interval-based verdicts of the
    # geometry table): the sentence states the planted endpoints and defers the verdict to that table.
    assert "largest per-layer anisotropy goes from 0.2 at step 0 to 0.5 at the end," in text
    assert "monotonically" not in text and "within 5" not in text
    assert text.endswith("is decided by rule in Table~\\ref{tab:geometry-verdicts}.")
    assert "peaking at layer 2 (relative depth 1.00) at the last checkpoint." in text
    assert macros["TrainingDecoderIdPeakStep"] == 100 and macros["TrainingDecoderFinalBpb"] == 1.5
