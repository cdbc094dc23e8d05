"""Config problems that can be known when the workflow is parsed, refused then, naming the key.

On a cluster a job that fails for a config reason has already waited in the queue and holds a slot; a missing
local model or dataset is known before any job is submitted. (A lens model without an LM head is refused by
the lens rules' own parse-time check.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from layerwise.resources.datasets import _data_files, get_spec, locate_local, read_files, split_variant

# Sections that sample texts from their dataset: (n_texts, max_tokens) keys. Training reads the whole stream.
SAMPLING_SECTIONS = ("norms", "geometry", "lens", "probes")


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
    """Each used local dataset must be in `data.search_path`, unless the hub may serve it (hub allowed and the
    entry has a hub fallback): a user's own corpus with a wrong path is refused whatever `allow_hub` says."""
    search_path = config["data"]["search_path"]
    registry = config.get("datasets") or None  # the workflow's registry (built-ins merged in), else the built-ins
    problems = []
    for name, key in sorted(used_datasets(config).items()):
        spec = get_spec(split_variant(name)[0], registry)
        if spec.source != "local" or locate_local(spec, search_path) is not None:
            continue
        if config["data"]["allow_hub"] and spec.hub is not None:
            continue  # the dataset rule may download it
        why = "data.allow_hub is false" if spec.hub is not None else "the entry has no hub fallback"
        files = ", ".join(spec.local_files)
        problems.append(f"{key} = {name!r}: none of {files} is in data.search_path {list(search_path)} and {why}")
    return problems


def corpus_size(spec, path: Path, cache: Path | None = None) -> tuple[int, int]:
    """(non-empty texts, UTF-8 bytes of text) of a local dataset file or folder. Read once per file version:
    the counts are kept in `cache` keyed by path, size and mtime, so a parse costs nothing after the first."""
    files = _data_files(path) if path.is_dir() else [path]
    stamp = "|".join(f"{f.resolve()}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    known = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    if stamp in known:
        return tuple(known[stamp])  # type: ignore[return-value]
    if not files:
        return 0, 0
    table, _ = read_files(spec, files)
    texts = table["text"].dropna().astype(str)
    size = (int(texts.str.strip().ne("").sum()), int(texts.str.encode("utf-8").str.len().sum()))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({**known, stamp: size}))
    return size


def short_corpora(config: Mapping[str, Any], cache: Path | None = None) -> list[str]:
    """Local corpora that cannot give what a section asks of them, named by file and key: fewer non-empty texts
    than `n_texts` (documents), or fewer bytes than `n_texts` chunks of `max_tokens` - 2 tokens could take
    (stream; a token covers at least one byte, so this never refuses a corpus that would do)."""
    search_path = config["data"]["search_path"]
    registry = config.get("datasets") or None
    problems = []
    for section in SAMPLING_SECTIONS:
        values = config.get(section)
        if not isinstance(values, Mapping) or "dataset" not in values or "n_texts" not in values:
            continue
        name = values["dataset"]
        spec = get_spec(split_variant(name)[0], registry)
        path = locate_local(spec, search_path) if spec.source == "local" else None
        if path is None:
            continue
        texts, n_bytes = corpus_size(spec, path, cache)
        n, length = int(values["n_texts"]), int(values.get("max_tokens", 2))
        if spec.layout == "documents" and texts < n:
            problems.append(f"{section}.n_texts = {n}: dataset {name!r} ({path}) has only {texts} non-empty texts")
        elif spec.layout == "stream" and n_bytes < n * max(length - 2, 1):
            problems.append(f"{section}.n_texts = {n} chunks of {section}.max_tokens = {length}: dataset {name!r} "
                            f"({path}) has only {n_bytes} bytes of text")
    return problems


def unknown_lens_texts(config: Mapping[str, Any], available: Iterable[str]) -> list[str]:
    """The paper's lens examples (``lens.paper_example``, ``lens.paper_more_examples``) that name no known text."""
    lens, known = config.get("lens") or {}, sorted(available)
    named = [("lens.paper_example", lens.get("paper_example"))]
    named += [("lens.paper_more_examples", name) for name in lens.get("paper_more_examples") or []]
    return [f"{key} = {name!r}: no example text of that name (known: {', '.join(known) or 'none'}; add a file "
            f"{name}.txt to lens.examples_dir or an entry lens.texts.{name})"
            for key, name in named if name is not None and name not in known]


def preflight(config: Mapping[str, Any], used_models: Iterable[str], cache: Path | None = None,
              lens_texts: Iterable[str] | None = None) -> None:
    """Raise one ValueError listing every problem found, so a run fails before its first job. ``lens_texts``:
    the names of the lens's example texts (the examples folder and ``lens.texts``), when the lens runs."""
    problems = missing_local_models(config["models"], used_models) + missing_datasets(config)
    problems += short_corpora(config, cache)
    if lens_texts is not None:
        problems += unknown_lens_texts(config, lens_texts)
    if problems:
        raise ValueError("config refused before any job:\n  " + "\n  ".join(problems))
