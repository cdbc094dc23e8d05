"""Study 3 over training: learning curves and geometry across checkpoints, in words and numbers."""

from __future__ import annotations

import pandas as pd

from layerwise.workflow.macros import LaTeX, latex_escape


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


def _seed_range(values: pd.Series) -> str:
    """' (seeds: lo--hi)' for several seeds' values, '' for one."""
    return f" (seeds {values.min():.3g}--{values.max():.3g})" if len(values) > 1 else ""


def training_macros(summary: pd.DataFrame, log: pd.DataFrame, *, geometry: pd.DataFrame,
                    final_norm: pd.DataFrame, arch: str, encoder_block: str,
                    layer0_in_averages: bool, passes: float | None = None) -> dict[str, float | int | str]:
    """Numbers of study 3 over training: learning, ID peak step, anisotropy growth, peak layers, what
    the pair controls and the states before and after the final norm. With several training seeds (column
    ``seed`` of the log) every number is the mean over seeds, the learning curve's end with its range, and
    ``summary``/``geometry`` are the seed-averaged tables. ``passes``: passes over the training bytes."""
    val = log[log["split"] == "val"]
    if "seed" not in val:
        val = val.assign(seed=0)
    n_seeds = val["seed"].nunique()
    sentences = []
    for _, row in summary.iterrows():
        by_step = val[val["kind"] == row["kind"]].groupby("step")["bits_per_byte"]
        first_step, last_step = min(by_step.groups), max(by_step.groups)
        first, last = by_step.get_group(first_step), by_step.get_group(last_step)
        sentences.append(
            f"The {row['kind']} goes from {first.mean():.3g} to {last.mean():.3g}{_seed_range(last)} "
            f"validation bits per byte over {int(last_step)} steps; its layer-averaged intrinsic dimension "
            f"peaks at step {row['id_peak_step']} ({row['id_peak_value']:.3g}, from {row['id_first']:.3g} at "
            f"step 0 to {row['id_last']:.3g} at the end), and its largest per-layer anisotropy goes from "
            f"{row['anisotropy_first']:.3g} at step 0 to {row['anisotropy_last']:.3g} at the end, "
            f"peaking at layer {row['anisotropy_peak_layer']} (relative depth "
            f"{row['anisotropy_peak_relative_depth']:.2f}) at the last checkpoint.")
    runs = (f"Each kind is trained {n_seeds} times (seeds {', '.join(str(s) for s in sorted(val['seed'].unique()))}: "
            "initialisation, data order and masking); the numbers below are means over these runs. "
            if n_seeds > 1 else "One run per kind (one seed). ")
    if passes is not None:
        runs += (f"The steps draw {passes:.2g} times as many bytes as the training split holds (windows at random "
                 f"positions){', about one pass' if 0.8 <= passes <= 1.2 else ''}. ")
    layers = "layers 0 to $n$" if layer0_in_averages else "layers 1 to $n$ (layer 0, the embedding output, left out)"
    values: dict[str, float | int | str] = {
        "TrainingSummary": LaTeX(runs + " ".join(sentences) + (
            f" Whether the decoder's changes exceed the spread over {'training seeds' if n_seeds > 1 else 'held-out batches'} (the source's claims: anisotropy "
            "grows, the intrinsic dimension rises then falls) is decided by rule in "
            "Table~\\ref{tab:geometry-verdicts}." if sentences else "")),
        "TrainingPair": LaTeX(pair_sentence(arch, encoder_block)),
        "TrainingFinalNorm": LaTeX(final_norm_sentence(geometry, final_norm)),
        "TrainingAveragedLayers": LaTeX(layers),
    }
    for _, row in summary.iterrows():
        kind = row["kind"].capitalize()
        values[f"Training{kind}IdPeakStep"] = int(row["id_peak_step"])
        kind_val = val[val["kind"] == row["kind"]]
        values[f"Training{kind}FinalBpb"] = float(kind_val.loc[kind_val["step"] == kind_val["step"].max(),
                                                               "bits_per_byte"].mean())
    return values

