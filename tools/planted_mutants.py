"""Replay the hand-planted mutants of issue 19, one at a time: each must make at least one fast test fail.

Each mutant is a one-place source edit that would put a wrong number or sentence into the paper (middle layers
stored one layer late, standardised anisotropy divided by the raw RMS, a probe condition silently running as
"raw", a transfer scored on the first data set, norm and training sentences reading the wrong end). The edit is
applied to the working tree, the listed tests run, and the file is restored whatever happens. Not part of
`make test` (it rewrites source files); run it on a clean tree:

    .venv/bin/python tools/planted_mutants.py          # prints KILLED / SURVIVED per mutant, exit 1 if any survived
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import NamedTuple


class Mutant(NamedTuple):
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


PROBES = ("tests/probes/test_conditions.py", "tests/probes/test_saved.py", "tests/probes/test_fidelity.py",
          "tests/probes/test_study.py")
NARRATIVE = ("tests/test_norms.py", "tests/training/test_training.py", "tests/training/test_summary.py",
             "tests/narrative/test_training.py", "tests/narrative/test_geometry.py", "tests/narrative/test_lens_edges.py",
             "tests/narrative/test_probes_edges.py", "tests/narrative/test_outliers_edges.py",
             "tests/narrative/test_crossstudy_edges.py")

MUTANTS = (
    Mutant("extraction stores the previous layer's state for the middle layers", "src/layerwise/activations/extract.py",
           "    count = 0\n\n    def take(state: torch.Tensor) -> None:\n        nonlocal count\n"
           "        sink(count, state)\n        count += 1",
           "    count, previous = 0, None\n\n    def take(state: torch.Tensor) -> None:\n"
           "        nonlocal count, previous\n        sink(count, previous if 1 < count < len(blocks) else state)\n"
           "        previous = state\n        count += 1",
           ("tests/activations/test_extract_every_layer.py", "tests/activations/test_extract.py")),
    Mutant("standardised anisotropy divides by the raw RMS, not the standard deviation",
           "src/layerwise/geometry/layers.py", "scale = xp.sqrt((centred**2).mean(axis=0))",
           "scale = xp.sqrt((xp.asarray(x, dtype=xp.float64)**2).mean(axis=0))",
           ("tests/geometry/test_geometry.py",)),
    Mutant("the normalised condition runs as raw", "src/layerwise/probes/conditions.py",
           "        X_train, X_test = normalise_rows(X_train, overwrite=overwrite), "
           "normalise_rows(X_test, overwrite=overwrite)", "        pass", PROBES),
    Mutant("the random_*_trained control scores the real test vectors", "src/layerwise/probes/conditions.py",
           "    through = reference.predict(random_test)", "    through = reference.predict(test.X)", PROBES),
    Mutant("the transfer scores the first data set as the second", "src/layerwise/probes/conditions.py",
           "        for tested, data in ((a, test_a), (b, test_b)):",
           "        for tested, data in ((a, test_a), (b, test_a)):", PROBES),
    Mutant("the norm sentence's peak is the smallest mean norm", "src/layerwise/norms.py",
           "peak, gap = int(mean.idxmax()), mean / median", "peak, gap = int(mean.idxmin()), mean / median",
           NARRATIVE),
    Mutant("the norm growth factor is inverted", "src/layerwise/norms.py",
           "a factor of {mean[last] / mean[first]:.3g}", "a factor of {mean[first] / mean[last]:.3g}", NARRATIVE),
    Mutant("'grows monotonically' is said of a trend that does not", "src/layerwise/narrative/training.py",
           '"grows monotonically" if row["anisotropy_monotonic"] else',
           '"grows monotonically" if not row["anisotropy_monotonic"] else', NARRATIVE),
    Mutant("monotonic growth tolerates a 50% drop", "src/layerwise/training/summary.py",
           "is_monotonic(max_by_step.to_numpy(), tolerance=0.05)",
           "is_monotonic(max_by_step.to_numpy(), tolerance=0.5)", NARRATIVE),
)


def run(mutant: Mutant) -> bool:
    """Apply `mutant`, run its tests, restore the file; True if a test failed (the mutant was killed)."""
    path = Path(mutant.path)
    original = path.read_text()
    if original.count(mutant.old) != 1:
        sys.exit(f"{mutant.path}: the text to mutate for '{mutant.name}' is not there exactly once; update this list")
    path.write_text(original.replace(mutant.old, mutant.new))
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:xdist", "-m", "not slow",
                                 *mutant.tests], capture_output=True, text=True)
    finally:
        path.write_text(original)
    if result.returncode not in (0, 1, 2):  # 0 passed, 1 failed, 2 a collection error; else pytest never ran them
        sys.exit(f"'{mutant.name}': pytest exited {result.returncode} without running the tests:\n{result.stdout[-2000:]}")
    killed = result.returncode != 0
    failed = next((line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))), "")
    print(f"{'KILLED  ' if killed else 'SURVIVED'} {mutant.name}" + (f"\n         {failed}" if failed else ""))
    return killed


if __name__ == "__main__":
    sys.exit(0 if all([run(m) for m in MUTANTS]) else 1)
