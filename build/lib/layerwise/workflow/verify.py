"""Check the paper's key numbers against an expected-values file, so a moved number gets noticed."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

_NEWCOMMAND = re.compile(r"\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}\s*$")


def read_macros(path: Path | str) -> dict[str, str]:
    """`\\newcommand{\\Name}{value}` lines of a generated macro file → {Name: value text}."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if m := _NEWCOMMAND.match(line.strip()):
            out[m.group(1)] = m.group(2)
    return out


def parse_number(text: str) -> float:
    """Undo `format_number`: thousands separators `{,}`, and `n/a` → NaN."""
    text = text.replace("{,}", "").strip()
    return math.nan if text == "n/a" else float(text)


@dataclass(frozen=True)
class Check:
    name: str
    expected: float
    actual: float | None
    tolerance: float
    ok: bool
    message: str


def check_values(macros: Mapping[str, str], expected: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    """Each expected entry: {value: x, abs_tol: a} or {value: x, rel_tol: r}; a missing macro fails."""
    checks = []
    for name, spec in expected.items():
        value = float(spec["value"])
        tol = float(spec.get("abs_tol", abs(value) * float(spec.get("rel_tol", 0.0))))
        if name not in macros:
            checks.append(Check(name, value, None, tol, False, f"{name}: not generated"))
            continue
        try:
            actual = parse_number(macros[name])
        except ValueError:
            checks.append(Check(name, value, None, tol, False, f"{name}: {macros[name]!r} is not a number"))
            continue
        ok = math.isfinite(actual) and abs(actual - value) <= tol
        checks.append(Check(name, value, actual, tol, ok,
                            f"{name}: {actual:g} vs expected {value:g} ± {tol:g} → {'ok' if ok else 'MOVED'}"))
    return checks
