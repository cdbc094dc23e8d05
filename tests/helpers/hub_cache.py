"""Build a Hugging Face hub cache by hand (the layout `huggingface_hub` itself writes), so the hub path
of the workflow can be proven offline: `<HF_HOME>/hub/<type>s--<org>--<name>/{snapshots/<commit>, refs/<rev>}`."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Mapping


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
