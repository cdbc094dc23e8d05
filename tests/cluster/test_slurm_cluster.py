"""A real SLURM run: part of the tiny config goes through `--profile profiles/slurm` on a live single-node
SLURM (tests/cluster/slurm_node.py); the executor plugin submits with sbatch and polls with squeue. Runs where
SLURM is installed or installable (root with apt-get, as in CI); skipped with the reason elsewhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.slurm_node import PARTITION, install_with_apt, single_node_slurm
from tests.helpers import REAL_PATH, REPO
from tests.helpers.workflow_runs import OFFLINE, snakemake_command, tiny_config

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# The norms figure of the tiny config for one model: downloads and the figure are localrules, extraction asks
# for a GPU, the norm table is a plain CPU job: every kind of job in five jobs.
TARGETS = ("results/figures/norms.pdf", "results/macros/norms.tex")
MODEL = "tiny-gpt2"
CLUSTER_RULES = {"extract": 1, "norm_table": 1}
LOCAL_RULES = {"dataset", "model", "norm_figure"}
GPU_RULES = {"extract"}


def shrunk_profile(dest: Path) -> Path:
    """profiles/slurm with its sizes shrunk to the test node (2 CPUs, one stand-in GPU) and the test partition;
    every request the profile makes (gpu, cpus_per_gpu, mem_mb, runtime) is kept as a key."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    for resources in [profile["default-resources"], *profile["set-resources"].values()]:
        resources["slurm_partition"] = PARTITION
        resources["mem_mb"] = min(int(resources["mem_mb"]), 1500)
        if "cpus_per_gpu" in resources:
            resources["cpus_per_gpu"] = 1
    profile.update({
        "jobs": 4, "latency-wait": 5, "seconds-between-status-checks": 2,
        "slurm-init-seconds-before-status-checks": 2,
        # No slurmdbd here: sacct would answer "accounting storage is disabled" and lose the jobs.
        "slurm-status-command": "squeue",
        "slurm-no-account": True,
        "slurm-keep-successful-logs": True,
    })
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile))
    return dest


def slurm_jobs(env: dict) -> list[dict[str, str]]:
    """Every job the controller knows (MinJobAge keeps finished ones), as `scontrol show job -o` fields."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, env=env, check=True).stdout
    jobs = []
    for line in out.splitlines():
        if line.strip():
            # Values have no spaces except Command/WorkDir paths, which we do not read.
            jobs.append(dict(field.split("=", 1) for field in line.split() if "=" in field))
    return jobs


def run(workdir: Path, config: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    # A bounded wait: a job whose status Snakemake cannot query would otherwise hold the suite forever.
    done = subprocess.run(snakemake_command(workdir, config, *args, *TARGETS), capture_output=True, text=True,
                          env=env, cwd=workdir, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    return done


def test_slurm_jobs_equal_a_local_run(tmp_path, shared_data):
    if reason := install_with_apt():
        pytest.skip(f"no live SLURM: {reason}")
    # A job asking more CPUs (`threads`) than the one node has would pend forever (PartitionConfig): the
    # rules' threads follow config `threads`, set here to the node's CPUs (a real cluster keeps the default).
    config = tiny_config(tmp_path, shared_data, **{"norms.models": [MODEL], "threads": os.cpu_count()})
    env = dict(OFFLINE, PATH=REAL_PATH)
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    local.mkdir()
    cluster.mkdir()
    run(local, config, "--cores", "2", env=env)

    profile = shrunk_profile(tmp_path / "profile")
    with single_node_slurm(tmp_path / "slurm", base_env=env) as slurm_env:
        done = run(cluster, config, "--profile", str(profile), env=slurm_env)
        jobs = slurm_jobs(slurm_env)
    out = done.stdout + done.stderr
    print(f"{len(jobs)} jobs submitted with sbatch:", *(f"{j['JobId']} {j['Comment']} {j['JobState']}" for j in jobs),
          sep="\n  ")

    # Every cluster job ran as a SLURM job and finished; none of the localrules did.
    ran = [re.match(r"rule_(\w+?)_wildcards", j["Comment"]).group(1) for j in jobs]
    assert sorted(ran) == sorted(r for r, n in CLUSTER_RULES.items() for _ in range(n)), ran
    assert {j["JobState"] for j in jobs} == {"COMPLETED"}, jobs
    assert all(j["Partition"] == PARTITION for j in jobs)
    # GPU rules were submitted with a GPU request, the others without.
    for rule, job in zip(ran, jobs):
        assert (job.get("TresPerJob") == "gres:gpu:1") == (rule in GPU_RULES), (rule, job)
    # Each job's log (kept by the profile) carries its SLURM job id; Snakemake reports each submission.
    for rule, job in zip(ran, jobs):
        logs = list((cluster / ".snakemake/slurm_logs" / f"rule_{rule}").rglob(f"{job['JobId']}.log"))
        assert len(logs) == 1, (rule, job["JobId"])
        assert f"rule {rule}:" in logs[0].read_text() or f"rule_{rule}" in logs[0].read_text(), logs[0]
    # Each job's own record (results/benchmarks/jobs, for the appendix) and its rule log name that SLURM job.
    for rule, job in zip(ran, jobs):
        records = [json.loads(p.read_text()) for p in (cluster / "results/benchmarks/jobs" / rule).glob("*.json")]
        assert [r["slurm_job_id"] for r in records] == [job["JobId"]], (rule, records)
        assert records[0]["seconds"] is not None and records[0]["host"] == job["BatchHost"]
        logs = list((cluster / "logs").rglob("*.log"))
        assert any(f"'slurm_job_id': '{job['JobId']}'" in p.read_text() for p in logs), rule
    # The localrules ran on the submit host: no SLURM log, their records carry no SLURM job id.
    for rule in LOCAL_RULES:
        assert not (cluster / ".snakemake/slurm_logs" / f"rule_{rule}").exists(), rule
        assert re.search(rf"^localrule {rule}:", out, flags=re.M), rule
        records = [json.loads(p.read_text()) for p in (cluster / "results/benchmarks/jobs" / rule).glob("*.json")]
        assert records and all(r["slurm_job_id"] == "" for r in records), (rule, records)

    # Same bytes as the local run for every result, but the measured times (benchmark files, the extraction
    # manifest's speed), which differ between any two runs.
    def files(root: Path) -> list[Path]:
        return sorted(p.relative_to(root) for p in (root / "results").rglob("*")
                      if p.is_file() and "benchmarks" not in p.parts)

    assert files(local) == files(cluster)
    assert len(files(local)) >= 6
    for path in files(local):
        mine, theirs = (local / path).read_bytes(), (cluster / path).read_bytes()
        if path.name == "manifest.json":
            mine, theirs = (without_timings(json.loads(m)) for m in (mine, theirs))
        assert mine == theirs, path


def without_timings(manifest: dict) -> dict:
    timings = {"extraction_seconds", "tokens_per_second"}
    assert timings <= set(manifest), "the manifest's timing fields changed: update this test"
    return {k: v for k, v in manifest.items() if k not in timings}


def test_no_slurm_daemon_is_left_running():
    """After the module's SLURM stopped, none of its daemons runs (CI checks the machine is clean)."""
    # One name per pgrep: it refuses (matches nothing) a pattern longer than a process name's 15 characters.
    left = [subprocess.run(["pgrep", "-a", "-x", name], capture_output=True, text=True).stdout
            for name in ("munged", "slurmctld", "slurmd")]
    assert not "".join(left).strip(), left
