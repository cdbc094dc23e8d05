"""Study 3 over training: learning curves and geometry across checkpoints, in words and numbers."""

from __future__ import annotations

import pandas as pd

from layerwise.paper import LaTeX, latex_escape


def pair_sentence(arch: str, encoder_block: str) -> str:
    """What the decoder/encoder pair controls, as configured (the paper must not claim more)."""
    if encoder_block == "matched":
        return (f"Both models are the same {latex_escape(arch)} network (same pre-norm block, final norm, "
                f"width, depth, positions, initial weights, data order, optimiser and steps); the encoder "
                f"runs it with a bidirectional attention mask and is trained on masked bytes, the decoder "
                f"with the causal mask on the next byte. Mask and objective are the only differences.")
    return (f"The encoder is a post-norm BERT and the decoder a pre-norm {latex_escape(arch)} of the same "
            f"width and depth on the same data and steps: normalisation differs as well as mask and "
            f"objective, so this pair is not a controlled comparison.")


def final_norm_sentence(geometry: pd.DataFrame, final_norm: pd.DataFrame) -> str:
    """Last checkpoint: the last layer before the final norm against the state after it, per kind."""
    parts = []
    for kind, post in final_norm.groupby("kind", sort=True):
        pre = geometry[(geometry["kind"] == kind) & (geometry["step"] == post["step"].max())]
        pre = pre[pre["layer"].astype(int) == pre["layer"].astype(int).max()]
        value = {(src, m): float(t.loc[t["metric"] == m, "mean"].iloc[0])
                 for src, t in (("pre", pre), ("post", post)) for m in ("anisotropy", "twonn_id")}
        parts.append(f"the {kind}'s last layer has anisotropy {value['pre', 'anisotropy']:.3g} before the "
                     f"final norm and {value['post', 'anisotropy']:.3g} after it (TwoNN dimension "
                     f"{value['pre', 'twonn_id']:.3g} and {value['post', 'twonn_id']:.3g})")
    if not parts:
        return "Neither model has a final norm: every layer's output is already normalised."
    return "At the last checkpoint " + "; ".join(parts) + "."


def training_macros(summary: pd.DataFrame, log: pd.DataFrame, *, geometry: pd.DataFrame,
                    final_norm: pd.DataFrame, arch: str, encoder_block: str,
                    layer0_in_averages: bool) -> dict[str, float | int | str]:
    """Numbers of study 3 over training: learning, ID peak step, anisotropy growth, peak layers, what
    the pair controls and the states before and after the final norm."""
    val = log[log["split"] == "val"]
    sentences = []
    for _, row in summary.iterrows():
        kind_log = val[val["kind"] == row["kind"]].sort_values("step")
        first, last = kind_log.iloc[0], kind_log.iloc[-1]
        sentences.append(
            f"The {row['kind']} goes from {first['bits_per_byte']:.3g} to {last['bits_per_byte']:.3g} "
            f"validation bits per byte over {int(last['step'])} steps; its layer-averaged intrinsic dimension "
            f"peaks at step {row['id_peak_step']} ({row['id_peak_value']:.3g}, from {row['id_first']:.3g} at "
            f"step 0 to {row['id_last']:.3g} at the end), and its largest per-layer anisotropy goes from "
            f"{row['anisotropy_first']:.3g} at step 0 to {row['anisotropy_last']:.3g} at the end, "
            f"peaking at layer {row['anisotropy_peak_layer']} (relative depth "
            f"{row['anisotropy_peak_relative_depth']:.2f}) at the last checkpoint.")
    layers = "layers 0 to $n$" if layer0_in_averages else "layers 1 to $n$ (layer 0, the embedding output, left out)"
    values: dict[str, float | int | str] = {
        "TrainingSummary": LaTeX(" ".join(sentences) + (
            " Whether the decoder's changes exceed the spread over held-out batches (the source's claims: anisotropy "
            "grows, the intrinsic dimension rises then falls) is decided by rule in "
            "Table~\\ref{tab:geometry-verdicts}." if sentences else "")),
        "TrainingPair": LaTeX(pair_sentence(arch, encoder_block)),
        "TrainingFinalNorm": LaTeX(final_norm_sentence(geometry, final_norm)),
        "TrainingAveragedLayers": LaTeX(layers),
    }
    for _, row in summary.iterrows():
        kind = row["kind"].capitalize()
        values[f"Training{kind}IdPeakStep"] = int(row["id_peak_step"])
        values[f"Training{kind}FinalBpb"] = float(val[val["kind"] == row["kind"]].sort_values("step")
                                                 ["bits_per_byte"].iloc[-1])
    return values

