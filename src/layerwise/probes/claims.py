"""Study 1's claims (Huang et al. 2024, the LessWrong post) made testable: tidy tables in, `Claim`s out.

Two steps, both pure:

* `evidence_table` turns the study's tables (per-text correct counts of each fit, the N x L grid, the seed
  stability overlap, the raw probe's attribution) into one tidy table: quantity, setting ("faithful" = the
  post's setting, "ours" = our default), estimate, low, high, converged, note. Intervals are percentile
  bootstraps over test texts (paired when two fits share their test texts), over layers or over seed pairs.
* `probe_claims` maps that table to one `Claim` per claim of the post, each with the `Test` that states what
  the claim says of the number. Which bound each test uses, and why, is written next to it (`CLAIMS`).

A fit that stopped at its epoch cap is not converged: its evidence is still shown, but the claim's setting
column says so, so no converged and non-converged numbers are compared silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np
import pandas as pd

from layerwise.norms import norm_growth_evidence
from layerwise.verdicts import Claim, Evidence, Test

FAITHFUL, OURS = "faithful", "ours"


@dataclass(frozen=True)
class ClaimSpec:
    """One claim of the post: the quantity it is judged on, what it says, the post's number, the test."""

    key: str
    quantity: str
    text: str
    source: str
    test: Test
    setting: str = ""


# Bounds: "far above chance" is read as above 50% (the post's weakest number is GPT-2 XL's ~60%, 49 classes);
# "barely changes" as within 1 point; a "decrease" (unit norm, the dataset transfer) as more than 5 points: the
# post reads both drops (19 and 17 points) as effects, not as any change below zero; "fails" for random vectors as
# within 5 points of chance (set per model by `probe_claims`); "about 1%" as below 2%; "almost the same" number
# of dimensions as a spread (max - min) / median below 0.25; "shared" as a mean Jaccard
# above 0.5; "mostly negative / positive" as a positive-weight share below / above one half; "much larger" norms
# as more than twice the largest earlier layer's mean norm; an "exponential" trend as a line through log(mean
# norm) over layers 1..n that rises and explains more than 90% of its variance (sign(slope) x R^2 above 0.9).
CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec("layer", "accuracy", "A linear probe tells the layer far above chance",
              "83.2%; ~60% (XL)", Test("above", 50.0, unit="%")),
    ClaimSpec("norm_drop", "normalised_delta", "Unit norm lowers accuracy",
              "83 -> 64% (-19 pp)", Test("below", -5.0, unit="pp")),
    ClaimSpec("norm_not_only", "normalised_accuracy", "Unit norm: still far above chance",
              "64%", Test("above", 50.0, unit="%")),
    ClaimSpec("mask", "mask_delta", "Masking the 4 frequent top dims barely matters",
              "-0.19 pp", Test("above", -1.0, unit="pp")),
    ClaimSpec("transfer", "transfer_delta", "IMDB probe loses accuracy on AG News",
              "83 -> 66% (-17 pp)", Test("below", -5.0, unit="pp")),
    ClaimSpec("random", "random_scalar_accuracy",
              "Random vectors (layer mean, variance) fail (Fig. 10)",
              "fails", Test("below", 0.0, unit="%")),  # bound set to chance + 5 points per model
    ClaimSpec("more_texts", "n_effect", "More texts, higher accuracy (Fig. 6)",
              "qualitative, Fig. 6", Test("above", 0.0, unit="pp")),
    ClaimSpec("longer_context", "l_effect", "Longer context, higher accuracy (Fig. 6)",
              "qualitative, Fig. 6", Test("above", 0.0, unit="pp")),
    ClaimSpec("larger_model", "size_effect", "Larger models, lower accuracy (Fig. 6)",
              "GPT-2 small > ... > XL", Test("below", 0.0, unit="pp"),
              "one size per family"),
    ClaimSpec("max_share", "max_share", "Top dimension's share about 1% (Fig. 7)",
              "about 1%", Test("below", 2.0, unit="%")),
    ClaimSpec("early_negative", "early_positive_share",
              "Early layers' top weights negative (Fig. 7)", "mostly negative",
              Test("below", 50.0, unit="%")),
    ClaimSpec("late_positive", "late_positive_share",
              "Late layers' top weights positive (Fig. 7)", "mostly positive",
              Test("above", 50.0, unit="%")),
    ClaimSpec("cumulative", "cumulative_spread",
              "Same number of dims for 90% in every layer (Fig. 8)",
              "almost the same", Test("below", 0.25)),
    ClaimSpec("stable_dims", "frequent_jaccard", "Frequent top dims recur across runs",
              "shared", Test("above", 0.5)),
    ClaimSpec("norm_last", "norm_last_ratio", "Last layer's norms much larger than the others' (Fig. 2)",
              "much larger", Test("above", 2.0, unit="x")),
    ClaimSpec("norm_exponential", "norm_exponential_fit", "Norms grow exponentially over the layers (Fig. 2)",
              "exponential trend", Test("above", 0.9)),
)


def _evidence(row: pd.Series | None) -> Evidence | None:
    if row is None:
        return None
    return Evidence(row["estimate"], row["low"], row["high"])


def _lookup(evidence: pd.DataFrame, quantity: str, setting: str) -> pd.Series | None:
    rows = evidence[(evidence["quantity"] == quantity) & (evidence["setting"] == setting)]
    if len(rows) > 1:
        raise ValueError(f"evidence has {len(rows)} rows for ({quantity}, {setting}); one expected")
    return None if rows.empty else rows.iloc[0]


def _fit_note(row: pd.Series | None, setting: str) -> str:
    if row is None or "converged" not in row or pd.isna(row["converged"]) or bool(row["converged"]):
        return ""
    return f"not converged ({'post' if setting == FAITHFUL else 'ours'})"


def probe_claims(evidence: pd.DataFrame, *, chance: float, faithful_setting: str = "post-norm last layer, "
                 "position 0 kept", ours_setting: str = "pre-norm last layer, position 0 dropped") -> list[Claim]:
    """One `Claim` per entry of `CLAIMS`, judged on `evidence` (columns quantity, setting, estimate, low,
    high; optional converged, note). Accuracies are in %, differences in points. A quantity run only in our
    setting goes in as `ours` with no faithful evidence (the verdict rule then says so); the setting column
    names both settings when they differ, any non-converged fit and any note."""
    missing = {"quantity", "setting", "estimate", "low", "high"} - set(evidence.columns)
    if missing:
        raise ValueError(f"evidence lacks columns {sorted(missing)}")
    claims = []
    for spec in CLAIMS:
        test = spec.test
        if spec.key == "random":
            test = Test("below", 100.0 * chance + 5.0, unit="%")
        f_row, o_row = _lookup(evidence, spec.quantity, FAITHFUL), _lookup(evidence, spec.quantity, OURS)
        # short: the table's column is narrow (the caption says what the two settings are)
        parts = [spec.setting] if spec.setting else []
        if f_row is None and o_row is not None:
            parts.append("ours only")
        for row, setting in ((f_row, FAITHFUL), (o_row, OURS)):
            note = _fit_note(row, setting)
            if note:
                parts.append(note)
            if row is not None and "note" in row and isinstance(row["note"], str) and row["note"]:
                parts.append(row["note"])
        claims.append(Claim(spec.key, spec.text, spec.source, test, faithful=_evidence(f_row),
                            ours=_evidence(o_row), setting="; ".join(dict.fromkeys(parts))))  # a note both settings share, once
    return claims


# --- evidence from the study's tables --------------------------------------------------------------------


def per_text(text_ids: np.ndarray, correct: np.ndarray) -> pd.DataFrame:
    """Per test text: text_id, n (vectors), correct (right predictions), from per-vector rows."""
    frame = pd.DataFrame({"text_id": np.asarray(text_ids), "correct": np.asarray(correct, dtype=np.int64)})
    return frame.groupby("text_id", sort=True)["correct"].agg(n="size", correct="sum").reset_index()


def _ratio(correct: np.ndarray, n: np.ndarray) -> float:
    return 100.0 * float(correct.sum()) / float(n.sum())


def accuracy_interval(texts: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> Evidence:
    """Accuracy in % (pooled over vectors) with a percentile bootstrap over texts."""
    n, c = texts["n"].to_numpy(np.float64), texts["correct"].to_numpy(np.float64)
    if n.size == 0:
        return Evidence(math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n.size, size=(n_boot, n.size))
    stats = 100.0 * c[idx].sum(1) / n[idx].sum(1)
    estimate = _ratio(c, n)
    low, high = np.quantile(stats, [0.025, 0.975])
    return Evidence(estimate, min(low, estimate), max(high, estimate))


def difference_interval(a: pd.DataFrame, b: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0,
                        paired: bool = True) -> Evidence:
    """Accuracy of `a` minus accuracy of `b`, in points. Paired (one resample of texts for both) when `paired`
    and they have the same test texts, else each resampled on its own (pass paired=False when equal ids name
    different texts, e.g. two datasets' test splits)."""
    rng = np.random.default_rng(seed)
    estimate = _ratio(a["correct"].to_numpy(float), a["n"].to_numpy(float)) - \
        _ratio(b["correct"].to_numpy(float), b["n"].to_numpy(float))
    if paired and set(a["text_id"]) == set(b["text_id"]):
        joined = a.merge(b, on="text_id", suffixes=("_a", "_b"))
        idx = rng.integers(0, len(joined), size=(n_boot, len(joined)))
        cols = {k: joined[k].to_numpy(float)[idx].sum(1) for k in ("n_a", "correct_a", "n_b", "correct_b")}
        stats = 100.0 * (cols["correct_a"] / cols["n_a"] - cols["correct_b"] / cols["n_b"])
    else:
        stats = []
        for frame in (a, b):
            n, c = frame["n"].to_numpy(float), frame["correct"].to_numpy(float)
            idx = rng.integers(0, n.size, size=(n_boot, n.size))
            stats.append(100.0 * c[idx].sum(1) / n[idx].sum(1))
        stats = stats[0] - stats[1]
    low, high = np.quantile(stats, [0.025, 0.975])
    return Evidence(estimate, min(low, estimate), max(high, estimate))


def positive_weight_shares(attribution: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """Per layer: the share (%) of its top-`top_n` dimensions (by |w_j x_j|, the post's Fig. 7 ranking) whose
    probe *weight* is positive (the sign the post colours by), with half = early / late (the first and the
    second half of the layers; a middle layer of an odd count goes to neither)."""
    top = attribution[(attribution["variant"] == "input_x_weight") & (attribution["rank"] <= top_n)]
    weights = attribution[attribution["variant"] == "weight"][["layer", "dim", "signed"]]
    joined = top[["layer", "dim"]].merge(weights, on=["layer", "dim"], how="left")
    if joined["signed"].isna().any():
        raise ValueError("attribution lacks the weight rows of some top dimensions")
    shares = joined.groupby("layer")["signed"].apply(lambda s: 100.0 * float((s > 0).mean())).reset_index(
        name="positive_share")
    layers = np.sort(shares["layer"].unique())
    half = len(layers) // 2
    early, late = set(layers[:half].tolist()), set(layers[len(layers) - half:].tolist())
    shares["half"] = shares["layer"].map(lambda l: "early" if l in early else ("late" if l in late else "middle"))
    return shares


def _bootstrap_mean(values: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> Evidence:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return Evidence(math.nan)
    estimate = float(values.mean())
    if values.size < 2:
        return Evidence(estimate)
    rng = np.random.default_rng(seed)
    stats = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(1)
    low, high = np.quantile(stats, [0.025, 0.975])
    return Evidence(estimate, min(low, estimate), max(high, estimate))


def _row(quantity: str, setting: str, ev: Evidence, converged=pd.NA, note: str = "") -> dict:
    return {"quantity": quantity, "setting": setting, "estimate": ev.estimate, "low": ev.low, "high": ev.high,
            "converged": converged, "note": note}


def _both_converged(*flags) -> object:
    known = [bool(f) for f in flags if f is not None and not pd.isna(f)]
    if not known:
        return pd.NA
    return all(known)


def evidence_table(*, fits: dict[tuple[str, str], tuple[pd.DataFrame, object]],
                   grid: dict[tuple[int, int], pd.DataFrame] | None = None,
                   attribution: dict[str, pd.DataFrame] | None = None, top_n: int = 8,
                   dims_for_share: dict[str, pd.DataFrame] | None = None,
                   stability_overlap: pd.DataFrame | None = None, points: list[dict] | None = None,
                   norms: dict[str, pd.DataFrame] | None = None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The tidy evidence `probe_claims` reads.

    `fits[(setting, name)] = (per-text table, converged)` for name in raw, normalised, masked, transfer_target
    (the probe trained on the main dataset, scored on the transfer dataset's test texts) and random_scalar;
    setting is "faithful" or "ours". `grid[(n_texts, max_tokens)]` holds per-text tables of the raw probe at
    each grid cell (our setting). `attribution[setting]` is that setting's probe attribution table,
    `dims_for_share[setting]` its dims-for-share table, `stability_overlap` the seed-stability overlap table
    (our setting), `norms[setting]` the per-text mean norms per layer (:func:`layerwise.norms.per_text_norms`;
    the post's setting has a ``final_norm`` layer standing in for the last). `points` are rows (quantity, setting, estimate, converged, note) known only as a number,
    without per-text counts: they enter as points (low = high = estimate), noted as such."""
    rows = []
    for point in points or []:
        note = "; ".join(filter(None, [point.get("note", ""), "point"]))
        rows.append(_row(point["quantity"], point["setting"], Evidence(point["estimate"]),
                         point.get("converged", pd.NA), note))
    for setting in (FAITHFUL, OURS):
        get = lambda name: fits.get((setting, name))  # noqa: E731
        raw = get("raw")
        if raw is None:
            continue
        rows.append(_row("accuracy", setting, accuracy_interval(raw[0], n_boot=n_boot, seed=seed), raw[1]))
        for name, quantity in (("normalised", "normalised_delta"), ("masked", "mask_delta"),
                               ("transfer_target", "transfer_delta")):
            other = get(name)
            if other is not None:  # the transfer's texts are another dataset's: never paired with the main's
                ev = difference_interval(other[0], raw[0], n_boot=n_boot, seed=seed, paired=name != "transfer_target")
                rows.append(_row(quantity, setting, ev, _both_converged(other[1], raw[1])))
        if get("normalised") is not None:
            norm = get("normalised")
            rows.append(_row("normalised_accuracy", setting,
                             accuracy_interval(norm[0], n_boot=n_boot, seed=seed), norm[1]))
        if get("random_scalar") is not None:
            rnd = get("random_scalar")
            rows.append(_row("random_scalar_accuracy", setting,
                             accuracy_interval(rnd[0], n_boot=n_boot, seed=seed), rnd[1]))
    if grid:
        ns, ls = sorted({n for n, _ in grid}), sorted({l for _, l in grid})
        if len(ns) > 1:
            l_max = ls[-1]
            rows.append(_row("n_effect", OURS, difference_interval(grid[(ns[-1], l_max)], grid[(ns[0], l_max)],
                                                                   n_boot=n_boot, seed=seed),
                             note=f"N {ns[-1]} vs {ns[0]}, L {l_max}"))
        if len(ls) > 1:
            n_max = ns[-1]
            rows.append(_row("l_effect", OURS, difference_interval(grid[(n_max, ls[-1])], grid[(n_max, ls[0])],
                                                                   n_boot=n_boot, seed=seed),
                             note=f"L {ls[-1]} vs {ls[0]}, N {n_max}"))
    for setting, table in (attribution or {}).items():
        top1 = table[(table["variant"] == "input_x_weight") & (table["rank"] == 1)]
        rows.append(_row("max_share", setting, _bootstrap_mean(top1["share"].to_numpy(), n_boot=n_boot, seed=seed),
                         note=""))
        shares = positive_weight_shares(table, top_n)
        for half in ("early", "late"):
            values = shares.loc[shares["half"] == half, "positive_share"].to_numpy()
            rows.append(_row(f"{half}_positive_share", setting, _bootstrap_mean(values, n_boot=n_boot, seed=seed)))
    for setting, table in (dims_for_share or {}).items():
        d = table[(table["variant"] == "input_x_weight") & (table["threshold"] == 90)]
        counts = d["n_dims"].to_numpy(np.float64)
        if counts.size:
            spread = float((counts.max() - counts.min()) / np.median(counts))
            rows.append(_row("cumulative_spread", setting, Evidence(spread)))
    for setting, table in (norms or {}).items():
        growth = norm_growth_evidence(table, n_boot=n_boot, seed=seed)
        rate = growth["growth_per_layer"]
        rows.append(_row("norm_last_ratio", setting, Evidence(*growth["last_ratio"])))
        rows.append(_row("norm_exponential_fit", setting, Evidence(*growth["exponential_fit"]),
                         note=f"{rate[0]:+.0f}%/layer" if np.isfinite(rate[0]) else "too few layers for a trend"))
    if stability_overlap is not None:
        j = stability_overlap.loc[stability_overlap["scope"] == "frequent", "jaccard"].to_numpy()
        if j.size:
            rows.append(_row("frequent_jaccard", OURS, Evidence(float(j.mean()), float(j.min()), float(j.max())),
                             note="seed pairs"))
    return pd.DataFrame(rows, columns=["quantity", "setting", "estimate", "low", "high", "converged", "note"])


def our_setting_points(accuracy: pd.Series, converged: dict[str, object]) -> list[dict]:
    """Our setting's numbers known only from the summary table (fractions per condition of one model: raw,
    normalised, masked_at_test, transfer gap, random_scalar_trained), as `evidence_table` points in % and
    points. `converged[condition]` is that condition's fit flag (the masked and transfer numbers come from the
    raw probe, the random control's from the unit-norm one)."""
    raw = 100 * float(accuracy["raw"])
    raw_ok, norm_ok = converged.get("raw", pd.NA), converged.get("normalised", pd.NA)
    return [
        dict(quantity="normalised_delta", setting=OURS, estimate=100 * float(accuracy["normalised"]) - raw,
             converged=_both_converged(raw_ok, norm_ok)),
        dict(quantity="normalised_accuracy", setting=OURS, estimate=100 * float(accuracy["normalised"]),
             converged=norm_ok),
        dict(quantity="mask_delta", setting=OURS, estimate=100 * float(accuracy["masked_at_test"]) - raw,
             converged=raw_ok),
        dict(quantity="transfer_delta", setting=OURS, estimate=-100 * float(accuracy["transfer gap"]),
             converged=raw_ok),
        dict(quantity="random_scalar_accuracy", setting=OURS,
             estimate=100 * float(accuracy["random_scalar_trained"]), converged=norm_ok),
    ]
