"""Datasets: find them (local search path first, then the hub), normalise them, sample them.

A dataset becomes a table `text_id, text, label`. Documents (IMDB, AG News) are sampled as whole
texts and truncated to L tokens; a stream (enwik8) is tokenised once and cut into contiguous
chunks of L tokens. Problems with individual texts are counted and reported, never fatal.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from layerwise.punctuation import strip_punctuation

log = logging.getLogger(__name__)


class DatasetNotFound(FileNotFoundError):
    """Raised with every place that was searched, so the user knows where to put the file."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    layout: str  # "documents" or "stream"
    local_files: tuple[str, ...]
    reader: Callable[[Path], tuple[pd.DataFrame, int]]
    hub_id: str
    hub_split: str


def _decode_lines(raw: bytes) -> tuple[list[str], int]:
    """Split bytes into lines, skipping (and counting) lines that are not valid UTF-8."""
    lines, bad = [], 0
    for chunk in raw.splitlines():
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            bad += 1
    return lines, bad


def read_imdb_jsonl(path: Path) -> tuple[pd.DataFrame, int]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    lines, bad = _decode_lines(raw)
    rows = [json.loads(line) for line in lines if line.strip()]
    df = pd.DataFrame({"text": [r["text"] for r in rows], "label": [int(r["label"]) for r in rows]})
    return df, bad


def read_ag_news_csv(path: Path) -> tuple[pd.DataFrame, int]:
    """AG News release format: class (1-4), title, description; backslash escapes as released."""
    lines, bad = _decode_lines(path.read_bytes())
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    texts = [f"{title} {desc}".replace("\\n", " ").replace('\\"', '"').replace("\\", " ")
             for _, title, desc in rows]
    return pd.DataFrame({"text": texts, "label": [int(r[0]) - 1 for r in rows]}), bad


def read_enwik8(path: Path) -> tuple[pd.DataFrame, int]:
    """The whole file is one stream; undecodable bytes are replaced (and counted)."""
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    return pd.DataFrame({"text": [text], "label": [-1]}), bad


DATASETS: dict[str, DatasetSpec] = {
    "imdb": DatasetSpec("imdb", "documents", ("imdb_test.jsonl.gz", "imdb_test.jsonl"), read_imdb_jsonl,
                        "stanfordnlp/imdb", "test"),
    "ag_news": DatasetSpec("ag_news", "documents", ("ag_news_test.csv",), read_ag_news_csv,
                           "fancyzhx/ag_news", "test"),
    "enwik8": DatasetSpec("enwik8", "stream", ("enwik8_small.xml", "enwik8"), read_enwik8,
                          "LTCB/enwik8", "train"),
}


VARIANTS: dict[str, Callable[[str], str]] = {"nopunct": strip_punctuation}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return DATASETS[name]


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


def locate_local(name: str, search_path: Sequence[str | Path]) -> Path | None:
    spec = get_spec(name)
    for folder in search_path:
        for fname in spec.local_files:
            candidate = Path(folder).expanduser() / fname
            if candidate.is_file():
                return candidate
    return None


def load_dataset_table(name: str, search_path: Sequence[str | Path], allow_hub: bool = True) -> tuple[pd.DataFrame, dict]:
    """Return (table with text_id, text, label; provenance record)."""
    spec = get_spec(name)
    path = locate_local(name, search_path)
    if path is not None:
        df, bad = spec.reader(path)
        origin = {"origin": "local", "path": str(path.resolve()), "undecodable": bad}
    elif allow_hub:
        df, origin = _from_hub(spec, search_path)
    else:
        raise DatasetNotFound(_not_found_message(spec, search_path, hub_error="hub disabled by config"))
    df = df.reset_index(drop=True)
    df.insert(0, "text_id", np.arange(len(df), dtype=np.int64))
    origin.update(dataset=name, layout=spec.layout, n_rows=len(df))
    if origin.get("undecodable"):
        log.warning("%s: %d undecodable line(s)/byte(s) skipped or replaced", name, origin["undecodable"])
    return df, origin


def _from_hub(spec: DatasetSpec, search_path: Sequence[str | Path]) -> tuple[pd.DataFrame, dict]:
    try:
        import datasets

        ds = datasets.load_dataset(spec.hub_id, split=spec.hub_split)
    except Exception as err:  # any network / hub failure becomes one clear message
        raise DatasetNotFound(_not_found_message(spec, search_path, hub_error=repr(err)[:300])) from err
    if spec.name == "ag_news":
        df = pd.DataFrame({"text": ds["text"], "label": ds["label"]})
    elif spec.name == "enwik8":
        df = pd.DataFrame({"text": ["\n".join(ds["text"])], "label": [-1]})
    else:
        df = pd.DataFrame({"text": ds["text"], "label": ds["label"]})
    return df, {"origin": "hub", "hub_id": spec.hub_id, "split": spec.hub_split,
                "fingerprint": getattr(ds, "_fingerprint", None), "undecodable": 0}


def _not_found_message(spec: DatasetSpec, search_path: Sequence[str | Path], hub_error: str) -> str:
    looked = [str(Path(f).expanduser().resolve() / n) for f in search_path for n in spec.local_files]
    return (f"dataset {spec.name!r} not found. Looked locally for: {looked or '(empty search path)'}; "
            f"hub {spec.hub_id!r} split {spec.hub_split!r}: {hub_error}")


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
    stream = tokenizer(text, add_special_tokens=False)["input_ids"]
    n_chunks = len(stream) // body
    if n_chunks < n:
        raise ValueError(f"stream has {len(stream)} tokens = {n_chunks} chunks of {body}; asked for {n}")
    chosen = np.sort(rng.choice(n_chunks, size=n, replace=False))
    ids = [prefix + list(stream[c * body:(c + 1) * body]) + suffix for c in chosen]
    report = {"n_texts": n, "dropped_empty": 0, "dropped_too_short": 0, "shorter_than_max_tokens": 0,
              "n_tokens": int(sum(map(len, ids))), "stream_tokens": len(stream), "n_chunks_available": n_chunks}
    return Sample(ids, [int(c) for c in chosen], report)
