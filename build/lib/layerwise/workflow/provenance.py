"""What the reproducibility appendix records: config hash, model revisions, versions, hardware, wall time."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    import pandas as pd
# pandas is imported inside the table functions only: every rule script records its job through runlog,
# including the paper rule, whose env (envs/latex.yaml) has no pandas.

PACKAGES = ("torch", "transformers", "numpy", "scipy", "scikit-learn", "pandas", "seaborn",
            "snakemake", "cupy-cuda12x", "umap-learn", "gguf")


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the validated config (defaults filled in), canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict[str, Any]:
    import psutil
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"machine": platform.machine(), "processor": cpu_model(),
            "cpu_count": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "gpu": gpu, "python": platform.python_version(), "system": platform.system()}


# Where each job leaves its record (beside the `benchmark:` files): results/benchmarks/jobs/<rule>/<wildcards>.json
JOB_RECORDS = Path("results/benchmarks/jobs")


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (platform.processor() is empty on most Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def visible_gpus() -> list[dict[str, str]]:
    """Name, memory and driver of each GPU this process may use, from nvidia-smi (no torch needed, so every
    env can answer); [] without an NVIDIA driver. Honours CUDA_VISIBLE_DEVICES as SLURM sets it."""
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version",
                           "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    wanted = None if visible is None else {v.strip() for v in visible.split(",") if v.strip()}
    gpus = []
    for line in done.stdout.strip().splitlines():
        index, name, memory, driver = (field.strip() for field in line.split(",", 3))
        if wanted is None or index in wanted:
            gpus.append({"name": name, "memory": memory, "driver": driver})
    return gpus


def job_hardware() -> dict[str, Any]:
    """What one job ran on: host, CPU model and the cores it may use, GPUs, and its SLURM job id if any."""
    gpus = visible_gpus()
    return {"host": socket.gethostname(), "cpu": cpu_model(), "cpus": len(os.sched_getaffinity(0)),
            "gpu": "; ".join(f"{g['name']} ({g['memory']}, driver {g['driver']})" for g in gpus) or "none",
            "slurm_job_id": os.environ.get("SLURM_JOB_ID", "")}


def record_job(rule: str, wildcards: Mapping[str, str], inputs: Iterable[str] = (), outputs: Iterable[str] = (),
               root: Path | str = JOB_RECORDS) -> Path:
    """Write this job's hardware now and its wall time when the process exits (a crash still records the
    time it ran). One file per job, so a re-run of a job replaces its record. Inputs and outputs let the
    appendix find the critical path."""
    name = "_".join(str(v).replace("/", "_") for v in wildcards.values()) or rule
    path = Path(root) / rule / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"rule": rule, "wildcards": dict(wildcards), **job_hardware(), "inputs": sorted(map(str, inputs)),
              "outputs": sorted(map(str, outputs)), "seconds": None}
    path.write_text(json.dumps(record, indent=1))
    start = time.perf_counter()

    def finish() -> None:
        record["seconds"] = round(time.perf_counter() - start, 3)
        path.write_text(json.dumps(record, indent=1))

    atexit.register(finish)
    return path


def job_table(job_root: Path | str, benchmark_root: Path | str) -> pd.DataFrame:
    """Per rule: how many jobs, the hosts, CPUs and GPUs they ran on, and their summed wall time. Wall time
    and peak memory come from the `benchmark:` files where the rule has them (they include Snakemake's own
    start-up), else from the jobs' records."""
    import pandas as pd

    records = [json.loads(p.read_text()) for p in sorted(Path(job_root).rglob("*.json"))]
    columns = ["rule", "jobs", "host", "cpu", "gpu", "seconds", "max_rss_mb"]
    if not records:
        return pd.DataFrame(columns=columns)
    jobs = pd.DataFrame(records)
    jobs["cpu"] = jobs["cpus"].astype(str) + " x " + jobs["cpu"]

    def distinct(values: pd.Series, shown: int = 3) -> str:
        # A rule spread over many nodes lists a few and counts the rest, so the table fits the page.
        names = sorted(set(map(str, values)))
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        return ", ".join(names[:shown]) + more

    table = jobs.groupby("rule").agg(jobs=("rule", "size"), host=("host", distinct), cpu=("cpu", distinct),
                                     gpu=("gpu", distinct), seconds=("seconds", "sum")).reset_index()
    bench = rule_wall_times(benchmark_root).set_index("rule")
    table["max_rss_mb"] = table["rule"].map(bench["max_rss_mb"]).astype(float)
    from_bench = table["rule"].isin(bench.index)
    table["seconds"] = table["seconds"].where(~from_bench, table["rule"].map(bench["seconds"])).astype(float)
    return table[columns]


def critical_path(job_root: Path | str) -> tuple[float, list[str]]:
    """The longest chain of jobs, each reading what the previous one wrote, by summed wall time: how long the
    run takes with unlimited parallel slots. Returns (seconds, the chain's rules in order)."""
    records = [json.loads(p.read_text()) for p in sorted(Path(job_root).rglob("*.json"))]
    records = [r for r in records if r.get("seconds") is not None]
    producer = {out: i for i, r in enumerate(records) for out in r.get("outputs", [])}

    def parents(record: Mapping[str, Any]) -> set[int]:
        # An input is a recorded output, or a file inside a recorded output directory (activation stores).
        found = set()
        for path in record.get("inputs", []):
            for candidate in [path, *map(str, Path(path).parents)]:
                if candidate in producer:
                    found.add(producer[candidate])
                    break
        return found

    best: dict[int, tuple[float, list[int]]] = {}

    def longest(i: int, visiting: frozenset = frozenset()) -> tuple[float, list[int]]:
        if i not in best:
            chains = [longest(p, visiting | {i}) for p in parents(records[i]) if p not in visiting]
            seconds, chain = max(chains, default=(0.0, []), key=lambda c: c[0])
            best[i] = (seconds + records[i]["seconds"], [*chain, i])
        return best[i]

    if not records:
        return 0.0, []
    seconds, chain = max((longest(i) for i in range(len(records))), key=lambda c: c[0])
    return seconds, [records[i]["rule"] for i in chain]


def rule_wall_times(benchmark_root: Path | str) -> pd.DataFrame:
    """Sum of Snakemake `benchmark:` seconds and max RSS per rule (first path component below the root)."""
    import pandas as pd

    root = Path(benchmark_root)
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        bench = pd.read_csv(tsv, sep="\t")
        rule = tsv.relative_to(root).parts[0]
        rows.append({"rule": rule, "seconds": float(bench["s"].mean()),
                     "max_rss_mb": pd.to_numeric(bench["max_rss"], errors="coerce").max()})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "seconds", "max_rss_mb"])
    df = pd.DataFrame(rows)
    return (df.groupby("rule").agg(jobs=("seconds", "size"), seconds=("seconds", "sum"),
                                   max_rss_mb=("max_rss_mb", "max")).reset_index())


def model_revisions(cards: Iterable[Mapping[str, Any]], dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per card: key, source, id, short revision; with `dtypes` ({registry key: the dtype it ran in},
    `model_dtypes`), a dtype column too (a checkpoint `key@rev` has its model's; a dataset, none)."""
    import pandas as pd

    rows = [{"model": c["key"], "source": c["source"], "id": c["model_id"],
             "revision": _short(c.get("commit") or c["revision"])} for c in cards]
    if dtypes is not None:
        for row in rows:
            row["dtype"] = dtypes.get(row["model"].split("@")[0], "")
    return pd.DataFrame(rows)


def model_dtypes(models: Mapping[str, Mapping[str, Any]], device: str) -> dict[str, str]:
    """The dtype each registry entry runs in on `device` (`models.<key>.dtype`; auto: float32 on CPU,
    bfloat16 on a GPU), for the paper's revisions table."""
    auto = "bfloat16" if str(device).startswith("cuda") else "float32"  # resources.models.resolved_dtype's rule,
    return {key: auto if str(spec.get("dtype", "auto")) == "auto" else str(spec["dtype"])  # without torch here
            for key, spec in models.items()}


def _short(revision: str, keep: int = 12) -> str:
    """Hashes shortened like git does; branch and tag names kept whole."""
    prefix, _, digest = revision.rpartition(":")
    if len(digest) > keep and all(ch in "0123456789abcdef" for ch in digest):
        return f"{prefix}:{digest[:keep]}" if prefix else digest[:keep]
    return revision


_GGUF_QUANT = re.compile(r"\.(Q(\d)_[A-Z0-9_]+|IQ(\d)_[A-Z0-9_]+|F16|BF16|F32)\.gguf$", flags=re.I)


def model_full_name(name: str, card: Mapping[str, Any]) -> str:
    """`name` (the config's display name) with how the weights reached us, for the paper's text: a
    de-quantised GGUF is not the model its authors trained, and the text must say so wherever it is named."""
    gguf = card.get("gguf_file")
    if gguf:
        m = _GGUF_QUANT.search(str(gguf))
        if m is None:
            return f"{name} (from the GGUF file {Path(gguf).name})"
        kind, bits = m.group(1).upper(), m.group(2) or m.group(3)
        return f"{name}, de-quantised from a {bits}-bit {kind} GGUF" if bits else f"{name} (from a {kind} GGUF)"
    if card["source"] == "random":
        return f"{name} (random weights, seed {card.get('spec', {}).get('seed', 0)})"
    return name


def main_model_names(cards: Iterable[Mapping[str, Any]], models: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The macros the text names its models by: `ModelSmolName` for the first decoder and `ModelMiniName` for
    the first encoder in the registry's order (`models`: config 'models'; the default config's SmolLM2 and
    MiniLM), each also as `...Short` (the display name alone). Names come from the config, not the cards,
    so renaming a model redraws the text, not the model."""
    by_key = {c["key"]: c for c in cards}
    used = [k for k in models if k in by_key]
    out: dict[str, str] = {}
    for macro, kind in (("ModelSmol", "decoder"), ("ModelMini", "encoder")):
        key = next((k for k in used if _kind(models[k]) == kind), None)
        if key is None:
            out[f"{macro}Name"] = out[f"{macro}Short"] = f"(no {kind} in this run)"
            continue
        name = models[key].get("display", key)
        out[f"{macro}Name"], out[f"{macro}Short"] = model_full_name(name, by_key[key]), name
    return out


_ENCODER_ARCHITECTURES = ("bert", "roberta", "albert", "distilbert", "deberta-v2", "electra", "modernbert")


def _kind(spec: Mapping[str, Any]) -> str:
    """Declared kind, else the architecture's (random models), else a decoder (the registry's hub default)."""
    if "kind" in spec:
        return spec["kind"]
    # the encoder families of layerwise.families (not imported here: it needs torch, the report rules do not)
    return "encoder" if str(spec.get("architecture", "")) in _ENCODER_ARCHITECTURES else "decoder"
