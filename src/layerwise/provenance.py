"""What the reproducibility appendix records: config hash, model revisions, versions, hardware, wall time."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

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
    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "gpu": gpu, "python": platform.python_version(), "system": platform.system()}


def rule_wall_times(benchmark_root: Path | str) -> pd.DataFrame:
    """Sum of Snakemake `benchmark:` seconds and max RSS per rule (first path component below the root)."""
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


def model_revisions(cards: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": c["key"], "source": c["source"], "id": c["model_id"],
                          "revision": _short(c.get("commit") or c["revision"])} for c in cards])


def _short(revision: str, keep: int = 12) -> str:
    """Hashes shortened like git does; branch and tag names kept whole."""
    prefix, _, digest = revision.rpartition(":")
    if len(digest) > keep and all(ch in "0123456789abcdef" for ch in digest):
        return f"{prefix}:{digest[:keep]}" if prefix else digest[:keep]
    return revision
