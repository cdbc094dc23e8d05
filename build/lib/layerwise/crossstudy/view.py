"""One view of every layer across the three studies: per-layer quantities, their join, and rank correlations.

Why a bootstrap over texts: the tokens of one text share their context, so the text (not the token) is the
sampling unit. Every quantity here is recomputed from per-text ingredients under one seeded draw of text
multiplicities per data source, so quantities measured on the same texts are resampled together (their
dependence is kept) and quantities measured on an independent sample of texts are resampled independently.
A rank correlation across layers is then computed in every resample, which gives an interval for exactly the
estimator reported.

Ingredients per quantity:
- ratio of per-text sums (probe recall = correct / test vectors of a layer; mean norm; lens KL, agreement):
  a resample is a weighted sum of per-text sums over a weighted sum of per-text counts;
- anisotropy (top eigenvalue over trace of the covariance of the centred pooled batch): per-text count,
  sum x and sum x x^T; a resample's covariance is a weighted sum of them;
- TwoNN: one copy of each distinct vector is kept (as Study 3 does: dropping every copy of a duplicated vector
  leaves its neighbours with mu = 1 and inflates the estimate), each kept vector's two nearest-neighbour
  distances are found once on the full pooled batch, and it belongs to the text of its first copy; a resample
  repeats each kept vector as often as that text is drawn and refits. The neighbour search is not repeated (it
  would meet the resample's own copies), so this interval leaves out the variability of the neighbourhoods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.linalg
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from scipy.stats import rankdata

from layerwise.backend import get_array_module
from layerwise.geometry import twonn_from_distances
from layerwise.geometry.neighbours import _two_nn
from layerwise.geometry.spectrum import _as_matrix

QUANTITIES: tuple[str, ...] = ("probe_recall", "anisotropy", "twonn_id", "mean_norm", "kl_final", "kl_input",
                               "agreement")


# --------------------------------------------------------------------------- resampling


def text_codes(text_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes 0..T-1 per row, the T distinct text ids in sorted order)."""
    codes, texts = pd.factorize(pd.Series(np.asarray(text_ids)), sort=True)
    return codes.astype(np.int64), np.asarray(texts)


def resampling_units(n_texts: int, max_units: int, rng: np.random.Generator) -> np.ndarray:
    """Resampling unit of each text: the text itself when there are at most `max_units` texts, otherwise one
    of `max_units` seeded random groups of (near) equal size. Texts are drawn independently, so random groups
    of texts are independent too and resampling them is as valid as resampling texts; it bounds the memory of
    the per-unit covariance sums (units x width^2 floats per layer) at the published scale."""
    if max_units < 2:
        raise ValueError(f"max_units must be at least 2, got {max_units}")
    if n_texts <= max_units:
        return np.arange(n_texts)
    return rng.permutation(n_texts) % max_units


def group_rows(per_text: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Sum the rows [T, ...] of per-text ingredients into their resampling units [U, ...]."""
    out = np.zeros((int(units.max()) + 1, *per_text.shape[1:]))
    np.add.at(out, units, per_text)
    return out


def multiplicities(n_texts: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """[n_boot, n_texts] counts of how often each text is drawn in each resample (n_texts draws each)."""
    if n_texts < 1 or n_boot < 1:
        raise ValueError(f"need n_texts >= 1 and n_boot >= 1, got {n_texts}, {n_boot}")
    draws = rng.integers(0, n_texts, size=(n_boot, n_texts))
    weights = np.zeros((n_boot, n_texts))
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1.0)
    return weights


def per_text_sums(values: np.ndarray, codes: np.ndarray, n_texts: int) -> tuple[np.ndarray, np.ndarray]:
    """(sums [T], counts [T]) of the finite `values` grouped by text code."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    sums = np.bincount(codes[finite], weights=values[finite], minlength=n_texts)
    counts = np.bincount(codes[finite], minlength=n_texts).astype(np.float64)
    return sums, counts


def ratio_replicates(sums: np.ndarray, counts: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Point estimate [L] = sum over texts of sums / of counts, and its resamples [B, L] (NaN where a
    resample has no count). `sums`, `counts` are [T, L]; `weights` [B, T]."""
    if sums.shape != counts.shape or sums.ndim != 2 or weights.shape[1] != sums.shape[0]:
        raise ValueError(f"need sums, counts [T, L] and weights [B, T]; got {sums.shape}, {counts.shape}, "
                         f"{weights.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        point = sums.sum(0) / counts.sum(0)
        reps = (weights @ sums) / (weights @ counts)
    return point, reps


# --------------------------------------------------------------------------- anisotropy


def text_moments(x: np.ndarray, codes: np.ndarray, n_texts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per text: count [T], sum x [T, d], sum x x^T [T, d, d] in float64, of rows shifted by the pooled mean.

    The shift leaves every covariance unchanged and keeps sum x x^T free of the large mean component of
    residual streams, which would otherwise cancel catastrophically in E[x x^T] - mu mu^T.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    d = x.shape[1]
    counts = np.bincount(codes, minlength=n_texts).astype(np.float64)
    sums = np.zeros((n_texts, d))
    np.add.at(sums, codes, x)
    second = np.zeros((n_texts, d, d))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_texts + 1))
    for t in range(n_texts):
        rows = x[order[bounds[t]:bounds[t + 1]]]
        second[t] = rows.T @ rows
    return counts, sums, second


LANCZOS_MIN_WIDTH = 64


def _top_eigenvalue(cov: np.ndarray, start: np.ndarray | None) -> float:
    """Largest eigenvalue of a symmetric matrix. Lanczos (ARPACK, to machine precision) started from the
    pooled batch's top eigenvector is ~5x faster than a full tridiagonalisation at d ~ 600, and a resample's
    top direction is close to the pool's; small matrices, or a Lanczos run that does not converge, use eigh."""
    d = cov.shape[0]
    if d >= LANCZOS_MIN_WIDTH and start is not None:
        try:
            return float(eigsh(cov, k=1, which="LA", v0=start, tol=1e-12, return_eigenvectors=False)[0])
        except ArpackNoConvergence:
            pass
    return float(scipy.linalg.eigh(cov, eigvals_only=True, subset_by_index=[d - 1, d - 1])[0])


def anisotropy_from_moments(counts: np.ndarray, sums: np.ndarray, second: np.ndarray, weights: np.ndarray,
                            chunk: int = 16) -> np.ndarray:
    """Anisotropy sigma_1^2 / sum sigma_i^2 of the centred weighted pool, for each row of `weights` [B, T].

    cov = (sum_t w_t S_t - n mu mu^T) up to a positive factor; only its top eigenvalue and trace matter.
    """
    n_texts, d = sums.shape
    flat = second.reshape(n_texts, d * d)
    pooled = second.sum(0) - np.outer(sums.sum(0), sums.sum(0)) / max(counts.sum(), 1.0)
    start = scipy.linalg.eigh(pooled, subset_by_index=[d - 1, d - 1])[1][:, 0] if d >= LANCZOS_MIN_WIDTH else None
    out = np.full(len(weights), np.nan)
    for begin in range(0, len(weights), chunk):
        w = weights[begin:begin + chunk]
        n = w @ counts
        scatter = (w @ flat).reshape(len(w), d, d)
        total = w @ sums
        for i in range(len(w)):
            if n[i] < 2:
                continue
            cov = scatter[i] - np.outer(total[i], total[i]) / n[i]
            trace = float(np.trace(cov))
            if trace <= 0:
                continue
            out[begin + i] = _top_eigenvalue(cov, start) / trace
    return out


def anisotropy_replicates(x: np.ndarray, codes: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """Anisotropy of one layer's pooled vectors and its resamples [B] (texts resampled by `weights`)."""
    counts, sums, second = text_moments(x, codes, weights.shape[1])
    point = anisotropy_from_moments(counts, sums, second, np.ones((1, weights.shape[1])))[0]
    return float(point), anisotropy_from_moments(counts, sums, second, weights)


# --------------------------------------------------------------------------- TwoNN


def twonn_replicates(x: np.ndarray, codes: np.ndarray, weights: np.ndarray, *, fraction: float,
                     block_size: int, n_candidates: int, backend: str = "numpy") -> tuple[float, np.ndarray]:
    """TwoNN ID of one layer's pooled vectors and resamples [B] that reweight points by their text's draw
    count, with neighbours fixed from the full pool (see the module docstring)."""
    xp = get_array_module(backend)
    found = _two_nn(_as_matrix(x, xp, min_rows=3), xp, block_size, n_candidates)
    if found.distinct_r1 is None or found.distinct_r1.shape[0] < 3:
        raise ValueError("fewer than 3 distinct vectors: no TwoNN dimension")
    r1, r2 = found.distinct_r1, found.distinct_r2
    owner = np.asarray(codes)[found.distinct_index]  # each kept vector's text: that of its first copy
    point = twonn_from_distances(r1, r2, fraction=fraction).dimension
    reps = np.full(len(weights), np.nan)
    for b, w in enumerate(weights):
        repeat = w[owner].astype(np.int64)
        if repeat.sum() >= 4:
            reps[b] = twonn_from_distances(np.repeat(r1, repeat), np.repeat(r2, repeat), fraction=fraction).dimension
    return float(point), reps


# --------------------------------------------------------------------------- join


def join_layers(model: str, n_layers: int, columns: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per layer 0..n_layers of `model`: `layer`, `relative_depth` and every column of every table.

    Each table has a `layer` column and the layers 0..n_layers exactly once; a table from a model of
    another depth (or a truncated one) is refused rather than silently misaligned.
    """
    expected = list(range(n_layers + 1))
    joined = pd.DataFrame({"model": model, "layer": expected, "relative_depth": np.array(expected) / n_layers})
    for name, table in columns.items():
        layers = pd.to_numeric(table["layer"], errors="raise").astype(int).tolist()
        if sorted(layers) != expected:
            raise ValueError(f"{model}: table {name!r} has {len(layers)} rows for layers {sorted(set(layers))[:3]}…"
                             f"{sorted(set(layers))[-3:]}, expected exactly one per layer 0..{n_layers} "
                             f"({n_layers + 1} layers)")
        clash = (set(table.columns) - {"layer"}) & set(joined.columns)
        if clash:
            raise ValueError(f"{model}: table {name!r} repeats columns {sorted(clash)}")
        joined = joined.merge(table.assign(layer=layers), on="layer", how="left", validate="one_to_one")
    return joined


# --------------------------------------------------------------------------- rank correlations


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho over the positions where both are finite (NaN with fewer than 3 or a constant side)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return np.nan
    ra, rb = rankdata(a[keep]), rankdata(b[keep])
    if ra.std() == 0 or rb.std() == 0:
        return np.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def rank_correlation(point_x: np.ndarray, point_y: np.ndarray, reps_x: np.ndarray | None, reps_y: np.ndarray | None,
                     confidence: float = 0.95) -> dict[str, float]:
    """Spearman rho across layers and a percentile interval over paired resamples [B, L].

    If either quantity has no resamples (None) there is no interval (NaN): holding one side fixed would
    understate the uncertainty. `n_boot` counts the resamples in which rho was defined.
    """
    rho = spearman(point_x, point_y)
    if reps_x is None or reps_y is None:
        return {"rho": rho, "ci_low": np.nan, "ci_high": np.nan, "n_boot": 0}
    boot = np.array([spearman(reps_x[b], reps_y[b]) for b in range(len(reps_x))])
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return {"rho": rho, "ci_low": np.nan, "ci_high": np.nan, "n_boot": 0}
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])
    return {"rho": rho, "ci_low": float(low), "ci_high": float(high), "n_boot": int(boot.size)}


def correlation_table(model: str, points: Mapping[str, np.ndarray], reps: Mapping[str, np.ndarray | None],
                      pairs: Sequence[Sequence[str]], confidence: float = 0.95) -> pd.DataFrame:
    """One row per pair whose two quantities this model has: x, y, rho, ci_low, ci_high, n_layers, n_boot,
    and `interval`: "excludes 0", "includes 0" or "none"."""
    rows = []
    for x, y in pairs:
        if x not in points or y not in points:
            continue
        r = rank_correlation(points[x], points[y], reps.get(x), reps.get(y), confidence)
        n_layers = int((np.isfinite(points[x]) & np.isfinite(points[y])).sum())
        if not np.isfinite(r["ci_low"]):
            interval = "none"
        else:
            interval = "includes 0" if r["ci_low"] <= 0 <= r["ci_high"] else "excludes 0"
        rows.append({"model": model, "x": x, "y": y, **r, "n_layers": n_layers, "confidence": confidence,
                     "interval": interval})
    return pd.DataFrame(rows, columns=["model", "x", "y", "rho", "ci_low", "ci_high", "n_boot", "n_layers",
                                       "confidence", "interval"])


def layer_intervals(name: str, point: np.ndarray, reps: np.ndarray | None, confidence: float = 0.95
                    ) -> pd.DataFrame:
    """Per layer: `name`, `name_low`, `name_high` (percentile interval over resamples; NaN without)."""
    tail = 100 * (1 - confidence) / 2
    if reps is None:
        low = high = np.full(len(point), np.nan)
    else:
        with np.errstate(invalid="ignore"):
            low, high = np.nanpercentile(reps, [tail, 100 - tail], axis=0)
    return pd.DataFrame({"layer": np.arange(len(point)), name: point, f"{name}_low": low, f"{name}_high": high})


# --------------------------------------------------------------------------- one model


def store_quantities(layers: Sequence[np.ndarray], codes: np.ndarray, weights: np.ndarray, *, fraction: float,
                     block_size: int, n_candidates: int, backend: str = "numpy"
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Anisotropy, TwoNN ID and mean norm of every layer of one store (`layers[i]` = vectors of layer i, rows
    aligned with `codes`): point values [L] and resamples [B, L] under `weights` [B, T]. Layers are visited
    one at a time, so only one layer's per-text moments are ever held."""
    points = {q: np.full(len(layers), np.nan) for q in ("anisotropy", "twonn_id", "mean_norm")}
    reps = {q: np.full((len(weights), len(layers)), np.nan) for q in points}
    norm_sums, norm_counts = [], []
    for i, x in enumerate(layers):
        x = np.asarray(x, dtype=np.float64)
        points["anisotropy"][i], reps["anisotropy"][:, i] = anisotropy_replicates(x, codes, weights)
        points["twonn_id"][i], reps["twonn_id"][:, i] = twonn_replicates(
            x, codes, weights, fraction=fraction, block_size=block_size, n_candidates=n_candidates, backend=backend)
        sums, counts = per_text_sums(np.linalg.norm(x, axis=1), codes, weights.shape[1])
        norm_sums.append(sums)
        norm_counts.append(counts)
    points["mean_norm"], reps["mean_norm"] = ratio_replicates(np.stack(norm_sums, 1), np.stack(norm_counts, 1),
                                                              weights)
    return points, reps


def peak_depths(table: pd.DataFrame, quantities: Sequence[str]) -> dict[str, float]:
    """Relative depth of each quantity's largest value (first such layer) in one model's joined table."""
    out = {}
    for q in quantities:
        if q in table and table[q].notna().any():
            out[q] = float(table.loc[table[q].idxmax(), "relative_depth"])
    return out
