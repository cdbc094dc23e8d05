"""The source's "bell-shaped" anisotropy profile, as a rule a profile passes or fails.

Razzhigaev et al. (2024) describe decoder profiles as bell-shaped, "the middle layers tend to have a higher
anisotropy concentration", and encoder profiles as uniform. A test that only rejects a peak at the first or
last layer lets a spike near the input pass (a peak at relative depth 0.10 that then decays is no bell). The
rule here, on one profile (one value per layer at relative depth layer / n_layers):

- the *interior peak* M is the largest value at relative depth inside ``interior`` (default [0.2, 0.8]);
- *rise* = M - the value at the first layer (the input), *fall* = M - the value at the last layer;
- the *bell score* is min(rise, fall) / max(profile) when the profile's maximum lies inside the interior
  band; when it lies outside, the score is (M - the largest value outside) / max(profile), negative by how
  far the outside exceeds the interior.

A bell has a score above ``margin`` (default 0.1: rise and fall each at least a tenth of the peak). A flat
profile scores about 0, a U shape and a spike-then-decay score below 0. The score is computed per batch and
its interval over batches decides (see :mod:`layerwise.geometry.claims`); nothing here is tuned to one model
or corpus: the band and the margin come from config.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DEFAULT_INTERIOR = (0.2, 0.8)
DEFAULT_MARGIN = 0.1


def _check_interior(interior: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in interior)
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"interior must satisfy 0 < lo < hi < 1, got {interior}")
    return lo, hi


def bell_score(depth: Sequence[float], values: Sequence[float],
               interior: Sequence[float] = DEFAULT_INTERIOR) -> dict[str, float]:
    """The bell score of one profile and its parts: score, peak_depth (of the whole profile), interior_peak,
    rise, fall, outside_peak. ``depth`` is layer / n_layers, first layer (the input) to last."""
    lo, hi = _check_interior(interior)
    depth, values = np.asarray(depth, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if depth.shape != values.shape or depth.ndim != 1:
        raise ValueError("need one value per depth")
    order = np.argsort(depth)
    depth, values = depth[order], values[order]
    inside = (depth >= lo) & (depth <= hi)
    if not inside.any() or inside.all():
        raise ValueError(f"need layers both inside and outside the interior band {interior}; depths {depth}")
    if not np.isfinite(values).all():
        raise ValueError("profile has NaN or inf values")
    top = float(values.max())
    if top <= 0:
        raise ValueError("profile maximum must be positive")
    interior_peak = float(values[inside].max())
    outside_peak = float(values[~inside].max())
    rise, fall = interior_peak - float(values[0]), interior_peak - float(values[-1])
    if interior_peak >= outside_peak:
        score = min(rise, fall) / top
    else:
        score = (interior_peak - outside_peak) / top
    return {"score": score, "peak_depth": float(depth[int(np.argmax(values))]), "interior_peak": interior_peak,
            "rise": rise, "fall": fall, "outside_peak": outside_peak}


def batch_bell_scores(per_batch: pd.DataFrame, metric: str, n_layers: int,
                      interior: Sequence[float] = DEFAULT_INTERIOR) -> pd.DataFrame:
    """The bell score of each batch's profile of ``metric``: per-batch rows (columns layer, batch, metric)
    at numbered layers, depth = layer / n_layers. One row per batch with the parts of :func:`bell_score`."""
    rows = per_batch[["layer", "batch", metric]].copy()
    rows["layer"] = pd.to_numeric(rows["layer"], errors="coerce")
    rows = rows.dropna(subset=["layer"])
    if rows.empty:
        raise ValueError(f"no numbered layers with {metric!r}")
    out = []
    for batch, profile in rows.groupby("batch", sort=True):
        profile = profile.sort_values("layer")
        if profile[metric].isna().any():  # a layer of this batch had nothing left to measure
            out.append({"batch": int(batch), "score": float("nan")})
            continue
        parts = bell_score(profile["layer"].to_numpy() / n_layers, profile[metric].to_numpy(), interior)
        out.append({"batch": int(batch), **parts})
    return pd.DataFrame(out)
