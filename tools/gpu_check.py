"""`make gpu-check`: the tiny config (tests/config/tiny.yaml) run twice, on the CPU (torch on CPU, NumPy kernels)
and on the GPU (torch on CUDA, CuPy kernels), and every number both runs report compared, one line each.

Compared: every numeric cell of results/verdicts/*.csv (verdict words and other text must be equal) and every
number of results/macros/*.tex (the paper's macros), except the macros that describe the run rather than the
data (hardware, wall times, versions: results/macros/provenance.tex and names matching TIMING_MACROS).

Tolerances, stated on every line: a CSV number must satisfy |gpu - cpu| <= ATOL + RTOL * |cpu| (RTOL = 1e-2,
ATOL = 1e-3): the two forwards differ in float32 summation order (~1e-6 relative), which can move a float16
store entry by one unit in the last place (~5e-4 relative) and a fitted probe by more; a macro, printed to
three significant digits, must be within that same tolerance or two units of its last printed digit.

Without CUDA it stops at once with one line and exit status 2. On one GPU the two tiny runs take a few minutes
(`--timeout`, default 600 s for both, stops it); it runs unattended and needs the shared data of the tiny
config (`--data`, default ../shared/data).
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "config" / "tiny.yaml"
RTOL, ATOL = 1e-2, 1e-3
NO_GPU = "no CUDA device: gpu-check needs a GPU"
SKIPPED_MACRO_FILES = ("provenance.tex",)
TIMING_MACROS = re.compile(r"(Seconds|Hours|Minutes|Time|Speed|PerSecond|Hardware|Version|Device|Threads)",
                           flags=re.I)
NUMBER = re.compile(r"-?\d[\d{,}]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Comparison:
    what: str
    cpu: str
    gpu: str
    ok: bool
    tolerance: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.what}: cpu={self.cpu} gpu={self.gpu} ({self.tolerance})"


def _close(cpu: float, gpu: float, extra: float = 0.0) -> bool:
    if math.isnan(cpu) or math.isnan(gpu):
        return math.isnan(cpu) and math.isnan(gpu)
    return abs(gpu - cpu) <= max(ATOL + RTOL * abs(cpu), extra)


def compare_csv(cpu_file: Path, gpu_file: Path, name: str) -> list[Comparison]:
    """One comparison per numeric column per row (text columns: equal), rows in file order."""
    import pandas as pd

    cpu, gpu = pd.read_csv(cpu_file), pd.read_csv(gpu_file)
    if list(cpu.columns) != list(gpu.columns) or len(cpu) != len(gpu):
        return [Comparison(name, f"{len(cpu)} rows {list(cpu.columns)}", f"{len(gpu)} rows {list(gpu.columns)}",
                           False, "same rows and columns")]
    out = []
    for i in range(len(cpu)):
        for column in cpu.columns:
            a, b = cpu[column].iloc[i], gpu[column].iloc[i]
            what = f"{name} row {i} {column}"
            if pd.api.types.is_number(a) and pd.api.types.is_number(b) and not isinstance(a, bool):
                out.append(Comparison(what, f"{float(a):.6g}", f"{float(b):.6g}", _close(float(a), float(b)),
                                      f"|diff| <= {ATOL:g} + {RTOL:g}*|cpu|"))
            else:
                out.append(Comparison(what, str(a), str(b), str(a) == str(b), "equal"))
    return out


def _macros(path: Path) -> dict[str, str]:
    return dict(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}", path.read_text()))


def _numbers(text: str) -> list[tuple[float, float]]:
    """(value, unit of its last printed digit) of each number in a macro's text."""
    found = []
    for token in NUMBER.findall(text):
        plain = token.replace("{,}", "").replace(",", "")
        mantissa = re.split(r"[eE]", plain)[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        exponent = int(re.split(r"[eE]", plain)[1]) if re.search(r"[eE]", plain) else 0
        found.append((float(plain), 10.0 ** (exponent - decimals)))
    return found


def compare_macros(cpu_file: Path, gpu_file: Path, name: str) -> list[Comparison]:
    cpu, gpu = _macros(cpu_file), _macros(gpu_file)
    out = []
    for macro in sorted(set(cpu) | set(gpu)):
        if TIMING_MACROS.search(macro):
            continue
        a, b = cpu.get(macro), gpu.get(macro)
        what = f"{name} \\{macro}"
        if a is None or b is None:
            out.append(Comparison(what, str(a), str(b), False, "present in both runs"))
            continue
        na, nb = _numbers(a), _numbers(b)
        if not na and not nb:
            out.append(Comparison(what, a, b, a == b, "equal text"))
            continue
        ok = len(na) == len(nb) and all(_close(x, y, 2 * unit) for (x, unit), (y, _) in zip(na, nb))
        out.append(Comparison(what, a, b, ok, f"|diff| <= {ATOL:g} + {RTOL:g}*|cpu| or 2 units of the last digit"))
    return out


def compare_runs(cpu_dir: Path, gpu_dir: Path) -> list[Comparison]:
    """Every comparison between two run folders (each holding results/verdicts and results/macros)."""
    out = []
    for cpu_file in sorted((cpu_dir / "results" / "verdicts").glob("*.csv")):
        gpu_file = gpu_dir / cpu_file.relative_to(cpu_dir)
        name = f"verdicts/{cpu_file.name}"
        out += compare_csv(cpu_file, gpu_file, name) if gpu_file.is_file() else \
            [Comparison(name, "present", "missing", False, "present in both runs")]
    for cpu_file in sorted((cpu_dir / "results" / "macros").glob("*.tex")):
        if cpu_file.name in SKIPPED_MACRO_FILES:
            continue
        gpu_file = gpu_dir / cpu_file.relative_to(cpu_dir)
        name = f"macros/{cpu_file.name}"
        out += compare_macros(cpu_file, gpu_file, name) if gpu_file.is_file() else \
            [Comparison(name, "present", "missing", False, "present in both runs")]
    return out


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def run_tiny(workdir: Path, data: Path, device: str, backend: str, timeout: float) -> None:
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(TINY.read_text())
    config.update(device=device, backend=backend)
    config["data"]["search_path"] = [str(data.resolve())]
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "all", "--rerun-incomplete", "--snakefile",
           str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(path)]
    with open(workdir / "snakemake.log", "w") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, cwd=workdir)
    if done.returncode:
        raise RuntimeError(f"the {device} run failed; see {workdir / 'snakemake.log'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--workdir", type=Path, default=REPO / "results" / "gpu-check")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for both runs together")
    args = parser.parse_args(argv)
    if not cuda_available():
        print(NO_GPU, file=sys.stderr)
        return 2
    try:
        import cupy  # noqa: F401
    except ImportError:
        print("CuPy is not installed: gpu-check compares the CuPy kernels (pip install cupy-cuda12x)",
              file=sys.stderr)
        return 2
    if not args.data.is_dir():
        print(f"no data folder {args.data}: pass --data <the shared data of tests/config/tiny.yaml>", file=sys.stderr)
        return 2
    start = time.monotonic()
    run_tiny(args.workdir / "cpu", args.data, "cpu", "numpy", args.timeout)
    run_tiny(args.workdir / "gpu", args.data, "cuda", "cupy", max(1.0, args.timeout - (time.monotonic() - start)))
    comparisons = compare_runs(args.workdir / "cpu", args.workdir / "gpu")
    for comparison in comparisons:
        print(comparison.line())
    failed = sum(not c.ok for c in comparisons)
    print(f"{len(comparisons) - failed} of {len(comparisons)} numbers agree; {time.monotonic() - start:.0f} s")
    return 1 if failed or not comparisons else 0


if __name__ == "__main__":
    sys.exit(main())
