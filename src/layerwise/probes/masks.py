"""Mask the dimensions the probe relies on most, and see how much accuracy they carry.

Masking sets a dimension to 0 in standardised space, i.e. to its training mean: the dimension's
contribution w_cj x_j vanishes exactly (the intercept already accounts for the mean), and no vector is
pushed off the data distribution, as setting the raw value to 0 would do to a dimension whose mean is
large (the "massive activation" dimensions that top these lists).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from layerwise.probes.attribution import top_dimensions
from layerwise.probes.logistic import TorchLogisticProbe, WarmStart
from layerwise.probes.training import ProbeRun


def frequent_top_dimensions(table: pd.DataFrame, k: int = 4, top_n: int = 8,
                            variant: str = "input_x_weight") -> pd.DataFrame:
    """The `k` dimensions found in the most per-layer top-`top_n` lists.

    Columns: dim, n_layers (lists it appears in), total_share (its shares summed over those lists);
    ties in n_layers go to the larger total_share, then to the lower index.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    top = top_dimensions(table[table["variant"] == variant], top_n)
    if top.empty:
        raise ValueError(f"no rows of variant {variant!r} in the attribution table")
    counts = top.groupby("dim").agg(n_layers=("layer", "size"), total_share=("share", "sum")).reset_index()
    counts = counts.sort_values(["n_layers", "total_share", "dim"], ascending=[False, False, True])
    return counts.head(k).reset_index(drop=True)


def mask_dimensions(X: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    """A copy of standardised `X` with columns `dims` set to 0 (the training mean)."""
    X = np.asarray(X)
    dims = np.asarray(dims, dtype=int)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    if dims.size and (dims.min() < 0 or dims.max() >= X.shape[1]):
        raise ValueError(f"dims must lie in [0, {X.shape[1]}), got {dims.tolist()}")
    masked = X.copy()
    masked[:, dims] = 0
    return masked


def mask_ablation(run: ProbeRun, dims: Sequence[int], retrain: bool = True) -> pd.DataFrame:
    """Accuracy with `dims` masked at test time only, and (`retrain`) after re-training a clone without them.

    `dims` must have been chosen without the test split (e.g. from training-set attributions).
    Columns: condition (full / masked_at_test / masked_retrained), accuracy, delta_pp (vs full,
    percentage points), n_masked, dims (comma-separated). The training matrix is masked in place for
    the re-fit and restored afterwards, so no second copy of it is made. The torch probe's re-fit starts
    from the full probe with the masked weights zeroed (the objective is strictly convex: same optimum,
    fewer passes); `passes` and `warm_start` say what it cost and where it started. Without `retrain` only
    the first two rows: the re-fit costs as much as the probe (a cell whose re-fit nothing reads skips it).
    """
    dims = np.asarray(dims, dtype=int)
    full = float(np.mean(run.y_pred == run.y_test))
    masked_test = mask_dimensions(run.X_test, dims)
    at_test = float(np.mean(run.estimator.predict(masked_test) == run.y_test))
    rows = [("full", full, np.nan, pd.NA), ("masked_at_test", at_test, np.nan, pd.NA)]
    if retrain:
        rows.append(("masked_retrained", *_retrain_without(run, dims, masked_test)))
    table = pd.DataFrame(rows, columns=["condition", "accuracy", "passes", "warm_start"])
    return table.assign(delta_pp=100 * (table["accuracy"] - full), n_masked=len(dims),
                        dims=",".join(str(int(d)) for d in dims))[
        ["condition", "accuracy", "delta_pp", "n_masked", "dims", "passes", "warm_start"]]


def _retrain_without(run: ProbeRun, dims: np.ndarray, masked_test: np.ndarray) -> tuple[float, float, str]:
    """(test accuracy, passes, start) of a clone re-fitted with `dims` zeroed in the training matrix, in place
    and restored after (no second copy); the torch probe starts from the full probe with those weights zeroed."""
    saved = run.X_train[:, dims].copy()
    run.X_train[:, dims] = 0
    try:
        retrained = clone(run.estimator)
        if isinstance(retrained, TorchLogisticProbe) and retrained.solver == "lbfgs":
            retrained.fit(run.X_train, run.y_train, init=WarmStart.from_probe(run.estimator, "raw", zero_dims=dims))
        else:
            retrained.fit(run.X_train, run.y_train)
    finally:
        run.X_train[:, dims] = saved
    return (float(np.mean(retrained.predict(masked_test) == run.y_test)),
            float(getattr(retrained, "passes_", np.nan)), getattr(retrained, "warm_start_", "") or "zero")


def masked_predictions(run: ProbeRun, dims: Sequence[int]) -> np.ndarray:
    """The fitted probe's test predictions with `dims` masked at test time (the post's masking)."""
    return run.estimator.predict(mask_dimensions(run.X_test, dims))


def random_mask_baseline(run: ProbeRun, k: int, draws: int, seed: int) -> pd.DataFrame:
    """The same test-time masking with `k` dimensions drawn uniformly at random, `draws` times (seeded).

    The baseline a masking result needs: how much accuracy do *any* k dimensions carry? For a linear probe
    masking at test only removes the columns' terms from the logits, so each draw costs one [n, k] x [k,
    n_layers] product, not a full prediction. Columns: draw, dims (comma-separated), accuracy, delta_pp (vs the
    unmasked probe, points).
    """
    width = run.X_test.shape[1]
    if not 1 <= k <= width:
        raise ValueError(f"k must be in [1, {width}], got {k}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    coef, classes = np.asarray(run.estimator.coef_, np.float64), np.asarray(run.estimator.classes_)
    X = np.asarray(run.X_test, np.float64)
    logits = X @ coef.T + np.asarray(run.estimator.intercept_, np.float64)
    full = float(np.mean(classes[logits.argmax(1)] == run.y_test))
    rng = np.random.default_rng(seed)
    rows = []
    for draw in range(draws):
        dims = np.sort(rng.choice(width, size=k, replace=False))
        masked = logits - X[:, dims] @ coef[:, dims].T
        accuracy = float(np.mean(classes[masked.argmax(1)] == run.y_test))
        rows.append({"draw": draw, "dims": ",".join(str(int(d)) for d in dims), "accuracy": accuracy,
                     "delta_pp": 100 * (accuracy - full)})
    return pd.DataFrame(rows)
