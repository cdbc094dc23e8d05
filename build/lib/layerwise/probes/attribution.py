"""Which dimensions does a linear layer probe use? Percentage contributions per layer.

For layer (class) c and a standardised vector x, dimension j adds w_cj * x_j to the logit of c. Two
readings, both as percentages that sum to 100 per layer:

* ``input_x_weight``: the share |w_cj x_j| / sum_k |w_ck x_k| of each vector, averaged over that
  layer's test vectors (each vector counts once, whatever its norm); the sign is that of the mean
  contribution. This is what the probe actually uses on real inputs.
* ``weight``: |w_cj| / sum_k |w_ck|, the sign of w_cj. Meaningful because inputs are standardised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VARIANTS = ("input_x_weight", "weight")


def _check(coef: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    coef, classes = np.asarray(coef, dtype=np.float64), np.asarray(classes)
    if coef.ndim != 2 or classes.shape != (coef.shape[0],):
        raise ValueError(f"coef must be [n_layers, width] with one class label per row, "
                         f"got coef {coef.shape} and classes {classes.shape}")
    return coef, classes


def _rank(table: pd.DataFrame) -> pd.DataFrame:
    """Rank 1 = largest share within each (layer, variant); ties go to the lower dimension index."""
    table = table.sort_values(["variant", "layer", "share", "dim"], ascending=[True, True, False, True],
                              kind="stable")
    table["rank"] = table.groupby(["variant", "layer"]).cumcount() + 1
    return table.reset_index(drop=True)


def attribution_table(coef: np.ndarray, classes: np.ndarray, X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Long table: layer, dim, variant, share (percent), signed (mean contribution or weight), sign, rank.

    `coef` [n_layers, width] and `classes` are a fitted linear probe's `coef_` and `classes_`; `X`, `y`
    are the standardised test vectors and their layers (every layer needs at least one vector).
    """
    coef, classes = _check(coef, classes)
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != coef.shape[1] or y.shape != (X.shape[0],):
        raise ValueError(f"X must be [n, {coef.shape[1]}] with one label per row, got X {X.shape}, y {y.shape}")
    frames = []
    width = coef.shape[1]
    for c, layer in enumerate(classes):
        rows = X[y == layer]
        contributions = rows * coef[c]
        magnitude = np.abs(contributions)
        totals = magnitude.sum(axis=1)
        used = totals > 0
        if not used.any():
            raise ValueError(f"layer {layer} has no test vector with a nonzero contribution; cannot attribute")
        vector_share = 100.0 * (magnitude[used] / totals[used, None]).mean(axis=0)
        mean_contribution = contributions[used].mean(axis=0)
        if not np.abs(coef[c]).sum() > 0:
            raise ValueError(f"layer {layer} has all-zero weights; cannot attribute")
        weight_share = 100.0 * np.abs(coef[c]) / np.abs(coef[c]).sum()
        for variant, share, signed in (("input_x_weight", vector_share, mean_contribution),
                                       ("weight", weight_share, coef[c])):
            frames.append(pd.DataFrame({"layer": layer, "dim": np.arange(width), "variant": variant,
                                        "share": share, "signed": signed, "sign": np.sign(signed).astype(int)}))
    return _rank(pd.concat(frames, ignore_index=True))


def top_dimensions(table: pd.DataFrame, n: int = 8) -> pd.DataFrame:
    """The `n` largest-share dimensions of every (layer, variant), with their sign."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return table[table["rank"] <= n].reset_index(drop=True)


def cumulative_contributions(table: pd.DataFrame) -> pd.DataFrame:
    """Long table: layer, variant, n_dims, cumulative_share (the n_dims largest shares summed)."""
    ordered = table.sort_values(["variant", "layer", "rank"])
    curve = ordered[["layer", "variant"]].copy()
    curve["n_dims"] = ordered["rank"].to_numpy()
    curve["cumulative_share"] = ordered.groupby(["variant", "layer"])["share"].cumsum().to_numpy()
    return curve.reset_index(drop=True)


def dims_for_share(table: pd.DataFrame, thresholds: tuple[float, ...] = (50.0, 90.0)) -> pd.DataFrame:
    """Long table: layer, variant, threshold, n_dims = fewest dimensions whose shares reach the threshold."""
    if any(not 0 < t <= 100 for t in thresholds):
        raise ValueError(f"thresholds are percentages in (0, 100], got {thresholds}")
    curve = cumulative_contributions(table)
    rows = []
    for (variant, layer), group in curve.groupby(["variant", "layer"]):
        cumulative = group["cumulative_share"].to_numpy()
        for threshold in thresholds:
            reached = np.flatnonzero(cumulative >= threshold - 1e-9)
            rows.append({"layer": layer, "variant": variant, "threshold": threshold,
                         "n_dims": int(group["n_dims"].iloc[reached[0]])})
    return pd.DataFrame(rows)


def top_with_weight_sign(table: pd.DataFrame, n: int = 8) -> pd.DataFrame:
    """The `n` largest |w_j x_j| shares of every layer (the post's Fig. 7 ranking), each with the sign of its
    probe *weight* w_cj (what the post colours by), not of its mean contribution (positive by construction
    for a class's own logit on its own vectors)."""
    top = top_dimensions(table[table["variant"] == "input_x_weight"], n)
    weights = table.loc[table["variant"] == "weight", ["layer", "dim", "sign"]]
    joined = top.drop(columns=["sign"]).merge(weights, on=["layer", "dim"], how="left", validate="one_to_one")
    if joined["sign"].isna().any():
        raise ValueError("the attribution table lacks the weight rows of some top dimensions")
    return joined.assign(sign=joined["sign"].astype(int), variant="input_x_weight (weight sign)")
