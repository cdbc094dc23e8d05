"""tools/gpu_check.py (`make gpu-check`): without CUDA one line and a non-zero exit at once; the comparison of a
CPU and a GPU run's verdicts and macros, on two hand-made result folders (no GPU here to make real ones)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "tools"))
import gpu_check  # noqa: E402


def test_without_cuda_it_fails_at_once_with_one_line(tmp_path):
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(REPO / "tools" / "gpu_check.py"), "--workdir", str(tmp_path)],
                          capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 2
    assert done.stderr.strip() == "no CUDA device: gpu-check needs a GPU" and done.stdout == ""
    assert time.monotonic() - start < 60 and not any(tmp_path.iterdir())  # nothing ran


def test_make_gpu_check_runs_the_tool():
    done = subprocess.run(["make", "-n", "gpu-check"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "tools/gpu_check.py" in done.stdout


def _run(root: Path, anisotropy: float, verdict: str, macro: str) -> Path:
    (root / "results" / "verdicts").mkdir(parents=True)
    (root / "results" / "macros").mkdir(parents=True)
    (root / "results" / "verdicts" / "geometry.csv").write_text(
        f"claim,verdict,estimate\nbell,{verdict},{anisotropy}\n")
    (root / "results" / "macros" / "geometry.tex").write_text(
        f"% generated\n\\newcommand{{\\GeometryPeak}}{{{macro}}}\n\\newcommand{{\\GeometrySeconds}}{{12.5}}\n")
    (root / "results" / "macros" / "provenance.tex").write_text("\\newcommand{\\HardwareSummary}{2 cores}\n")
    return root


@pytest.mark.parametrize("gpu, ok", [((0.4123, "supported", "0.412"), True),     # within tolerance
                                     ((0.4124, "supported", "0.413"), True),     # last printed digit moved
                                     ((0.4500, "supported", "0.412"), False),    # a real difference
                                     ((0.4123, "refuted", "0.412"), False)])     # a verdict flipped
def test_comparisons_name_each_number_and_its_tolerance(tmp_path, gpu, ok):
    cpu = _run(tmp_path / "cpu", 0.4123, "supported", "0.412")
    other = _run(tmp_path / "gpu", *gpu)
    lines = [c.line() for c in gpu_check.compare_runs(cpu, other)]
    # claim, verdict, estimate of one row, and one macro (timings and provenance are not compared)
    assert len(lines) == 4, lines
    assert all("(" in line and line.endswith(")") for line in lines)  # every line states its tolerance
    assert all(line.startswith("OK") for line in lines) == ok, lines
    assert not any("Seconds" in line or "Hardware" in line for line in lines)
