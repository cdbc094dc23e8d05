"""ActivationStore: round trip, manifest written last, corruption detected, no pickles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from layerwise.activations.store import FINAL_NORM, MANIFEST, ActivationStore, CorruptStore, StoreWriter

WIDTH = 6
LENGTHS = [3, 1, 4]  # three texts → 8 token rows


def token_rows(lengths: list[int]) -> pd.DataFrame:
    text_index = np.repeat(np.arange(len(lengths)), lengths)
    position = np.concatenate([np.arange(n) for n in lengths])
    return pd.DataFrame({"text_index": text_index, "text_id": text_index + 100, "position": position,
                         "token_id": np.arange(len(position)), "token": [f"t{i}" for i in range(len(position))]})


def layer_values(rng: np.random.Generator, n_layers: int = 2) -> dict:
    """Random values for layers 0..n_layers and the final norm; float16-exact so round trips compare with ==."""
    n = sum(LENGTHS)
    layers = list(range(n_layers + 1)) + [FINAL_NORM]
    return {layer: rng.standard_normal((n, WIDTH)).astype(np.float16).astype(np.float32) for layer in layers}


def write_store(root, values: dict, dtype: str = "float16", text_order=None) -> dict:
    writer = StoreWriter(root, list(values), sum(LENGTHS), WIDTH, dtype)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)])
    for k in text_order if text_order is not None else range(len(LENGTHS)):
        rows = slice(offsets[k], offsets[k + 1])
        writer.write(int(offsets[k]), {layer: v[rows] for layer, v in values.items()})
    n_layers = len(values) - 2
    return writer.finish(token_rows(LENGTHS), {"model": {"n_layers": n_layers}, "has_final_norm": True})


@pytest.fixture
def values():
    return layer_values(np.random.default_rng(0))


def test_round_trip(tmp_path, values):
    manifest = write_store(tmp_path / "s", values)
    store = ActivationStore.open(tmp_path / "s", verify="sha256")
    assert store.manifest == manifest
    assert manifest["n_tokens"] == 8 and manifest["width"] == WIDTH and manifest["dtype"] == "float16"
    assert store.layers == [0, 1, 2]
    read = dict(store.iter_layers(include_final_norm=True))
    assert list(read) == [0, 1, 2, FINAL_NORM]
    for layer, expected in values.items():
        assert read[layer].dtype == np.float16 and read[layer].shape == (8, WIDTH)
        np.testing.assert_array_equal(read[layer], expected)
    pd.testing.assert_frame_equal(store.tokens, token_rows(LENGTHS))


def test_float32_store_keeps_full_precision(tmp_path):
    rng = np.random.default_rng(1)
    values = {layer: rng.standard_normal((8, WIDTH)).astype(np.float32) for layer in (0, 1, FINAL_NORM)}
    write_store(tmp_path / "s", values, dtype="float32")
    store = ActivationStore.open(tmp_path / "s")
    np.testing.assert_array_equal(store.layer(1), values[1])


def test_write_order_does_not_matter(tmp_path, values):
    write_store(tmp_path / "a", values)
    write_store(tmp_path / "b", values, text_order=[2, 0, 1])
    a, b = ActivationStore.open(tmp_path / "a"), ActivationStore.open(tmp_path / "b")
    for layer, array in a.iter_layers(include_final_norm=True):
        np.testing.assert_array_equal(array, b.layer(layer))
    assert {k: v["sha256"] for k, v in a.manifest["files"].items()} == \
           {k: v["sha256"] for k, v in b.manifest["files"].items()}


def test_short_writes_are_completed(tmp_path, values, monkeypatch):
    """`pwrite` may write fewer bytes than asked: the writer must go on until every byte is there."""
    import os

    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real(fd, bytes(data)[:5], offset))
    write_store(tmp_path / "s", values)
    store = ActivationStore.open(tmp_path / "s", verify="sha256")
    for layer, expected in values.items():
        np.testing.assert_array_equal(store.layer(layer), expected)


def test_values_are_cast_to_the_store_dtype(tmp_path, values):
    """float64 rows written into a float16 store are rounded as numpy's cast rounds them."""
    wide = {layer: v.astype(np.float64) + 1e-4 for layer, v in values.items()}
    write_store(tmp_path / "s", wide)
    store = ActivationStore.open(tmp_path / "s")
    for layer, v in wide.items():
        np.testing.assert_array_equal(store.layer(layer), v.astype(np.float16))


def test_store_without_manifest_is_refused(tmp_path, values):
    write_store(tmp_path / "s", values)
    (tmp_path / "s" / MANIFEST).unlink()
    with pytest.raises(CorruptStore, match="no manifest.json; the store is incomplete"):
        ActivationStore.open(tmp_path / "s")


def test_manifest_is_written_last(tmp_path, values):
    write_store(tmp_path / "s", values)
    files = [p for p in (tmp_path / "s").iterdir()]
    manifest_time = (tmp_path / "s" / MANIFEST).stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= manifest_time for p in files)
    listed = set(json.loads((tmp_path / "s" / MANIFEST).read_text())["files"])
    assert listed == {p.name for p in files} - {MANIFEST}


def test_rewriting_a_store_removes_the_old_manifest_first(tmp_path, values):
    write_store(tmp_path / "s", values)
    writer = StoreWriter(tmp_path / "s", list(values), 8, WIDTH, "float16")
    assert not (tmp_path / "s" / MANIFEST).exists()  # the old manifest cannot vouch for the new files
    writer.write(0, {layer: v[:3] for layer, v in values.items()})
    with pytest.raises(CorruptStore):
        ActivationStore.open(tmp_path / "s")


def test_unfinished_store_cannot_be_finished(tmp_path, values):
    writer = StoreWriter(tmp_path / "s", list(values), 8, WIDTH, "float16")
    # Writing the first text twice has as many rows as the store minus the rest, but rows 4..7 stay empty.
    for _ in range(2):
        writer.write(0, {layer: v[:4] for layer, v in values.items()})
    with pytest.raises(ValueError, match="store incomplete: 4 of 8 rows never written"):
        writer.finish(token_rows(LENGTHS), {"model": {"n_layers": 2}})
    assert not (tmp_path / "s" / MANIFEST).exists()


def test_writes_must_cover_every_layer_with_the_right_shape(tmp_path, values):
    writer = StoreWriter(tmp_path / "s", list(values), 8, WIDTH, "float16")
    with pytest.raises(ValueError, match="write must cover layers"):
        writer.write(0, {0: values[0][:3]})
    with pytest.raises(ValueError, match="outside a store of 8 tokens"):
        writer.write(6, {layer: v[:3] for layer, v in values.items()})
    with pytest.raises(ValueError, match=r"expected shape \(3, 6\)"):
        writer.write(0, {layer: v[:3, :5] for layer, v in values.items()})


def test_truncated_file_is_detected_by_size(tmp_path, values):
    write_store(tmp_path / "s", values)
    path = tmp_path / "s" / "layer_001.npy"
    path.write_bytes(path.read_bytes()[:-WIDTH * 2])
    with pytest.raises(CorruptStore, match="layer_001.npy: .* bytes, manifest says"):
        ActivationStore.open(tmp_path / "s")


def test_edited_file_is_detected_by_checksum(tmp_path, values):
    write_store(tmp_path / "s", values)
    path = tmp_path / "s" / "layer_002.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    ActivationStore.open(tmp_path / "s", verify="size")  # the cheap check cannot see an edit …
    with pytest.raises(CorruptStore, match="layer_002.npy: checksum differs"):
        ActivationStore.open(tmp_path / "s", verify="sha256")  # … the checksum does


def test_missing_file_is_detected(tmp_path, values):
    write_store(tmp_path / "s", values)
    (tmp_path / "s" / "tokens.parquet").unlink()
    with pytest.raises(CorruptStore, match="tokens.parquet is missing"):
        ActivationStore.open(tmp_path / "s")


def test_unknown_verify_level(tmp_path, values):
    write_store(tmp_path / "s", values)
    with pytest.raises(ValueError, match="verify must be none/size/sha256"):
        ActivationStore.open(tmp_path / "s", verify="md5")


def test_pickled_arrays_are_never_loaded(tmp_path, values):
    write_store(tmp_path / "s", values)
    path = tmp_path / "s" / "layer_000.npy"
    np.save(path, np.array([{"not": "numbers"}], dtype=object), allow_pickle=True)
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    manifest["files"]["layer_000.npy"]["bytes"] = path.stat().st_size  # even a manifest that agrees
    (tmp_path / "s" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="allow_pickle|Python objects"):
        ActivationStore.open(tmp_path / "s").layer(0)


@pytest.mark.parametrize("include_position0, expected", [(True, [1] * 8), (False, [0, 1, 1, 0, 0, 1, 1, 1])])
def test_position_mask(tmp_path, values, include_position0, expected):
    write_store(tmp_path / "s", values)
    mask = ActivationStore.open(tmp_path / "s").position_mask(include_position0)
    assert mask.dtype == bool and mask.astype(int).tolist() == expected


# --------------------------------------------------------------------------- planning: slices and memory


def test_decoder_cells_are_sliced_from_one_covering_store_encoders_never():
    from layerwise.activations.plan import Cell, declared_kind, slice_sources

    kinds = {"dec": declared_kind({"source": "random", "architecture": "llama"}),
             "enc": declared_kind({"source": "random", "architecture": "bert"}),
             "unknown": declared_kind({"source": "pypi", "package": "x==1", "path": "m"})}
    assert kinds == {"dec": "decoder", "enc": "encoder", "unknown": None}
    cells = [Cell(m, "imdb", n, l, 0) for m in kinds for n, l in [(1000, 30), (100, 10), (300, 30), (200, 30)]]
    cells += [Cell("dec", "ag_news", 1000, 30, 0), Cell("dec", "enwik8", 50, 128, 0), Cell("dec", "enwik8", 100, 64, 0)]
    plan = slice_sources(cells, kinds)
    big = Cell("dec", "imdb", 1000, 30, 0)
    assert {c: s for c, s in plan.items() if c.dataset == "imdb"} == {
        Cell("dec", "imdb", 100, 10, 0): big, Cell("dec", "imdb", 300, 30, 0): big, Cell("dec", "imdb", 200, 30, 0): big}
    assert Cell("dec", "ag_news", 1000, 30, 0) not in plan  # alone in its dataset: extracted
    # No requested enwik8 cell covers both: one store of 100 texts × 128 tokens serves both.
    assert plan[Cell("dec", "enwik8", 50, 128, 0)] == plan[Cell("dec", "enwik8", 100, 64, 0)] == Cell("dec", "enwik8", 100, 128, 0)
    assert not [c for c in plan if c.model != "dec"]


def _probe_config(**probes) -> dict:
    section = {"models": ["dec"], "dataset": "imdb", "transfer_dataset": "ag_news", "n_texts": 1000,
               "max_tokens": 30, "grid": {"n_texts": [100], "max_tokens": [10]}, **probes}
    empty = {"models": [], "dataset": "enwik8", "n_texts": 1, "max_tokens": 2}
    return {"seed": 0, "norms": empty, "geometry": empty, "probes": section}


def test_probe_additions_read_stores_at_their_own_size_and_punctuation_only_there():
    from layerwise.activations.plan import Cell, requested_cells

    cells = set(requested_cells(_probe_config(variant_n_texts=300)))
    assert {Cell("dec", d, n, 30, 0) for d in ("imdb", "ag_news") for n in (1000, 300)} <= cells
    nopunct = {c for c in cells if c.dataset.endswith(".nopunct")}
    assert nopunct == {Cell("dec", "imdb.nopunct", 300, 30, 0), Cell("dec", "ag_news.nopunct", 300, 30, 0)}
    # unset: the additions run at the main size
    assert {c.n for c in requested_cells(_probe_config()) if c.dataset.endswith(".nopunct")} == {1000}


def test_probe_additions_larger_than_the_main_size_are_refused_by_key():
    from layerwise.activations.plan import requested_cells

    with pytest.raises(ValueError, match=r"probes.variant_n_texts' \(2000\) must be at most 'probes.n_texts' \(1000\)"):
        requested_cells(_probe_config(variant_n_texts=2000))


def test_extraction_memory_estimate_bounds_a_measured_peak(tmp_path):
    """A real extraction in a fresh process (a random Llama with a large batch of states) stays under
    the estimate; and the estimate's batch term is what makes it grow with width and layers."""
    import os
    import subprocess
    import sys

    from tests.helpers import REPO
    from layerwise.activations.plan import extraction_mem_mb

    # The peak of this process's own memory (VmHWM), not ru_maxrss: after vfork + exec, ru_maxrss starts from
    # the parent's resident size, and a pytest process deep into the suite is bigger than the job (CI: 2.3 GB).
    script = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from tests.helpers import peak_resident_mb, random_spec
from layerwise.resources.datasets import Sample
from layerwise.activations.extract import extract_to_store
from layerwise.resources.models import load_model, materialise
loaded = load_model(materialise("m", random_spec("llama", n_layers=6, width=512, n_heads=8), {str(tmp_path)!r}), device="cpu")
ids = [[(7 * k + i) % 250 + 3 for i in range(64)] for k in range(128)]
extract_to_store(loaded, Sample(ids, list(range(128)), {{}}), {str(tmp_path / 'store')!r}, max_batch_tokens=4096,
                 pad_to=64, progress=False)
print(peak_resident_mb())
"""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))  # this checkout's library, not an installed one
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mb = int(done.stdout.split()[-1])
    estimate = extraction_mem_mb(n_texts=128, max_tokens=64, n_layers=6, width=512, dtype="float16",
                                 max_batch_tokens=4096, vocab=256)
    assert peak_mb <= estimate, (peak_mb, estimate)
    small = extraction_mem_mb(n_texts=128, max_tokens=64, n_layers=6, width=256, dtype="float16",
                              max_batch_tokens=4096, vocab=256)
    assert small < estimate
