"""Study 3 per layer: where anisotropy and intrinsic dimension peak, in words and numbers."""

from __future__ import annotations

import pandas as pd

from layerwise.paper import LaTeX, latex_escape


def _depth(x: float) -> str:
    return f"{x:.2f}"


def dropped_sentence(table: pd.DataFrame) -> str:
    """Per model: how many copies TwoNN set aside to keep one copy of each vector, at layer 0 and at worst
    over the other layers, as a number and a fraction of the layer's vectors (anisotropy keeps them all);
    and how many rows the float32 shortlist could not certify (recomputed in float64)."""
    parts = []
    for model, rows in table.groupby("model", sort=False):
        merged_rows = rows[rows["metric"] == "n_merged"].assign(layer=lambda t: t["layer"].astype(int))
        merged = (merged_rows["mean"] * merged_rows["n_batches"]).round().astype(int)
        share = merged / merged_rows["n_vectors"]
        zero = merged_rows["layer"] == 0
        worst = share[~zero].idxmax()
        fallback = rows[rows["metric"] == "n_fallback"]
        refit = int((fallback["mean"] * fallback["n_batches"]).round().sum())
        total = int((fallback["n_vectors"]).sum())
        parts.append(
            f"in {latex_escape(model)} layer~0 (the embedding output) merges {int(merged[zero].iloc[0])} of "
            f"{int(merged_rows.loc[zero, 'n_vectors'].iloc[0])} vectors ({100 * float(share[zero].iloc[0]):.3g}\\%), "
            f"the other layers at most {int(merged[worst])} ({100 * float(share[worst]):.3g}\\%, layer "
            f"{int(merged_rows.loc[worst, 'layer'])}), and {refit} of its {total} layer-vectors needed the float64 "
            f"recomputation")
    return ("Exact duplicates ($r_1=0$) are merged: TwoNN sees one copy of each vector, as in the TwoNN "
            "literature, and anisotropy keeps every copy. Dropping every copy instead would leave each point whose "
            "nearest neighbour has a copy with $\\mu=1$ and inflate the estimate. Copies merged: "
            + "; ".join(parts) + ".")


def geometry_macros(table: pd.DataFrame, summary: pd.DataFrame, *, fraction: float, batch_size: int
                    ) -> dict[str, float | int | str]:
    """Numbers of study 3: where anisotropy and ID peak per model, and how decoders and encoders differ."""
    sentences = []
    for model, rows in summary.groupby("model", sort=False):
        an = rows[rows["metric"] == "anisotropy"].iloc[0]
        idim = rows[rows["metric"] == "twonn_id"].iloc[0]
        sentences.append(
            f"In {latex_escape(model)} ({an['kind']}, {an['n_layers']} layers) anisotropy peaks at layer "
            f"{an['peak_layer']} (relative depth {_depth(an['peak_relative_depth'])}) at {an['peak_value']:.3g}, "
            f"down to {an['min_value']:.3g} at layer {an['min_layer']}; the TwoNN intrinsic dimension peaks at "
            f"layer {idim['peak_layer']} (relative depth {_depth(idim['peak_relative_depth'])}) with "
            f"{idim['peak_value']:.3g} and is lowest at layer {idim['min_layer']} ({idim['min_value']:.3g}).")
    an = summary[summary["metric"] == "anisotropy"]
    by_kind = an.groupby("kind")["peak_value"].max()
    contrast = ""
    if {"decoder", "encoder"} <= set(by_kind.index):
        ratio = by_kind["decoder"] / by_kind["encoder"]
        contrast = (f"The highest anisotropy reached by a decoder is {ratio:.3g} times that of the most "
                    f"anisotropic encoder layer.")
    standardised = table[table["metric"] == "anisotropy_standardised"]
    for model, rows in standardised.groupby("model", sort=False):
        peak = rows.loc[rows["mean"].idxmax()]
        sentences.append(f"On z-scored dimensions (which removes the outlier dimensions' scale) the anisotropy "
                         f"of {latex_escape(model)} peaks at {peak['mean']:.3g} (layer {peak['layer']}).")
    n_vectors = int(table[table["metric"] == "anisotropy"]["n_vectors"].max())
    n_batches = int(table[table["metric"] == "anisotropy"]["n_batches"].max())
    return {
        "GeometrySummary": LaTeX(" ".join(sentences)),
        "GeometryContrast": LaTeX(contrast),
        "GeometryFraction": fraction,
        "GeometryBatchSize": batch_size,
        "GeometryVectors": n_vectors,
        "GeometryBatches": n_batches,
        "GeometryDropped": LaTeX(dropped_sentence(table)),
    }
