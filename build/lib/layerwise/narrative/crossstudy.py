"""The cross-study section in words: only what the rank correlations and their intervals support."""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerwise.crossstudy.view import peak_depths
from layerwise.workflow.macros import LaTeX, latex_escape

NAMES: dict[str, str] = {
    "probe_recall": "probe recall",
    "anisotropy": "anisotropy",
    "twonn_id": "TwoNN ID",
    "mean_norm": "mean norm",
    "kl_final": "KL(final$\\,\\|\\,$layer)",
    "kl_input": "KL(input$\\,\\|\\,$layer)",
    "agreement": "top-1 agreement",
}


def correlation_sentence(row: pd.Series) -> str:
    """One clause: rho, its interval, and whether the interval includes zero (then no sign is claimed)."""
    head = f"{NAMES[row['x']]} and {NAMES[row['y']]}: $\\rho={row['rho']:.2f}$"
    if row["interval"] == "none" or not np.isfinite(row["ci_low"]):
        return head + " (no interval: a quantity without per-text resamples; a description only, no claim)"
    level = f"{100 * row['confidence']:.0f}\\%"
    span = f"{level} interval {row['ci_low']:.2f} to {row['ci_high']:.2f}"
    if row["interval"] == "includes 0":
        return head + f" ({span}, which includes zero: the sign is not established)"
    # the sign the interval establishes (a percentile interval need not contain the point estimate)
    direction = "rise together" if row["ci_low"] > 0 else "move in opposite directions"
    return head + f" ({span}, excluding zero: across layers they {direction})"


def _first_depth_above(rows: pd.DataFrame, column: str, threshold: float) -> float:
    above = rows[rows[column] > threshold].sort_values("layer")
    return float(above["relative_depth"].iloc[0]) if len(above) else np.nan


def peak_sentence(name: str, rows: pd.DataFrame) -> str:
    """Where each quantity peaks (relative depth) in one model, and where the lens first agrees with the output."""
    peaks = peak_depths(rows, ["anisotropy", "twonn_id", "probe_recall"])
    kind, n_layers = rows["kind"].iloc[0], int(rows["n_layers"].iloc[0])
    parts = [f"{NAMES[q]} peaks at relative depth {d:.2f}" for q, d in peaks.items()]
    sentence = f"In {latex_escape(name)} ({kind}, {n_layers} layers) " + ", ".join(parts)
    if "agreement" in rows and rows["agreement"].notna().any():
        depth = _first_depth_above(rows, "agreement", 0.5)
        sentence += (f", and the logit lens first agrees with the output on more than half the tokens at relative "
                     f"depth {depth:.2f}" if np.isfinite(depth) else
                     ", and the logit lens never agrees with the output on more than half the tokens")
    return sentence + "."


def correlation_table_latex(correlations: pd.DataFrame, names: dict[str, str]) -> str:
    """tabular: model, pair, rho, interval, whether it includes zero."""
    lines = ["\\begin{tabular}{llrll}", "\\hline", "Model & Quantities & $\\rho$ & Interval & Zero \\\\", "\\hline"]
    for _, row in correlations.iterrows():
        has = np.isfinite(row["ci_low"])
        interval = f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]" if has else "--"
        zero = {"includes 0": "included", "excludes 0": "excluded"}.get(row["interval"], "--")
        lines.append(f"{latex_escape(names[row['model']])} & {NAMES[row['x']]} vs {NAMES[row['y']]} & "
                     f"{row['rho']:.2f} & {interval} & {zero} \\\\")
    return "\n".join(lines + ["\\hline", "\\end{tabular}"])


def sources_sentence(sources: pd.DataFrame) -> str:
    """Which data each quantity comes from and how its interval is made (one clause per distinct source)."""
    clauses = []
    for (data, interval), rows in sources.groupby(["data", "interval"], sort=False):
        quantities = ", ".join(dict.fromkeys(NAMES[q] for q in rows["quantity"]))
        clauses.append(f"{quantities}: {latex_escape(data)}; interval: {latex_escape(interval)}")
    return "; ".join(clauses) + "."


def crossstudy_macros(layers: pd.DataFrame, correlations: pd.DataFrame, sources: pd.DataFrame,
                      names: dict[str, str], *, n_boot: int, confidence: float) -> dict[str, float | int | str]:
    """Every number and sentence of the cross-study section."""
    if layers.empty:
        off = "The cross-study view is switched off in this run (crossstudy.enabled, or no probed model)."
        return {"CrossstudySummary": off, "CrossstudyCorrelations": "", "CrossstudyTable": "",
                "CrossstudySources": "", "CrossstudyBoot": n_boot, "CrossstudyConfidence": 100 * confidence,
                "CrossstudyIncludesZero": 0, "CrossstudyPairs": 0}
    summary = [peak_sentence(names[m], rows) for m, rows in layers.groupby("model", sort=False)]
    clauses = []
    for model, rows in correlations.groupby("model", sort=False):
        clauses.append(f"In {latex_escape(names[model])}, " + "; ".join(correlation_sentence(r)
                                                                          for _, r in rows.iterrows()) + ".")
    return {
        "CrossstudySummary": LaTeX(" ".join(summary)),
        "CrossstudyCorrelations": LaTeX(" ".join(clauses)),
        "CrossstudyTable": LaTeX(correlation_table_latex(correlations, names)),
        "CrossstudySources": LaTeX(sources_sentence(sources)),
        "CrossstudyBoot": n_boot,
        "CrossstudyConfidence": 100 * confidence,
        "CrossstudyIncludesZero": int((correlations["interval"] == "includes 0").sum()),
        "CrossstudyPairs": len(correlations),
    }
