"""Datasets: a registry of entries (a local file/folder or a hub dataset at a revision), normalised
to one table, then sampled.

A dataset becomes a table `text_id, text, label`. Documents (IMDB, AG News) are sampled as whole
texts and truncated to L tokens; a stream (enwik8) is one text, tokenised once and cut into
contiguous chunks of L tokens. Problems with individual texts are counted and reported, never fatal.
Hub datasets come from the standard Hugging Face cache (`HF_HOME`), so a warm cache serves offline.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from layerwise.resources.punctuation import strip_punctuation

log = logging.getLogger(__name__)

SOURCES = ("local", "hf")
LAYOUTS = ("documents", "stream")
FORMATS = ("auto", "jsonl", "csv", "parquet", "txt", "ag_news_release")
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet", ".txt": "txt",
                   ".xml": "txt", "": "txt"}
_NAME_RE = re.compile(r"^[a-z0-9_]+$")

#: The built-in registry (also written out in config.yaml, where a user edits or extends it).
DEFAULT_DATASETS: dict[str, dict[str, Any]] = {
    "imdb": {"source": "local", "path": ["imdb_test.jsonl.gz", "imdb_test.jsonl"], "format": "jsonl",
             "text_column": "text", "label_column": "label", "layout": "documents",
             "hub": {"id": "stanfordnlp/imdb", "revision": "main", "config": "plain_text", "split": "test"}},
    "ag_news": {"source": "local", "path": ["ag_news_test.csv"], "format": "ag_news_release",
                "text_column": "text", "label_column": "label", "layout": "documents",
                "hub": {"id": "fancyzhx/ag_news", "revision": "main", "split": "test"}},
    "enwik8": {"source": "local", "path": ["enwik8_small.xml", "enwik8"], "format": "txt",
               "text_column": "text", "label_column": None, "layout": "stream",
               "hub": {"id": "LTCB/enwik8", "revision": "refs/convert/parquet", "config": "enwik8",
                       "split": "train"}},
}


class DatasetNotFound(FileNotFoundError):
    """Raised with every place that was searched, so the user knows where to put the file."""


class DatasetSpecError(ValueError):
    """A registry entry is malformed; the message names the config key."""


@dataclass(frozen=True)
class HubDataset:
    """A hub dataset repository at a revision; `config`/`split` select its data files."""

    id: str
    revision: str = "main"
    config: str | None = None
    split: str = "train"
    files: str | None = None  # glob over the repository's paths, overriding config/split


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    source: str
    layout: str
    local_files: tuple[str, ...]
    format: str
    text_column: str
    label_column: str | None
    hub: HubDataset | None


def parse_spec(name: str, entry: Mapping[str, Any]) -> DatasetSpec:
    """A registry entry → DatasetSpec, refusing (naming `datasets.<name>`) what could never load."""
    key = f"datasets.{name}"
    if not _NAME_RE.match(name):
        raise DatasetSpecError(f"config '{key}': names are lower-case letters, digits and '_'")
    source, layout = entry.get("source"), entry.get("layout", "documents")
    if source not in SOURCES:
        raise DatasetSpecError(f"config '{key}.source' must be one of {SOURCES}, got {source!r}")
    if layout not in LAYOUTS:
        raise DatasetSpecError(f"config '{key}.layout' must be one of {LAYOUTS}, got {layout!r}")
    fmt = entry.get("format", "auto")
    if fmt not in FORMATS:
        raise DatasetSpecError(f"config '{key}.format' must be one of {FORMATS}, got {fmt!r}")
    paths = entry.get("path", [])
    paths = (paths,) if isinstance(paths, str) else tuple(paths)
    hub_fields = ("id", "revision", "config", "split", "files")
    if source == "hf":
        if "id" not in entry:
            raise DatasetSpecError(f"config '{key}' (hf): missing field 'id'")
        hub = HubDataset(**{f: entry[f] for f in hub_fields if f in entry})
    else:
        if not paths:
            raise DatasetSpecError(f"config '{key}' (local): missing field 'path'")
        hub = HubDataset(**entry["hub"]) if entry.get("hub") else None
    return DatasetSpec(name=name, source=source, layout=layout, local_files=paths, format=fmt,
                       text_column=entry.get("text_column", "text"), label_column=entry.get("label_column"),
                       hub=hub)


def _decode_lines(raw: bytes) -> tuple[list[str], int]:
    """Split bytes into lines, skipping (and counting) lines that are not valid UTF-8."""
    lines, bad = [], 0
    for chunk in raw.splitlines():
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            bad += 1
    return lines, bad


def _raw_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def file_format(path: Path, declared: str = "auto") -> str:
    """The reader of a file: the declared format, else its suffix (after an optional `.gz`)."""
    if declared != "auto":
        return declared
    suffix = _base_suffix(path)
    if suffix not in _SUFFIX_FORMATS:
        raise ValueError(f"cannot tell the format of {path}; set the entry's 'format' to one of {FORMATS[1:]}")
    return _SUFFIX_FORMATS[suffix]


def read_jsonl(path: Path) -> tuple[pd.DataFrame, int]:
    """JSON lines (optionally gzipped); lines that are not UTF-8 are skipped and counted."""
    lines, bad = _decode_lines(_raw_bytes(path))
    return pd.DataFrame([json.loads(line) for line in lines if line.strip()]), bad


def read_csv(path: Path) -> tuple[pd.DataFrame, int]:
    """CSV with a header row (optionally gzipped); lines that are not UTF-8 are skipped and counted."""
    lines, bad = _decode_lines(_raw_bytes(path))
    return pd.read_csv(io.StringIO("\n".join(lines)), keep_default_na=False), bad


def read_parquet(path: Path) -> tuple[pd.DataFrame, int]:
    return pd.read_parquet(path), 0


def read_text(path: Path) -> tuple[pd.DataFrame, int]:
    """A whole file is one text (enwik8 is one stream); undecodable bytes are replaced (and counted)."""
    text = _raw_bytes(path).decode("utf-8", errors="replace")
    return pd.DataFrame({"text": [text]}), text.count("\ufffd")


def read_ag_news_csv(path: Path) -> tuple[pd.DataFrame, int]:
    """AG News release format: class (1-4), title, description; backslash escapes as released."""
    lines, bad = _decode_lines(_raw_bytes(path))
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    texts = [f"{title} {desc}".replace("\\n", " ").replace('\\"', '"').replace("\\", " ")
             for _, title, desc in rows]
    return pd.DataFrame({"text": texts, "label": [int(r[0]) - 1 for r in rows]}), bad


READERS: dict[str, Callable[[Path], tuple[pd.DataFrame, int]]] = {
    "jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet, "txt": read_text,
    "ag_news_release": read_ag_news_csv,
}


def read_files(spec: DatasetSpec, files: Sequence[Path]) -> tuple[pd.DataFrame, int]:
    """Read and concatenate data files into `text, label` (label -1 without a label column)."""
    frames, bad = [], 0
    for path in files:
        frame, n_bad = READERS[file_format(path, spec.format)](path)
        frames.append(frame)
        bad += n_bad
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    missing = [c for c in (spec.text_column, spec.label_column) if c is not None and c not in df.columns]
    if missing:
        raise DatasetSpecError(f"config 'datasets.{spec.name}': column(s) {missing} not in {[str(f) for f in files]} "
                               f"(columns: {list(df.columns)}); set text_column / label_column")
    labels = df[spec.label_column] if spec.label_column else pd.Series(-1, index=df.index)
    if not pd.api.types.is_integer_dtype(labels):
        labels = pd.Series(pd.factorize(labels, sort=True)[0], index=df.index)  # string classes → 0..k-1
    out = pd.DataFrame({"text": df[spec.text_column].astype(str), "label": labels.astype(np.int64)})
    if spec.layout == "stream":  # one text: rows (files, lines, parquet rows) joined in order
        out = pd.DataFrame({"text": ["\n".join(out["text"])], "label": [-1]})
    return out, bad


def _base_suffix(path: Path) -> str:
    """`x.jsonl.gz` → `.jsonl`: the suffix that names the format."""
    return Path(path.name[:-3] if path.name.endswith(".gz") else path.name).suffix


def _data_files(folder: Path) -> list[Path]:
    """Data files of a folder (recursively, sorted) in a format a reader knows, optionally gzipped."""
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")
            and _base_suffix(p) in _SUFFIX_FORMATS and _base_suffix(p)]


VARIANTS: dict[str, Callable[[str], str]] = {"nopunct": strip_punctuation}


def get_spec(name: str, registry: Mapping[str, Mapping[str, Any]] | None = None) -> DatasetSpec:
    registry = DEFAULT_DATASETS if registry is None else registry
    if name not in registry:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(registry)}")
    return parse_spec(name, registry[name])


def split_variant(name: str) -> tuple[str, str | None]:
    """`imdb.nopunct` → ("imdb", "nopunct"): a dataset with a text transformation applied."""
    base, _, variant = name.partition(".")
    if variant and variant not in VARIANTS:
        raise KeyError(f"unknown dataset variant {variant!r} in {name!r}; known: {sorted(VARIANTS)}")
    return base, variant or None


def apply_variant(table: pd.DataFrame, variant: str | None) -> pd.DataFrame:
    """Apply a text transformation to every text (e.g. the probe study's punctuation ablation)."""
    if variant is None:
        return table
    return table.assign(text=table["text"].map(VARIANTS[variant]))


def _candidates(spec: DatasetSpec, search_path: Sequence[str | Path]) -> list[Path]:
    """Where a local entry may live, in lookup order: absolute paths as given, then each search folder
    in turn (the first folder wins) with the entry's names in their order."""
    names = [Path(n).expanduser() for n in spec.local_files]
    return [n for n in names if n.is_absolute()] + [
        Path(f).expanduser() / n for f in search_path for n in names if not n.is_absolute()]


def locate_local(spec: DatasetSpec, search_path: Sequence[str | Path]) -> Path | None:
    """The first existing file or folder of a local entry."""
    return next((p for p in _candidates(spec, search_path) if p.is_file() or p.is_dir()), None)


def load_dataset_table(name: str, search_path: Sequence[str | Path], allow_hub: bool = True,
                       registry: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[pd.DataFrame, dict]:
    """Return (table with text_id, text, label; provenance record). `registry` defaults to the built-ins."""
    spec = get_spec(name, registry)
    path = locate_local(spec, search_path) if spec.source == "local" else None
    if path is not None:
        files = _data_files(path) if path.is_dir() else [path]
        if not files:
            raise DatasetNotFound(f"config 'datasets.{name}': no data files in folder {path.resolve()}")
        df, bad = read_files(spec, files)
        origin = {"origin": "local", "path": str(path.resolve()), "undecodable": bad}
    elif spec.hub is not None and (spec.source == "hf" or allow_hub):
        df, origin = _from_hub(spec, search_path)
    else:
        raise DatasetNotFound(_not_found_message(spec, search_path, hub_error="hub disabled by config"
                                                 if spec.hub else "no hub fallback in the entry"))
    df = df.reset_index(drop=True)
    df.insert(0, "text_id", np.arange(len(df), dtype=np.int64))
    origin.update(dataset=name, layout=spec.layout, n_rows=len(df))
    if origin.get("undecodable"):
        log.warning("%s: %d undecodable line(s)/byte(s) skipped or replaced", name, origin["undecodable"])
    return df, origin


def hub_files(root: Path, hub: HubDataset) -> list[Path]:
    """The data files of a hub snapshot that belong to the entry's config and split.

    Hub layouts differ (`plain_text/test-00000-of-00001.parquet`, `data/test-*.parquet`,
    `enwik8/train/0000.parquet`): a file belongs to the split when a folder is named after it or its
    file name starts with it; `config`, when given, must be the first folder.
    """
    chosen = []
    for path in _data_files(root):
        rel = path.relative_to(root).as_posix()
        if hub.files is not None:
            if fnmatch.fnmatch(rel, hub.files):
                chosen.append(path)
            continue
        parts = rel.split("/")
        if hub.config and (len(parts) < 2 or parts[0] != hub.config):
            continue
        stem_tokens = re.split(r"[-_.]", parts[-1])
        if hub.split in parts[:-1] or stem_tokens[0] == hub.split or hub.split in stem_tokens[1:2]:
            chosen.append(path)
    return chosen


def _from_hub(spec: DatasetSpec, search_path: Sequence[str | Path]) -> tuple[pd.DataFrame, dict]:
    """Snapshot the dataset repository at its revision into the standard HF cache (or find it there
    when `HF_HUB_OFFLINE=1`), then read its files with the same readers as local data."""
    hub = spec.hub
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(hub.id, repo_type="dataset", revision=hub.revision,
                                        allow_patterns=[hub.files] if hub.files else None))
    except Exception as err:  # any network / cache failure becomes one clear message
        raise DatasetNotFound(_not_found_message(spec, search_path, hub_error=f"{type(err).__name__}: {err}"[:400])
                              ) from err
    files = hub_files(folder, hub)
    if not files:
        raise DatasetNotFound(f"config 'datasets.{spec.name}': no data files for config {hub.config!r} split "
                              f"{hub.split!r} in {hub.id}@{hub.revision} ({folder}); set 'files' to a glob")
    df, bad = read_files(spec, files)
    return df, {"origin": "hub", "hub_id": hub.id, "revision": hub.revision, "commit": folder.name,
                "config": hub.config, "split": hub.split, "files": [f.relative_to(folder).as_posix() for f in files],
                "undecodable": bad}


def check_hub_cache(spec: DatasetSpec) -> None:
    """Offline, refuse (before any job runs) a hub dataset whose revision is not in the local cache."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(spec.hub.id, repo_type="dataset", revision=spec.hub.revision, local_files_only=True)
    except Exception as err:  # LocalEntryNotFoundError and friends: the cache cannot serve this revision
        raise DatasetNotFound(_not_found_message(spec, [], "HF_HUB_OFFLINE is set and the revision is not in "
                                                           "the local cache")) from err


def _not_found_message(spec: DatasetSpec, search_path: Sequence[str | Path], hub_error: str) -> str:
    looked = [str(p.resolve()) for p in _candidates(spec, search_path)]
    where = f"Looked locally for: {looked or '(empty search path)'}; " if spec.source == "local" else ""
    hub = (f"hub {spec.hub.id!r} revision {spec.hub.revision!r} split {spec.hub.split!r}: {hub_error}. "
           f"Two ways out: point the entry at a copy on disk (`source: local`, `path: ...`), or warm the "
           f"Hugging Face cache (HF_HOME) on a machine with network: "
           f"`hf download {spec.hub.id} --repo-type dataset --revision {spec.hub.revision}`"
           if spec.hub else hub_error)
    return f"config 'datasets.{spec.name}': dataset {spec.name!r} not found. {where}{hub}"


# --------------------------------------------------------------------------- sampling


@dataclass
class Sample:
    """Token sequences ready for the model, with where each came from and what was dropped."""

    input_ids: list[list[int]]
    text_ids: list[int]
    report: dict[str, Any] = field(default_factory=dict)


def sample_inputs(table: pd.DataFrame, layout: str, tokenizer, *, n: int, max_tokens: int,
                  seed: int, min_tokens: int = 2) -> Sample:
    """Seeded sample of `n` token sequences of at most `max_tokens` tokens (special tokens included)."""
    if n <= 0:
        raise ValueError(f"n_texts must be positive, got {n}")
    if max_tokens < max(min_tokens, 1):
        raise ValueError(f"max_tokens ({max_tokens}) must be at least min_tokens ({min_tokens})")
    limit = _context_limit(tokenizer)
    if limit is not None and max_tokens > limit:
        raise ValueError(f"max_tokens={max_tokens} exceeds the model's context of {limit} tokens")
    rng = np.random.default_rng(seed)
    if layout == "stream":
        return _sample_stream(table, tokenizer, n, max_tokens, rng)
    return _sample_documents(table, tokenizer, n, max_tokens, min_tokens, rng)


def _context_limit(tokenizer) -> int | None:
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit is not None and limit < 1_000_000 else None


def _sample_documents(table: pd.DataFrame, tokenizer, n: int, max_tokens: int, min_tokens: int,
                      rng: np.random.Generator) -> Sample:
    order = rng.permutation(len(table))
    ids, text_ids = [], []
    empty = too_short = shorter_than_l = 0
    # Tokenise in slices of the seeded order until n usable texts are found.
    for start in range(0, len(order), max(4 * n, 256)):
        rows = table.iloc[order[start:start + max(4 * n, 256)]]
        for text_id, text in zip(rows["text_id"], rows["text"]):
            if not isinstance(text, str) or not text.strip():
                empty += 1
                continue
            enc = tokenizer(text, truncation=True, max_length=max_tokens)["input_ids"]
            if len(enc) < min_tokens:
                too_short += 1
                continue
            shorter_than_l += len(enc) < max_tokens
            ids.append(list(enc))
            text_ids.append(int(text_id))
            if len(ids) == n:
                break
        if len(ids) == n:
            break
    if len(ids) < n:
        raise ValueError(f"only {len(ids)} usable texts (asked for {n}); "
                         f"{empty} empty and {too_short} shorter than {min_tokens} tokens")
    report = {"n_texts": n, "dropped_empty": empty, "dropped_too_short": too_short,
              "shorter_than_max_tokens": int(shorter_than_l), "n_tokens": int(sum(map(len, ids)))}
    if empty or too_short:
        log.warning("dropped %d empty and %d too-short texts", empty, too_short)
    return Sample(ids, text_ids, report)


def special_affixes(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after one sequence (e.g. [CLS] … [SEP]).

    transformers 5 fast tokenizers no longer expose `build_inputs_with_special_tokens`, so the
    affixes are read off the encoding of a probe text with and without special tokens.
    """
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(plain) + 1):
        if full[k:k + len(plain)] == plain:
            return list(full[:k]), list(full[k + len(plain):])
    raise ValueError(f"cannot locate the special tokens of {type(tokenizer).__name__}: {full} vs {plain}")


def _sample_stream(table: pd.DataFrame, tokenizer, n: int, max_tokens: int,
                   rng: np.random.Generator) -> Sample:
    """Contiguous, non-overlapping chunks; special tokens (e.g. [CLS]/[SEP]) fit inside L."""
    text = "".join(table["text"])
    prefix, suffix = special_affixes(tokenizer)
    body = max_tokens - len(prefix) - len(suffix)
    if body < 1:
        raise ValueError(f"max_tokens={max_tokens} leaves no room next to {len(prefix) + len(suffix)} special tokens")
    # verbose=False: the tokenizer would warn that the stream is longer than the model's context ("indexing
    # errors"); it is cut into chunks of `max_tokens` below, so the warning is known to be harmless here.
    stream = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    n_chunks = len(stream) // body
    if n_chunks < n:
        raise ValueError(f"stream has {len(stream)} tokens = {n_chunks} chunks of {body}; asked for {n}")
    chosen = np.sort(rng.choice(n_chunks, size=n, replace=False))
    ids = [prefix + list(stream[c * body:(c + 1) * body]) + suffix for c in chosen]
    report = {"n_texts": n, "dropped_empty": 0, "dropped_too_short": 0, "shorter_than_max_tokens": 0,
              "n_tokens": int(sum(map(len, ids))), "stream_tokens": len(stream), "n_chunks_available": n_chunks}
    return Sample(ids, [int(c) for c in chosen], report)
