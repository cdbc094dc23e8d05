"""Running the workflow from tests: a private copy of it, the tiny config, dry-run job counts, kills."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

from tests.helpers import REPO

# As profiles/local: Snakemake's default (100/1s) re-runs its job selection every second while jobs run, which
# took a sixth of a core through a whole `make paper`; a finished job wakes the scheduler anyway.
SNAKEMAKE_OPTIONS = ["--max-jobs-per-timespan", "100/60s"]
SNAKEMAKE = [sys.executable, "-m", "snakemake", *SNAKEMAKE_OPTIONS]
TINY = REPO / "tests" / "config" / "tiny.yaml"
# Everything the Snakefile reads from beside itself.
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "schemas", "envs", "paper", "report", "src/layerwise",
                  "data/lens_examples")
# The tiny run needs no network.
OFFLINE = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")


def copy_workflow(dest: Path) -> Path:
    """A copy of the workflow (mtimes kept) that a test may edit without touching the repository;
    returns its Snakefile. Its rules import the copied library (the Snakefile puts its own src/ first)."""
    for part in WORKFLOW_PARTS:
        source, target = REPO / part, dest / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return dest / "Snakefile"


def snakemake_command(workdir: Path, configfile: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> list[str]:
    return [*SNAKEMAKE, "--snakefile", str(snakefile), "--directory", str(workdir),
            "--configfile", str(configfile), *args]


def snakemake(workdir: Path, configfile: Path, *args: str, snakefile: Path = REPO / "Snakefile"
              ) -> subprocess.CompletedProcess:
    """Run a Snakefile (by default the repository's) with `workdir` as working directory."""
    return subprocess.run(snakemake_command(workdir, configfile, *args, snakefile=snakefile),
                          capture_output=True, text=True, env=OFFLINE, cwd=workdir)


def run_and_kill(workdir: Path, configfile: Path, *args: str, ready: Callable[[], bool],
                 sig: signal.Signals = signal.SIGKILL, timeout: float = 600.0, snakefile: Path = REPO / "Snakefile"
                 ) -> bool:
    """Start Snakemake and send `sig` to its whole process group as soon as `ready()` holds: SIGKILL as
    the OOM killer or a lost node would, SIGINT as Ctrl-C would. Returns False if the run ended first."""
    with open(workdir / "killed-run.log", "w") as out:
        proc = subprocess.Popen(snakemake_command(workdir, configfile, *args, snakefile=snakefile), stdout=out, stderr=subprocess.STDOUT,
                                env=OFFLINE, cwd=workdir, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                if ready():
                    os.killpg(proc.pid, sig)
                    proc.wait()
                    return True
                time.sleep(0.005)
            return False
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def tiny_config(tmp_path: Path, data: Path, **changes) -> Path:
    """tests/config/tiny.yaml with the absolute data path, plus `changes` (`section.key=value`)."""
    config = yaml.safe_load(TINY.read_text())
    config["data"]["search_path"] = [str(data)]
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def job_counts(output: str) -> dict[str, int]:
    """The `Job stats` table of a dry run as {rule: count} without `all` (empty when nothing is to be done)."""
    counts, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            inside = True
            continue
        if inside:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                if parts[0] == "total":
                    break
                if parts[0] != "all":  # the target rule: no work
                    counts[parts[0]] = int(parts[1])
    return counts
