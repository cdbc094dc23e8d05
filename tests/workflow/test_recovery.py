"""Failure safety: a run killed hard (SIGKILL of the whole process group, as an OOM killer or a lost node
would) or interrupted (Ctrl-C) during extraction or training is detected, and the re-run with
`--rerun-incomplete` (what `make paper` passes) gives results identical to an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from layerwise.activations.store import MANIFEST, ActivationStore, CorruptStore

from tests.helpers.workflow_runs import OFFLINE, copy_workflow, run_and_kill, snakemake, tiny_config

pytestmark = pytest.mark.slow
# Large enough that extraction of a tiny model takes seconds: the kill lands mid-store.
STORE = "results/activations/tiny-gpt2/imdb/n1500_l64_s0"
TRAINING = {"training.max_steps": 300, "training.n_checkpoints": 4, "training.eval_every": 100}
TRAIN_LOG = "results/training/decoder/seed0/log.csv"
CHECKPOINTS = "resources/checkpoints/decoder/seed0"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(workdir: Path, configfile: Path, target: str, *extra: str) -> None:
    done = snakemake(workdir, configfile, "--cores", "1", *extra, target)
    assert done.returncode == 0, done.stderr[-3000:]


def mid_store(workdir: Path) -> bool:
    """The store's arrays exist but its manifest does not yet: extraction is under way."""
    store = workdir / STORE
    return (store / "layer_000.npy").exists() and not (store / MANIFEST).exists()


@pytest.fixture(scope="module")
def uninterrupted_store(tmp_path_factory, shared_data) -> Path:
    """One uninterrupted build of STORE, the reference of both extraction tests (SIGKILL and Ctrl-C)."""
    reference = tmp_path_factory.mktemp("uninterrupted")
    build(reference, tiny_config(reference, shared_data), STORE)
    return reference


def interrupted_run(tmp_path: Path, shared_data: Path, target: str, ready_when, sig: signal.Signals,
                    reference: Path | None = None, **changes) -> tuple[Path, Path, Path]:
    """(uninterrupted workdir, interrupted workdir, its config): the second run of `target` gets `sig`
    once `ready_when(workdir)` holds. The uninterrupted run is built here unless `reference` is one."""
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    if reference is None:
        reference = tmp_path / "uninterrupted"
        reference.mkdir()
        build(reference, tiny_config(reference, shared_data, **changes), target)
    configfile = tiny_config(interrupted, shared_data, **changes)
    assert run_and_kill(interrupted, configfile, "--cores", "1", target, sig=sig,
                        ready=lambda: ready_when(interrupted)), \
        f"the run finished before it could be stopped; see {interrupted / 'killed-run.log'}"
    return reference, interrupted, configfile


def killed_then_resumed(tmp_path: Path, shared_data: Path, target: str, ready_when, reference: Path | None = None,
                        **changes) -> tuple[Path, Path]:
    """(uninterrupted workdir, SIGKILLed-and-resumed workdir) for `target`."""
    reference, interrupted, configfile = interrupted_run(tmp_path, shared_data, target, ready_when, signal.SIGKILL,
                                                         reference, **changes)
    # Snakemake's safety nets are intact: a plain re-run refuses the half-written output it marked
    # incomplete, and the killed run's lock stops even a `--rerun-incomplete` run until `--unlock`
    # (`make unlock`) lifts it.
    refused = snakemake(interrupted, configfile, "--cores", "1", target)
    assert refused.returncode != 0
    assert "IncompleteFilesException" in refused.stdout + refused.stderr, refused.stderr[-3000:]
    locked = snakemake(interrupted, configfile, "--cores", "1", "--rerun-incomplete", target)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr, locked.stderr[-3000:]
    assert snakemake(interrupted, configfile, "--unlock").returncode == 0
    build(interrupted, configfile, target, "--rerun-incomplete")
    return reference, interrupted


def test_killed_extraction_is_detected_and_resumes_to_the_same_store(tmp_path, shared_data, uninterrupted_store):
    partial: dict[str, Exception] = {}

    def mid_store_checked(workdir: Path) -> bool:
        if not mid_store(workdir):
            return False
        try:  # the library refuses the half-written store (no manifest yet)
            ActivationStore.open(workdir / STORE)
        except CorruptStore as error:
            partial["error"] = error
        return True

    reference, resumed = killed_then_resumed(tmp_path, shared_data, STORE, mid_store_checked, uninterrupted_store)
    assert "incomplete" in str(partial.get("error", "")), partial
    want = json.loads((reference / STORE / MANIFEST).read_text())
    got = json.loads((resumed / STORE / MANIFEST).read_text())
    assert got["files"] == want["files"]  # every layer array and the token table, byte for byte (sha256)
    assert got["n_tokens"] == want["n_tokens"] > 50_000
    ActivationStore.open(resumed / STORE, verify="sha256")


def test_killed_training_resumes_to_the_same_checkpoints(tmp_path, shared_data):
    def after_first_checkpoint(workdir: Path) -> bool:
        return (workdir / CHECKPOINTS / "step0").is_dir() and not (workdir / TRAIN_LOG).exists()

    reference, resumed = killed_then_resumed(tmp_path, shared_data, TRAIN_LOG, after_first_checkpoint, **TRAINING)
    steps = sorted(p.name for p in (reference / CHECKPOINTS).iterdir())
    assert len(steps) == 4 and sorted(p.name for p in (resumed / CHECKPOINTS).iterdir()) == steps  # no temp folders
    for step in steps:
        assert sha256(resumed / CHECKPOINTS / step / "model.safetensors") == \
            sha256(reference / CHECKPOINTS / step / "model.safetensors"), step
    timing = ["elapsed_s"]
    pd.testing.assert_frame_equal(pd.read_csv(resumed / TRAIN_LOG).drop(columns=timing),
                                  pd.read_csv(reference / TRAIN_LOG).drop(columns=timing))


def test_ctrl_c_during_extraction_needs_no_unlock(tmp_path, shared_data, uninterrupted_store):
    """Ctrl-C (SIGINT to the foreground group): Snakemake cleans up itself, so `make paper` just resumes."""
    reference, interrupted, configfile = interrupted_run(tmp_path, shared_data, STORE, mid_store, signal.SIGINT,
                                                         uninterrupted_store)
    build(interrupted, configfile, STORE, "--rerun-incomplete")  # no --unlock needed
    want = json.loads((reference / STORE / MANIFEST).read_text())["files"]
    assert json.loads((interrupted / STORE / MANIFEST).read_text())["files"] == want


FIGURE = "results/figures/anisotropy.pdf"
TABLE = "results/geometry/tiny-gpt2/enwik8/n8_l16_s0.csv"  # read by FIGURE


def complete_run(workdir: Path, configfile: Path, target: str, snakefile: Path) -> subprocess.CompletedProcess:
    """What `make paper` runs: layerwise.workflow.complete_run, targets first, then Snakemake's options."""
    command = [sys.executable, "-m", "layerwise.workflow.complete_run", target, "--snakefile", str(snakefile),
               "--directory", str(workdir), "--configfile", str(configfile), "--cores", "1", "--rerun-incomplete"]
    return subprocess.run(command, capture_output=True, text=True, env=OFFLINE, cwd=workdir)


def test_a_file_deleted_by_a_killed_forced_job_is_rebuilt_by_the_next_run(tmp_path, shared_data):
    """`--forcerun` deletes a job's outputs before the job runs; killed then, the outputs stay missing while
    what reads them is present and newer. Snakemake alone calls that up to date; `make paper`'s runner rebuilds
    the missing file, byte for byte, and says `make unlock` while the killed run's lock is in the way."""
    snakefile = copy_workflow(tmp_path / "workflow")  # a snapshot: edits to the repository cannot rerun jobs
    work = tmp_path / "work"
    work.mkdir()
    configfile = tiny_config(work, shared_data)
    done = snakemake(work, configfile, "--cores", "1", FIGURE, snakefile=snakefile)
    assert done.returncode == 0, done.stderr[-3000:]
    want = sha256(work / TABLE)
    assert run_and_kill(work, configfile, "--cores", "1", TABLE, "--forcerun", TABLE, snakefile=snakefile,
                        ready=lambda: not (work / TABLE).exists()), "the forced job finished before the kill"
    assert not (work / TABLE).exists()
    locked = complete_run(work, configfile, FIGURE, snakefile)
    assert locked.returncode != 0 and "run `make unlock`" in locked.stderr, locked.stderr[-2000:]
    assert snakemake(work, configfile, "--unlock", snakefile=snakefile).returncode == 0
    plain = snakemake(work, configfile, "--cores", "1", "--rerun-incomplete", FIGURE, snakefile=snakefile)
    assert "Nothing to be done" in plain.stdout + plain.stderr and not (work / TABLE).exists()  # the trap
    done = complete_run(work, configfile, FIGURE, snakefile)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"will be rebuilt: {TABLE}" in done.stderr
    assert sha256(work / TABLE) == want
