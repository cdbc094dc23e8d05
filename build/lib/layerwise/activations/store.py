"""ActivationStore: one `.npy` per layer, a token table, and a manifest written last.

Layer arrays are filled incrementally, row ranges written straight into each `.npy` file, so
extraction never holds the whole store in memory; readers get memory maps. The manifest carries
sizes and checksums; a store without a manifest, or whose files do not match it, is refused rather
than silently read.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
from numpy.lib.format import open_memmap

MANIFEST = "manifest.json"
TOKENS = "tokens.parquet"
FINAL_NORM = "final_norm"


class CorruptStore(RuntimeError):
    """A store that is incomplete, truncated or altered since it was written."""


def layer_name(layer: int | str) -> str:
    return f"layer_{layer:03d}" if isinstance(layer, (int, np.integer)) else str(layer)


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class StoreWriter:
    """Preallocate `[n_tokens, width]` `.npy` files per layer and fill them batch by batch.

    Rows go to the files with `pwrite`, not through writable memory maps: a memory map takes a page
    fault per fresh 4 KiB page and `msync` at the end (0.55 s against 0.17 s for 300 MB of SmolLM2
    states, measured), and closing the file is what makes the data visible on a network file system.
    """

    def __init__(self, root: Path | str, layers: list[int | str], n_tokens: int, width: int, dtype: str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        if (self.root / MANIFEST).exists():
            (self.root / MANIFEST).unlink()  # an old manifest must never vouch for new files
        self.dtype = np.dtype(dtype)
        self.n_tokens, self.width = n_tokens, width
        self.row_bytes = width * self.dtype.itemsize
        self.paths = {layer: self.root / f"{layer_name(layer)}.npy" for layer in layers}
        self.files: dict[int | str, tuple[int, int]] = {}  # layer → (descriptor, offset of row 0)
        for layer, path in self.paths.items():
            header = open_memmap(path, mode="w+", dtype=self.dtype, shape=(n_tokens, width))  # header + size
            self.files[layer] = (os.open(path, os.O_WRONLY), header.offset)
            del header
        self.filled = np.zeros(n_tokens, dtype=bool)  # rows written in every layer

    def _write_rows(self, layer: int | str, start: int, rows: np.ndarray) -> None:
        fd, offset = self.files[layer]
        data = memoryview(np.ascontiguousarray(rows, dtype=self.dtype)).cast("B")
        position = offset + start * self.row_bytes
        while data:  # pwrite may write less than asked
            written = os.pwrite(fd, data, position)
            data, position = data[written:], position + written

    def write(self, start: int, per_layer: dict[int | str, np.ndarray]) -> None:
        """Write rows `start:start+len` of every layer (texts may arrive in any order)."""
        if set(per_layer) != set(self.files):
            raise ValueError(f"write must cover layers {sorted(map(str, self.files))}, got {sorted(map(str, per_layer))}")
        rows = next(iter(per_layer.values())).shape[0]
        if start < 0 or start + rows > self.n_tokens:
            raise ValueError(f"rows {start}:{start + rows} outside a store of {self.n_tokens} tokens")
        for layer, arr in per_layer.items():
            if arr.shape != (rows, self.width):
                raise ValueError(f"layer {layer}: expected shape {(rows, self.width)}, got {arr.shape}")
        for layer, arr in per_layer.items():
            self._write_rows(layer, start, arr)
        self.filled[start:start + rows] = True

    def write_block(self, block: np.ndarray, segments: list[tuple[int, int]]) -> None:
        """Write a padded batch laid out `[layer, sequence, position, width]` (layers in the writer's
        order): sequence b's first `length` positions go to rows `start:start+length`, where
        `segments[b] = (start, length)`."""
        if block.shape[0] != len(self.files) or block.shape[1] != len(segments) or block.shape[3] != self.width:
            raise ValueError(f"block of shape {block.shape} for {len(segments)} sequences, {len(self.files)} layers "
                             f"of width {self.width}")
        for b, (start, length) in enumerate(segments):
            if start < 0 or start + length > self.n_tokens or length > block.shape[2]:
                raise ValueError(f"rows {start}:{start + length} outside a store of {self.n_tokens} tokens "
                                 f"or a batch of {block.shape[2]} positions")
            for k, layer in enumerate(self.files):
                self._write_rows(layer, start, block[k, b, :length])
            self.filled[start:start + length] = True

    def close(self) -> None:
        """Close the layer files (idempotent); `finish` does it, an aborted extraction may."""
        for fd, _ in self.files.values():
            os.close(fd)
        self.files.clear()

    def finish(self, tokens: pd.DataFrame, manifest: dict[str, Any]) -> dict[str, Any]:
        """Close the layer files, write the token table, then (last) the manifest with checksums."""
        if not self.filled.all():
            raise ValueError(f"store incomplete: {int((~self.filled).sum())} of {self.n_tokens} rows never written")
        if len(tokens) != self.n_tokens:
            raise ValueError(f"token table has {len(tokens)} rows for {self.n_tokens} vectors")
        self.close()
        tokens.to_parquet(self.root / TOKENS, index=False)
        paths = [*self.paths.values(), self.root / TOKENS]
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # hashlib releases the GIL
            digests = list(pool.map(file_sha256, paths))
        files = {p.name: {"bytes": p.stat().st_size, "sha256": d} for p, d in zip(paths, digests)}
        manifest = dict(manifest, n_tokens=self.n_tokens, width=self.width, dtype=self.dtype.name, files=files)
        tmp = self.root / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        tmp.replace(self.root / MANIFEST)
        return manifest


@dataclass
class ActivationStore:
    """Read side. `layer(i)` returns a read-only memmap; `verify()` checks sizes (and hashes)."""

    root: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, root: Path | str, verify: str = "size") -> "ActivationStore":
        root = Path(root)
        if not (root / MANIFEST).exists():
            raise CorruptStore(f"{root}: no {MANIFEST}; the store is incomplete (extraction interrupted?)")
        store = cls(root, json.loads((root / MANIFEST).read_text()))
        store.verify(verify)
        return store

    def verify(self, level: str = "size") -> None:
        """`size` is cheap and catches truncation; `sha256` also catches edits."""
        if level not in ("none", "size", "sha256"):
            raise ValueError(f"verify must be none/size/sha256, got {level!r}")
        if level == "none":
            return
        for name, meta in self.manifest["files"].items():
            path = self.root / name
            if not path.exists():
                raise CorruptStore(f"{path} is missing")
            if path.stat().st_size != meta["bytes"]:
                raise CorruptStore(f"{path}: {path.stat().st_size} bytes, manifest says {meta['bytes']}")
            if level == "sha256" and file_sha256(path) != meta["sha256"]:
                raise CorruptStore(f"{path}: checksum differs from the manifest")

    @property
    def layers(self) -> list[int]:
        """Residual-stream layers 0..n (0 = input embeddings), pre-final-norm."""
        return list(range(self.manifest["model"]["n_layers"] + 1))

    @property
    def tokens(self) -> pd.DataFrame:
        return pd.read_parquet(self.root / TOKENS)

    def layer(self, layer: int | str) -> np.ndarray:
        return np.load(self.root / f"{layer_name(layer)}.npy", mmap_mode="r", allow_pickle=False)

    def position_mask(self, include_position0: bool) -> np.ndarray:
        """Rows to analyse: position 0 (BOS/[CLS]/attention sink) is excluded unless asked for."""
        pos = self.tokens["position"].to_numpy()
        return np.ones(len(pos), bool) if include_position0 else pos > 0

    def iter_layers(self, include_final_norm: bool = False) -> Iterator[tuple[int | str, np.ndarray]]:
        for layer in self.layers:
            yield layer, self.layer(layer)
        if include_final_norm and self.manifest.get("has_final_norm"):
            yield FINAL_NORM, self.layer(FINAL_NORM)


def slice_store(source: ActivationStore, out_dir: Path | str, *, n_texts: int, max_tokens: int,
                manifest: dict[str, Any], chunk_rows: int = 4096) -> dict[str, Any]:
    """Write the store of the first `n_texts` texts truncated to `max_tokens` positions, cut from a
    larger store of the same model and sampling order (valid for causal decoders only: the caller
    checks the model kind and that the token ids equal those a direct sampling would give).

    The rows keep the store order (text by text, position by position); values are copied bit for bit.
    """
    tokens = source.tokens
    keep = (tokens["text_index"].to_numpy() < n_texts) & (tokens["position"].to_numpy() < max_tokens)
    if tokens["text_index"].max() + 1 < n_texts:
        raise ValueError(f"{source.root} holds {tokens['text_index'].max() + 1} texts, fewer than {n_texts}")
    rows = np.flatnonzero(keep)
    layers: list[int | str] = list(source.layers) + ([FINAL_NORM] if source.manifest.get("has_final_norm") else [])
    arrays = {layer: source.layer(layer) for layer in layers}
    writer = StoreWriter(out_dir, layers, len(rows), int(source.manifest["width"]), source.manifest["dtype"])
    max_abs = 0.0
    for start in range(0, len(rows), chunk_rows):
        chunk = rows[start:start + chunk_rows]
        block = {layer: np.asarray(arr[chunk]) for layer, arr in arrays.items()}
        max_abs = max([max_abs] + [float(np.abs(v).max(initial=0.0)) for v in block.values()])
        writer.write(start, block)
    record = {k: v for k, v in source.manifest.items() if k not in ("files", "n_tokens", "width", "dtype")}
    record.update(manifest, n_texts=n_texts, max_abs_activation=max_abs,
                  sliced_from={"store": str(source.root), "n_texts": int(tokens["text_index"].max() + 1),
                               "n_tokens": int(source.manifest["n_tokens"])})
    return writer.finish(tokens[keep].reset_index(drop=True), record)
