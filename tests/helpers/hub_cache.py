"""Build a Hugging Face hub cache by hand (the layout `huggingface_hub` itself writes), so the hub path
of the workflow can be proven offline: `<HF_HOME>/hub/<type>s--<org>--<name>/{snapshots/<commit>, refs/<rev>}`."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Mapping

import pandas as pd
import yaml

# Offline means offline: any hub call would go to a closed port and fail.
NO_HUB = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}


def fake_commit(repo_id: str, revision: str) -> str:
    """A 40-hex commit id, distinct per (repo, revision), like the hub's."""
    return hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()


def cache_snapshot(hf_home: Path, repo_id: str, revision: str, files: Path | Mapping[str, bytes],
                   repo_type: str = "model") -> str:
    """Put `files` (a folder, or {relative path: bytes}) into the cache as `repo_id` at `revision`;
    returns the commit the revision resolves to."""
    storage = Path(hf_home) / "hub" / f"{repo_type}s--{repo_id.replace('/', '--')}"
    commit = fake_commit(repo_id, revision)
    snapshot = storage / "snapshots" / commit
    if isinstance(files, Path):
        shutil.copytree(files, snapshot, dirs_exist_ok=True)
    else:
        for rel, data in files.items():
            (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
            (snapshot / rel).write_bytes(data)
    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)
    return commit


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A table as the bytes of a parquet file, as a dataset repo holds it."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def offline_run(tmp_path: Path, hf_home: Path, config: dict, name: str) -> tuple[Path, Path, dict[str, str]]:
    """What a workflow run from the cache at `hf_home` starts from: `config` written to tmp_path/`name`, an
    empty working directory tmp_path/run, and an environment with the hub unreachable (NO_HUB) and HF_HOME the
    cache (an HF_HUB_CACHE of the caller's, which would take precedence, removed). Returns (configfile, workdir,
    env)."""
    configfile = tmp_path / name
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "run"
    workdir.mkdir()
    env = {**os.environ, **NO_HUB, "HF_HOME": str(hf_home)}
    env.pop("HF_HUB_CACHE", None)
    return configfile, workdir, env
