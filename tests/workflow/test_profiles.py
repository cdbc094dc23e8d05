"""Cluster execution: the SLURM profile renders GPU requests for the paper-scale config (dry run)."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.helpers import REPO


GPU_RULES = ("extract", "geometry", "probe", "probe_condition", "probe_normalised", "probe_transfer", "probe_stability",
             "lens_example", "lens_dataset", "lens_long", "probe_faithful", "train", "outliers", "outlier_probe")
LOCAL_RULES = {"dataset", "model", "norm_figure", "geometry_figures", "probe_figures", "lens_heatmap", "lens_figures",
               "training_figures", "hub_checkpoint_figures", "provenance", "paper"}


# A dry run prints local and cluster jobs alike, so ask the parsed workflow (pinned Snakemake version).
LIST_LOCAL_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings
with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(snakefile=Path("Snakefile"), resource_settings=ResourceSettings(),
                            config_settings=ConfigSettings(configfiles=[Path(sys.argv[1])]),
                            storage_settings=StorageSettings(), workdir=Path.cwd())._workflow
    print(json.dumps(sorted(workflow._localrules)))
"""


def local_rules(configfile) -> set[str]:
    done = subprocess.run([sys.executable, "-c", LIST_LOCAL_RULES, str(configfile)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_slurm_profile_requests_gpus_for_gpu_rules():
    # --forceall: every job of the published scale, whatever this checkout has already built.
    done = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "--nolock", "--profile",
                           "profiles/slurm", "--configfile", "configs/paper.yaml"], capture_output=True, text=True,
                          cwd=REPO)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, flags=re.M)
    resources = {}
    for rule, res in jobs:
        resources.setdefault(rule, dict(item.split("=", 1) for item in res.split(", ")))
    local = local_rules(REPO / "configs/paper.yaml")
    assert "openai-community" in out or "gpt2-xl" in out  # the published models are in the DAG
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    for rule in GPU_RULES:
        wanted = {k: str(v) for k, v in profile["set-resources"][rule].items()}
        assert wanted["gpu"] == "1" and wanted["slurm_partition"] == "gpu", (rule, wanted)
        assert set(wanted) >= {"gpu", "cpus_per_gpu", "mem_mb", "runtime", "slurm_partition"}, (rule, wanted)
        assert {k: resources[rule].get(k) for k in wanted} == wanted, (rule, resources[rule])
        assert rule not in local
    # Downloads, figures and the paper run on the submit host, not as SLURM jobs.
    assert LOCAL_RULES <= local, LOCAL_RULES - local
    for rule in set(resources) - set(GPU_RULES):
        assert resources[rule].get("gpu", "0") == "0", (rule, resources[rule])


def make_paper_command(**variables: str) -> str:
    """The Snakemake command `make paper` would run here with these make variables (dry run of make): through
    layerwise.workflow.complete_run, which passes its options to Snakemake."""
    done = subprocess.run(["make", "-n", "paper", *(f"{k}={v}" for k, v in variables.items())], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return next(line for line in done.stdout.splitlines() if "layerwise.workflow.complete_run" in line and "--configfile" in line)


def test_make_paper_runs_through_the_local_profile_sized_to_this_machine():
    cpu_only = make_paper_command(GPUS="0")
    assert "--profile profiles/local" in cpu_only
    # No GPU: the GPU rules run on the CPU, capped by the cores only, not one at a time.
    assert f"gpu={os.cpu_count()} " in cpu_only or f"gpu={len(os.sched_getaffinity(0))} " in cpu_only, cpu_only
    assert "gpu=3 " in make_paper_command(GPUS="3")
    mem_mb = int(re.search(r"mem_mb=(\d+)", cpu_only).group(1))
    total_mb = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) // 1024
    assert 0.7 * total_mb < mem_mb < total_mb
