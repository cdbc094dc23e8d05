"""Config problems that can be known when the workflow is parsed, refused then, naming the key.

On a cluster a job that fails for a config reason has already waited in the queue and holds a slot; a missing
local model or dataset is known before any job is submitted. (A lens model without an LM head is refused by
the lens rules' own parse-time check.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from layerwise.data import get_spec, locate_local, split_variant


def used_datasets(config: Mapping[str, Any]) -> dict[str, str]:
    """Every dataset a study section names (`<section>.dataset`, `<section>.transfer_dataset`, …) → its key."""
    found = {}
    for section, values in config.items():
        if isinstance(values, Mapping):
            for key, value in values.items():
                if key.endswith("dataset") and isinstance(value, str):
                    found.setdefault(value, f"{section}.{key}")
    return found


def missing_local_models(models: Mapping[str, Mapping[str, Any]], used: Iterable[str]) -> list[str]:
    """`models.<key>.path` of each used local model whose path does not exist (relative to the working dir)."""
    return [f"models.{key}.path = {models[key]['path']!r} does not exist"
            for key in sorted(used) if models[key].get("source") == "local"
            and not Path(models[key]["path"]).expanduser().exists()]


def missing_datasets(config: Mapping[str, Any]) -> list[str]:
    """With the hub disabled, each used dataset must be in `data.search_path`."""
    if config["data"]["allow_hub"]:
        return []
    search_path = config["data"]["search_path"]
    registry = config.get("datasets") or None  # the workflow's registry (built-ins merged in), else the built-ins
    problems = []
    for name, key in sorted(used_datasets(config).items()):
        spec = get_spec(split_variant(name)[0], registry)
        if spec.source == "local" and locate_local(spec, search_path) is None:
            files = ", ".join(spec.local_files)
            problems.append(f"{key} = {name!r}: none of {files} is in data.search_path {list(search_path)} "
                            "and data.allow_hub is false")
    return problems


def preflight(config: Mapping[str, Any], used_models: Iterable[str]) -> None:
    """Raise one ValueError listing every problem found, so a run fails before its first job."""
    problems = missing_local_models(config["models"], used_models) + missing_datasets(config)
    if problems:
        raise ValueError("config refused before any job:\n  " + "\n  ".join(problems))
