"""What tests share besides fixtures (those are in tests/conftest.py): the repository's paths, the real shared
data, the stand-in `scontrol` of the SLURM client tools, the registry entry of a tiny random model, and the
peak memory of a process. Test modules import from here (and from the modules beside it), never from each other."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# CI clones the repository with `../shared` beside it (see ../shared/data/README.md). LAYERWISE_SHARED
# points elsewhere: `make mutants` runs the tests from a copy of the repository in mutants/.
SHARED = Path(os.environ.get("LAYERWISE_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
# Once SLURM's client tools are installed, the SLURM executor plugin runs `scontrol show config` (10 s
# timeout) whenever `snakemake` starts; with a slurm.conf and no controller every call would cost 10 s. Tests
# get a stand-in `scontrol` that fails at once (tests/conftest.py puts it first on PATH); the cluster test
# (tests/cluster/) passes REAL_PATH to its runs.
NO_CONTROLLER = str(REPO / "tests" / "cluster" / "no_controller")
# Without the stand-in even where this process inherited it (pytest-xdist workers start from the patched PATH).
REAL_PATH = os.pathsep.join(p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p != NO_CONTROLLER)
RANDOM_ARCHITECTURES = ("gpt2", "llama", "gpt_neox", "bert")


def random_spec(architecture: str, **overrides) -> dict:
    """Registry entry of a tiny random model: 2 layers, width 32, 4 heads."""
    return {"source": "random", "architecture": architecture, "n_layers": 2, "width": 32, "n_heads": 4,
            "seed": 0, **overrides}


def peak_resident_mb() -> int:
    """Peak resident memory of this process, in MB, from /proc (VmHWM belongs to the process's own address
    space; ru_maxrss would carry over the parent's size across vfork + exec)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) // 1024
