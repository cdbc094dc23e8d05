"""Study 3 over training: learning curves and geometry across checkpoints, in words and numbers."""

from __future__ import annotations

import pandas as pd

from layerwise.paper import LaTeX


def training_macros(summary: pd.DataFrame, log: pd.DataFrame) -> dict[str, float | int | str]:
    """Numbers of study 3 over training: learning, ID peak step, anisotropy growth, peak layers."""
    val = log[log["split"] == "val"]
    sentences = []
    for _, row in summary.iterrows():
        kind_log = val[val["kind"] == row["kind"]].sort_values("step")
        first, last = kind_log.iloc[0], kind_log.iloc[-1]
        trend = "grows monotonically" if row["anisotropy_monotonic"] else "does not grow monotonically"
        sentences.append(
            f"The {row['kind']} goes from {first['bits_per_byte']:.3g} to {last['bits_per_byte']:.3g} "
            f"validation bits per byte over {int(last['step'])} steps; its layer-averaged intrinsic dimension "
            f"peaks at step {row['id_peak_step']} ({row['id_peak_value']:.3g}, from {row['id_first']:.3g} at "
            f"step 0 to {row['id_last']:.3g} at the end), and its largest per-layer anisotropy {trend} "
            f"({row['anisotropy_first']:.3g} at step 0, {row['anisotropy_last']:.3g} at the end; within 5\\%), "
            f"peaking at layer {row['anisotropy_peak_layer']} (relative depth "
            f"{row['anisotropy_peak_relative_depth']:.2f}) at the last checkpoint.")
    values: dict[str, float | int | str] = {"TrainingSummary": LaTeX(" ".join(sentences))}
    for _, row in summary.iterrows():
        kind = row["kind"].capitalize()
        values[f"Training{kind}IdPeakStep"] = int(row["id_peak_step"])
        values[f"Training{kind}FinalBpb"] = float(val[val["kind"] == row["kind"]].sort_values("step")
                                                 ["bits_per_byte"].iloc[-1])
    return values

