"""Claim-by-claim verdicts: a source's claim, our number with its interval → one of four verdicts, by rule.

Why a rule in code: a reproduction paper's text tends to lean toward agreement. Here the verdict of every
claim is computed from the numbers (never typed), so a reader can check it and a test can plant numbers that
must give each verdict. The four verdicts:

- *reproduced*: our interval lies wholly on the claim's side of its bound, in the source's setting (and in
  ours, if we also ran ours);
- *not reproduced*: our interval lies wholly on the other side, in the source's setting;
- *differs in setting*: the claim holds in the source's setting but not in ours (or the reverse) — the
  difference is the setting's, and the text must say which;
- *not testable here*: no number (the experiment cannot run here), or the interval contains the bound, so our
  sample cannot decide either way (the reason says which).

A `Test` is the claim made testable: a direction and a bound (`above`, `below`), a range (`between`), or a
target with a tolerance (`near`). Evidence is (estimate, low, high); a point without an interval has
low = high = estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import numpy as np
import pandas as pd

from layerwise.workflow.macros import latex_escape

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
DIFFERS = "differs in setting"
NOT_TESTABLE = "not testable here"
VERDICTS: tuple[str, ...] = (REPRODUCED, NOT_REPRODUCED, DIFFERS, NOT_TESTABLE)

Outcome = Literal["holds", "fails", "undecided", "missing"]


@dataclass(frozen=True)
class Evidence:
    """Our estimate and its interval (`low` ≤ `estimate` ≤ `high`; equal for a point)."""

    estimate: float
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        low = self.estimate if self.low is None else self.low
        high = self.estimate if self.high is None else self.high
        object.__setattr__(self, "low", float(low))
        object.__setattr__(self, "high", float(high))
        object.__setattr__(self, "estimate", float(self.estimate))
        if not any(math.isnan(v) for v in (self.estimate, self.low, self.high)) and not (
                self.low <= self.estimate <= self.high):
            raise ValueError(f"interval [{self.low}, {self.high}] does not contain the estimate {self.estimate}")

    @property
    def missing(self) -> bool:
        return any(math.isnan(v) for v in (self.estimate, self.low, self.high))


@dataclass(frozen=True)
class Test:
    """What the claim says of the number: `kind` is above / below (a bound), between (lo, hi), near (target ±
    tol). `unit` is printed after numbers ("pp", "nats", "")."""

    __test__ = False  # a claim's test, not a pytest class (the name would be collected)

    kind: Literal["above", "below", "between", "near"]
    bound: float | tuple[float, float]
    tol: float = 0.0
    unit: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("above", "below", "between", "near"):
            raise ValueError(f"unknown test kind {self.kind!r}: use above, below, between or near")
        if self.kind == "between":
            lo, hi = self.bound  # type: ignore[misc]
            if not lo <= hi:
                raise ValueError(f"between needs lo <= hi, got {self.bound}")
        elif not isinstance(self.bound, (int, float)):
            raise ValueError(f"{self.kind} needs one number as its bound, got {self.bound!r}")
        if self.tol < 0:
            raise ValueError(f"tol must be >= 0, got {self.tol}")

    def _range(self) -> tuple[float, float]:
        """The closed set of values for which the claim holds."""
        if self.kind == "above":
            return float(self.bound), math.inf  # type: ignore[arg-type]
        if self.kind == "below":
            return -math.inf, float(self.bound)  # type: ignore[arg-type]
        if self.kind == "between":
            lo, hi = self.bound  # type: ignore[misc]
            return float(lo), float(hi)
        return float(self.bound) - self.tol, float(self.bound) + self.tol  # type: ignore[arg-type]

    def outcome(self, evidence: Evidence | None) -> Outcome:
        """holds: the whole interval satisfies the claim; fails: none of it does; undecided: it straddles."""
        if evidence is None or evidence.missing:
            return "missing"
        lo, hi = self._range()
        if lo <= evidence.low and evidence.high <= hi:
            return "holds"
        if evidence.high < lo or evidence.low > hi:
            return "fails"
        return "undecided"

    def describe(self) -> str:
        u = f" {self.unit}" if self.unit else ""
        if self.kind == "above":
            return f"> {_fmt(self.bound)}{u}"  # type: ignore[arg-type]
        if self.kind == "below":
            return f"< {_fmt(self.bound)}{u}"  # type: ignore[arg-type]
        if self.kind == "between":
            lo, hi = self.bound  # type: ignore[misc]
            return f"in [{_fmt(lo)}, {_fmt(hi)}]{u}"
        return f"{_fmt(self.bound)} ± {_fmt(self.tol)}{u}"  # type: ignore[arg-type]


def judge(test: Test, faithful: Evidence | None, ours: Evidence | None = None, *,
          confounded: bool = False) -> tuple[str, str]:
    """The verdict and its reason. `faithful` is the run in the source's setting (as close as this workflow
    comes); `ours` is the same quantity in our default setting, when it differs (None when they are one run).

    `confounded`: the source's setting changes more than the claim names (e.g. two pretrained models that differ
    in depth, data and objective besides the one property compared), so only `ours`, the controlled comparison,
    can confirm the claim: if it cannot decide, neither can the confounded one."""
    f = test.outcome(faithful)
    o = test.outcome(ours) if ours is not None else None
    if confounded and f == "holds" and o in (None, "missing", "undecided"):
        return NOT_TESTABLE, ("the source's setting holds but is confounded, and the controlled comparison "
                              + ("cannot decide" if o == "undecided" else "is not run here"))
    if f == "missing":
        if o in ("holds", "fails"):
            return DIFFERS, (f"only our setting was run: the claim {'holds' if o == 'holds' else 'fails'} "
                             "there, the source's setting is not run here")
        if o == "undecided":
            return NOT_TESTABLE, "only our setting was run, and its interval contains the claim's bound"
        return NOT_TESTABLE, "no number: this experiment does not run here"
    if f == "undecided":
        return NOT_TESTABLE, "the interval contains the claim's bound: this sample cannot decide"
    if o is None or o in ("missing", "undecided") or o == f:
        if f == "holds":
            return REPRODUCED, "the whole interval is on the claim's side"
        return NOT_REPRODUCED, "the whole interval is on the other side of the claim's bound"
    if f == "holds":
        return DIFFERS, "holds in the source's setting, fails in ours"
    return DIFFERS, "fails in the source's setting, holds in ours"


@dataclass(frozen=True)
class Claim:
    """One claim of a source: where it is (`key`, a short id), what it says (`text`), the source's own
    number as printed (`source`), the test, and what our setting changes (empty: nothing beyond model/data)."""

    key: str
    text: str
    source: str
    test: Test
    faithful: Evidence | None
    ours: Evidence | None = None
    setting: str = ""
    notes: Sequence[str] = field(default_factory=tuple)
    confounded: bool = False  # the source's setting cannot confirm alone (see `judge`)

    def verdict(self) -> tuple[str, str]:
        return judge(self.test, self.faithful, self.ours, confounded=self.confounded)


def verdict_frame(claims: Iterable[Claim]) -> pd.DataFrame:
    """One row per claim: key, claim, source, test, faithful/ours estimates and intervals, verdict, reason."""
    rows = []
    for c in claims:
        verdict, reason = c.verdict()
        row = {"key": c.key, "claim": c.text, "source": c.source, "test": c.test.describe(),
               "setting": c.setting, "verdict": verdict, "reason": reason}
        for name, ev in (("faithful", c.faithful), ("ours", c.ours)):
            row[f"{name}_estimate"] = np.nan if ev is None else ev.estimate
            row[f"{name}_low"] = np.nan if ev is None else ev.low
            row[f"{name}_high"] = np.nan if ev is None else ev.high
        rows.append(row)
    keys = [r["key"] for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"claim keys must be unique, got {keys}")
    columns = ["key", "claim", "source", "test", "setting", "verdict", "reason",
               *(f"{n}_{p}" for n in ("faithful", "ours") for p in ("estimate", "low", "high"))]
    return pd.DataFrame(rows, columns=columns)


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 999.5:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def format_evidence(estimate: float, low: float, high: float, unit: str = "") -> str:
    """`12.3 [11.9, 12.8] pp`; a point without interval prints alone; NaN prints "—"."""
    if math.isnan(estimate):
        return "—"
    u = f" {unit}" if unit else ""
    if math.isnan(low) or (low == estimate == high):
        return f"{_fmt(estimate)}{u}"
    return f"{_fmt(estimate)} [{_fmt(low)}, {_fmt(high)}]{u}"


def verdict_table_latex(frame: pd.DataFrame, caption: str, label: str, units: dict[str, str] | None = None) -> str:
    """The verdict table as a LaTeX float: claim, source's number, test, ours in the source's setting, ours in
    our setting, what differs, verdict (bold). Columns wrap so the table fits the text width."""
    units = units or {}
    # Columns 0.89 of the line plus 7 x 4 pt of separation: inside the text width; a bold "reproduced" at
    # scriptsize needs 0.105 of it.
    lines = [r"\begin{table}[!htbp]\centering\scriptsize\setlength{\tabcolsep}{2pt}",
             rf"\caption{{{caption}}}\label{{{label}}}",
             r"\begin{tabular}{p{0.2\linewidth}p{0.1\linewidth}p{0.09\linewidth}p{0.14\linewidth}"
             r"p{0.14\linewidth}p{0.11\linewidth}p{0.11\linewidth}}",
             r"\hline",
             r"Claim & Source & Test & Source's setting (ours) & Our setting & Differs & Verdict \\",
             r"\hline"]
    for _, r in frame.iterrows():
        unit = units.get(r["key"], "")
        cells = [latex_escape(str(r["claim"])), latex_escape(str(r["source"])), latex_escape(str(r["test"])),
                 latex_escape(format_evidence(r["faithful_estimate"], r["faithful_low"], r["faithful_high"], unit)),
                 latex_escape(format_evidence(r["ours_estimate"], r["ours_low"], r["ours_high"], unit)),
                 latex_escape(str(r["setting"]) or "—"), rf"\textbf{{{r['verdict']}}}"]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def bootstrap_interval(values: np.ndarray, statistic=np.mean, n_boot: int = 2000, confidence: float = 0.95,
                       seed: int = 0) -> Evidence:
    """Percentile bootstrap over the first axis of `values` (one row per unit: a text, a batch, a seed)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] == 0:
        return Evidence(math.nan)
    estimate = float(statistic(values))
    if values.shape[0] < 2:
        return Evidence(estimate)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    stats = np.array([statistic(values[i]) for i in idx], dtype=np.float64)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Evidence(estimate, min(float(low), estimate), max(float(high), estimate))


def verdict_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict (all four keys present), for the section's opening sentence."""
    counts = frame["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


def summary_sentence(frames: dict[str, pd.DataFrame]) -> str:
    """The abstract's one-line account: per study (`frames`: study name → verdict frame), how many of its
    claims got each verdict, e.g. "Study 1 (the probe): 3 of 9 claims reproduced, 4 not reproduced, ...".
    Verdicts with no claim are left out; a study without claims says so."""
    parts = []
    for study, frame in frames.items():
        counts = verdict_counts(frame)
        total = sum(counts.values())
        if total == 0:
            parts.append(f"{study}: no claim tested")
            continue
        listed = [f"{n} {v}" for v, n in counts.items() if n]
        listed[0] = f"{listed[0].split(' ', 1)[0]} of {total} claims {listed[0].split(' ', 1)[1]}"
        parts.append(f"{study}: " + ", ".join(listed))
    return "; ".join(parts) + "."
