"""Extraction against the models themselves: layer 0 = embeddings, pre-/post-final-norm states, padding,
batching, token table, float16 overflow; on random models of every family and on the real ones."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from layerwise.resources.datasets import Sample
from layerwise.activations.extract import extract_to_store, length_batches, pad_batch
from layerwise.resources.models import base_model, final_norm, load_model, materialise
from layerwise.activations.store import FINAL_NORM, MANIFEST, ActivationStore, slice_store

from tests.helpers import random_spec
from tests.helpers.workflow_runs import snakemake, tiny_config

TEXTS = ["The cat sat.", "A much longer sentence, with commas; and more words in it.", "Hi", "Layer by layer",
         "Residual streams grow in norm through the depth of the network."]
DECODERS = ("gpt2", "llama", "gpt_neox")


def sample_of(tokenizer, texts=TEXTS) -> Sample:
    ids = [tokenizer(t)["input_ids"] for t in texts]
    return Sample(ids, list(range(len(ids))), {})


def extract(loaded, sample, root, **kw) -> ActivationStore:
    kw.setdefault("dtype", "float32")
    extract_to_store(loaded, sample, root, progress=False, **kw)
    return ActivationStore.open(root, verify="sha256")


def rows_of(store: ActivationStore, layer, text_index: int) -> np.ndarray:
    return np.asarray(store.layer(layer))[store.tokens["text_index"].to_numpy() == text_index]


@torch.inference_mode()
def run_alone(loaded, ids: list[int]):
    """The model on one unpadded text: `last_hidden_state` and the output of its last block (a hook)."""
    base = base_model(loaded.model)
    blocks = getattr(base, "h", None) or getattr(base, "layers", None) or base.encoder.layer
    seen = {}
    handle = blocks[-1].register_forward_hook(
        lambda _m, _a, out: seen.update(block=out[0] if isinstance(out, tuple) else out))
    try:
        out = base(input_ids=torch.tensor([ids]))
    finally:
        handle.remove()
    return out.last_hidden_state[0].numpy(), seen["block"][0].numpy()


@torch.inference_mode()
def input_embeddings(loaded, ids: list[int]) -> np.ndarray:
    """What layer 0 must be, from the embedding tables themselves."""
    base = base_model(loaded.model)
    t = torch.tensor([ids])
    if loaded.facts.model_type == "gpt2":  # GPT-2 adds learned positions before the first block
        return (base.wte(t) + base.wpe(torch.arange(len(ids))[None]))[0].numpy()
    if loaded.facts.model_type == "bert":  # word + position + type, then LayerNorm
        return base.embeddings(input_ids=t)[0].numpy()
    return loaded.model.get_input_embeddings()(t)[0].numpy()


# --------------------------------------------------------------------------- random models, every family


@pytest.fixture(scope="module", params=DECODERS + ("bert",))
def family(request, tiny_model, tmp_path_factory):
    loaded = tiny_model(request.param)
    sample = sample_of(loaded.tokenizer)
    store = extract(loaded, sample, tmp_path_factory.mktemp(f"store-{request.param}"), max_batch_tokens=10_000)
    return loaded, sample, store


def test_one_array_per_layer_plus_final_norm_for_decoders(family):
    loaded, sample, store = family
    names = set(store.manifest["files"]) - {"tokens.parquet"}
    expected = {f"layer_{i:03d}.npy" for i in range(loaded.facts.n_layers + 1)}
    if loaded.facts.kind == "decoder":
        expected.add(f"{FINAL_NORM}.npy")
    assert names == expected
    assert store.manifest["has_final_norm"] == (loaded.facts.kind == "decoder")
    assert store.manifest["model"]["n_layers"] == 2 and store.manifest["n_tokens"] == sum(map(len, sample.input_ids))


def test_manifest_records_the_torch_threads_of_the_forward(tiny_model, tmp_path):
    """Bitwise reproducibility on CPU holds at one thread only, so a store says how many it was made with."""
    loaded = tiny_model("gpt2")
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            store = extract(loaded, sample_of(loaded.tokenizer), tmp_path / f"t{threads}")
            assert store.manifest["torch_threads"] == threads
    finally:
        torch.set_num_threads(before)


def test_layer0_is_the_input_embeddings(family):
    loaded, sample, store = family
    for k, ids in enumerate(sample.input_ids):
        np.testing.assert_allclose(rows_of(store, 0, k), input_embeddings(loaded, ids), rtol=1e-5, atol=1e-6)


def test_final_states_match_the_model(family):
    loaded, sample, store = family
    norm = final_norm(loaded.model)
    for k, ids in enumerate(sample.input_ids):
        last_hidden_state, last_block = run_alone(loaded, ids)
        stored_last = rows_of(store, 2, k)
        np.testing.assert_allclose(stored_last, last_block, rtol=1e-5, atol=1e-5)
        if norm is None:  # post-LN encoder: the last block output is already the final state
            np.testing.assert_allclose(stored_last, last_hidden_state, rtol=1e-5, atol=1e-5)
            continue
        stored_post = rows_of(store, FINAL_NORM, k)
        np.testing.assert_allclose(stored_post, last_hidden_state, rtol=1e-5, atol=1e-5)
        with torch.inference_mode():
            renormed = norm(torch.from_numpy(stored_last)).numpy()
        np.testing.assert_allclose(renormed, last_hidden_state, rtol=1e-5, atol=1e-5)
        assert not np.allclose(stored_last, stored_post, atol=1e-3)  # pre-norm really is before the norm


def test_token_table_matches_the_input_ids(family):
    loaded, sample, store = family
    tokens = store.tokens
    assert tokens["token_id"].tolist() == [t for ids in sample.input_ids for t in ids]
    assert tokens["position"].tolist() == [p for ids in sample.input_ids for p in range(len(ids))]
    assert tokens["text_index"].tolist() == [k for k, ids in enumerate(sample.input_ids) for _ in ids]
    assert tokens["text_id"].tolist() == [sample.text_ids[k] for k, ids in enumerate(sample.input_ids) for _ in ids]
    assert tokens["token"].tolist() == loaded.tokenizer.convert_ids_to_tokens(tokens["token_id"].tolist())


def test_padding_is_excluded(family, tmp_path):
    """One padded batch of texts of different lengths gives the same vectors as one text at a time."""
    loaded, sample, batched = family
    single = extract(loaded, sample, tmp_path / "single", max_batch_tokens=1)
    assert len(length_batches([len(s) for s in sample.input_ids], 10_000)) == 1
    for layer, array in batched.iter_layers(include_final_norm=True):
        np.testing.assert_allclose(array, single.layer(layer), rtol=1e-5, atol=1e-5)


def test_float16_store_is_the_rounded_float32_store(family, tmp_path):
    loaded, sample, store32 = family
    store16 = extract(loaded, sample, tmp_path / "f16", dtype="float16", max_batch_tokens=10_000)
    assert store16.manifest["dtype"] == "float16"
    for layer, array in store32.iter_layers(include_final_norm=True):
        np.testing.assert_array_equal(store16.layer(layer), np.asarray(array).astype(np.float16))


# --------------------------------------------------------------------------- batching, writing, overflow


@pytest.mark.parametrize("overlap", [False, True])
def test_writer_thread_and_inline_writes_give_the_same_store(family, tmp_path, monkeypatch, overlap):
    """Batches of growing and shrinking size through the reused buffers, written by the writer thread
    (a spare core) or between forwards (none): the same bytes as one batch per text, bit for bit at
    the same padded width."""
    import threading

    import layerwise.activations.extract as extract_module
    from layerwise.activations.store import StoreWriter

    loaded, sample, _ = family
    texts = sample_of(loaded.tokenizer, TEXTS * 3)  # 15 texts: several batches, the last one smaller
    writers = []
    real = StoreWriter.write_block
    monkeypatch.setattr(StoreWriter, "write_block",
                        lambda self, *a: (writers.append(threading.current_thread().name), real(self, *a))[1])
    monkeypatch.setattr(extract_module, "spare_core", lambda: overlap)
    width = max(len(s) for s in texts.input_ids)
    store = extract(loaded, texts, tmp_path / "batched", max_batch_tokens=4 * width, pad_to=width)
    batches = length_batches([width] * len(texts.input_ids), 4 * width)
    assert [len(b) for b in batches] == [4, 4, 4, 3] and len(writers) == 4
    assert set(writers) == {"store-writer" if overlap else threading.main_thread().name}
    monkeypatch.setattr(extract_module, "spare_core", lambda: False)
    single = extract(loaded, texts, tmp_path / "single", max_batch_tokens=1, pad_to=width)
    for layer, array in single.iter_layers(include_final_norm=True):
        np.testing.assert_array_equal(store.layer(layer), array)


@pytest.mark.parametrize("overlap", [False, True])
def test_a_failed_write_stops_the_extraction_and_leaves_no_manifest(family, tmp_path, monkeypatch, overlap):
    import layerwise.activations.extract as extract_module
    from layerwise.activations.store import StoreWriter

    loaded, sample, _ = family
    calls = []

    def failing(self, block, segments):
        calls.append(len(segments))
        raise OSError("disk full")

    monkeypatch.setattr(StoreWriter, "write_block", failing)
    monkeypatch.setattr(extract_module, "spare_core", lambda: overlap)
    with pytest.raises(OSError, match="disk full"):
        extract_to_store(loaded, sample, tmp_path / "s", max_batch_tokens=1, progress=False)
    assert not (tmp_path / "s" / MANIFEST).exists()
    assert len(calls) <= 2  # stopped at the failure, not after every batch (5 texts, 5 batches)


@pytest.mark.parametrize("overlap", [False, True])
def test_a_failed_last_write_is_raised_and_leaves_no_manifest(family, tmp_path, monkeypatch, overlap):
    """On the writer thread the last batch's error comes after the last `put`: it must surface on exit."""
    import layerwise.activations.extract as extract_module
    from layerwise.activations.store import StoreWriter

    loaded, sample, _ = family
    n_batches = len(length_batches([len(s) for s in sample.input_ids], 1))
    calls = []
    real = StoreWriter.write_block

    def failing_last(self, block, segments):
        calls.append(len(segments))
        if len(calls) == n_batches:
            raise OSError("disk full at the end")
        return real(self, block, segments)

    monkeypatch.setattr(StoreWriter, "write_block", failing_last)
    monkeypatch.setattr(extract_module, "spare_core", lambda: overlap)
    with pytest.raises(OSError, match="disk full at the end"):
        extract_to_store(loaded, sample, tmp_path / "s", max_batch_tokens=1, progress=False)
    assert len(calls) == n_batches and not (tmp_path / "s" / MANIFEST).exists()


def test_a_model_without_a_list_of_its_blocks_is_named(tiny_model):
    from dataclasses import replace

    from layerwise.activations.extract import record_states

    loaded = tiny_model("llama")
    wrong = replace(loaded, facts=replace(loaded.facts, n_layers=loaded.facts.n_layers + 5))
    ids, mask = pad_batch([[1, 2, 3]], pad_id=0)
    with pytest.raises(RuntimeError, match=r"no list of 7 blocks in LlamaModel"):
        record_states(wrong, ids, mask, lambda _k, _state: None)


def test_a_writer_thread_only_with_a_core_torch_leaves_free(monkeypatch):
    from layerwise.activations.extract import spare_core

    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1})
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert spare_core()
        torch.set_num_threads(2)
        assert not spare_core()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("budget", [1, 7, 40, 1000])
def test_length_batches_respect_the_token_budget(budget):
    lengths = np.random.default_rng(budget).integers(1, 30, size=57).tolist()
    batches = length_batches(lengths, budget)
    assert sorted(i for b in batches for i in b) == list(range(57))  # every text exactly once
    for batch in batches:
        padded = max(lengths[i] for i in batch) * len(batch)
        assert padded <= budget or len(batch) == 1  # a text longer than the budget goes alone
    # Similar lengths together: batch maxima never decrease.
    maxima = [max(lengths[i] for i in b) for b in batches]
    assert maxima == sorted(maxima)
    # Greedy: a batch is closed only when the next text would have broken the budget.
    for batch, following in zip(batches, batches[1:]):
        assert max(maxima[batches.index(batch)], lengths[following[0]]) * (len(batch) + 1) > budget


def test_float16_overflow_raises_and_leaves_no_manifest(tmp_path):
    card = materialise("hot", random_spec("llama"), tmp_path / "model")
    loaded = load_model(card, device="cpu")
    with torch.no_grad():
        loaded.model.get_input_embeddings().weight.fill_(1e5)  # layer 0 alone exceeds float16 (max 65504)
    sample = sample_of(loaded.tokenizer, TEXTS[:2])
    with pytest.raises(OverflowError, match="beyond float16; use dtype float32"):
        extract_to_store(loaded, sample, tmp_path / "f16", dtype="float16", progress=False)
    assert not (tmp_path / "f16" / MANIFEST).exists()
    store = extract(loaded, sample, tmp_path / "f32")  # float32 holds the same activations
    assert np.isfinite(store.layer(0)).all() and np.abs(store.layer(0)).max() > 65504


@pytest.mark.parametrize("architecture", DECODERS + ("bert",))
def test_recorded_largest_activation_is_the_stored_tokens_not_the_padding(architecture, tmp_path):
    """`max_abs_activation` (the manifest's float16 headroom) counts real tokens only: the pad token's
    embedding is planted 100× larger than any other, so padding rows counted would dominate it."""
    card = materialise(f"pad-{architecture}", random_spec(architecture), tmp_path / "model")
    loaded = load_model(card, device="cpu")
    sample = sample_of(loaded.tokenizer)
    pad_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    assert all(pad_id not in ids for ids in sample.input_ids)  # otherwise the plant would hit real tokens
    with torch.no_grad():
        table = loaded.model.get_input_embeddings().weight
        table[pad_id] = 100 * table.abs().max()
    store = extract(loaded, sample, tmp_path / "s", max_batch_tokens=10_000)  # one padded batch
    stored = max(float(np.abs(np.asarray(array)).max()) for _, array in store.iter_layers(include_final_norm=True))
    assert store.manifest["max_abs_activation"] == stored
    assert stored < float(table[pad_id].abs().max())


# --------------------------------------------------------------------------- the real models


@pytest.mark.slow
def test_smollm2_final_norm_and_embeddings(smollm2, tmp_path):
    texts = ["The movie was far longer than it needed to be.", "Great acting!", TEXTS[4]]
    sample = sample_of(smollm2.tokenizer, texts)
    store = extract(smollm2, sample, tmp_path / "smol", max_batch_tokens=10_000)
    assert store.manifest["model"]["n_layers"] == 30 and len(store.layers) == 31
    assert store.layer(30).shape == (sum(map(len, sample.input_ids)), 576)
    norm = final_norm(smollm2.model)
    for k, ids in enumerate(sample.input_ids):
        last_hidden_state, last_block = run_alone(smollm2, ids)
        pre, post = rows_of(store, 30, k), rows_of(store, FINAL_NORM, k)
        np.testing.assert_allclose(post, last_hidden_state, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(pre, last_block, rtol=1e-4, atol=1e-3)
        with torch.inference_mode():
            np.testing.assert_allclose(norm(torch.from_numpy(pre)).numpy(), last_hidden_state, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(rows_of(store, 0, k), input_embeddings(smollm2, ids), rtol=1e-6, atol=1e-6)
    assert store.manifest["model"]["revision"].startswith("sha256:")


@pytest.mark.slow
def test_minilm_last_layer_is_last_hidden_state(minilm, tmp_path):
    sample = sample_of(minilm.tokenizer, TEXTS[:3])
    store = extract(minilm, sample, tmp_path / "mini", max_batch_tokens=10_000)
    assert len(store.layers) == 7 and not store.manifest["has_final_norm"]
    assert store.manifest["position0_is_special"] is True  # every text starts with [CLS]
    for k, ids in enumerate(sample.input_ids):
        last_hidden_state, _ = run_alone(minilm, ids)
        np.testing.assert_allclose(rows_of(store, 6, k), last_hidden_state, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(rows_of(store, 0, k), input_embeddings(minilm, ids), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- slices of a decoder's store


@pytest.mark.parametrize("architecture", DECODERS)
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_slice_of_a_decoder_store_equals_its_direct_extraction(architecture, dtype, tiny_model, tmp_path):
    """First n texts × first l positions cut from the big store are bit for bit what a forward pass on
    that cell writes at the same padded width, although batches and sequence lengths differ between
    the two runs; at its own (shorter) width the cell differs by float32 rounding only."""
    loaded = tiny_model(architecture)
    big_sample = sample_of(loaded.tokenizer)
    width = max(map(len, big_sample.input_ids))
    big = extract(loaded, big_sample, tmp_path / "big", dtype=dtype, max_batch_tokens=64, pad_to=width)
    n, length = 3, 6
    cell = Sample([ids[:length] for ids in big_sample.input_ids[:n]], big_sample.text_ids[:n], {})
    assert any(len(ids) > length for ids in big_sample.input_ids[:n])  # truncation really happens
    direct = extract(loaded, cell, tmp_path / "direct", dtype=dtype, max_batch_tokens=7, pad_to=width)
    slice_store(big, tmp_path / "slice", n_texts=n, max_tokens=length, manifest={})
    sliced = ActivationStore.open(tmp_path / "slice", verify="sha256")
    pd.testing.assert_frame_equal(sliced.tokens, direct.tokens)
    layers = [name for name in direct.manifest["files"] if name.endswith(".npy")]
    assert sorted(layers) == sorted(name for name in sliced.manifest["files"] if name.endswith(".npy"))
    own_width = extract(loaded, cell, tmp_path / "own", dtype=dtype, max_batch_tokens=7)
    for name in layers:
        np.testing.assert_array_equal(np.load(sliced.root / name), np.load(direct.root / name), err_msg=name)
        np.testing.assert_allclose(np.load(own_width.root / name), np.load(direct.root / name), rtol=2e-3, atol=1e-5)
    assert sliced.manifest["n_texts"] == n and sliced.manifest["sliced_from"]["n_texts"] == len(TEXTS)


def test_slice_of_an_encoder_store_differs_from_its_direct_extraction(tiny_model, tmp_path):
    """Why encoders re-extract: with bidirectional attention, truncating a text changes every state."""
    loaded = tiny_model("bert")
    big_sample = sample_of(loaded.tokenizer)
    big = extract(loaded, big_sample, tmp_path / "big")
    cell = Sample([ids[:6] for ids in big_sample.input_ids[:3]], big_sample.text_ids[:3], {})
    direct = extract(loaded, cell, tmp_path / "direct")
    slice_store(big, tmp_path / "slice", n_texts=3, max_tokens=6, manifest={})
    sliced = ActivationStore.open(tmp_path / "slice")
    assert not np.allclose(sliced.layer(2), direct.layer(2), atol=1e-3)


def planned_stores(output: str) -> dict[str, set[str]]:
    """Dry-run output → {rule: activation stores it would write}."""
    stores: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        rule = re.match(r"(?:local)?rule (\w+):", block.strip())
        written = re.search(r"output: (results/activations/\S+)", block)
        if rule and written:
            stores.setdefault(rule.group(1), set()).add(written.group(1).rstrip(","))
    return stores


def test_a_smaller_grid_cell_runs_no_forward_pass_of_the_decoder(tmp_path, shared_data):
    """Adding smaller (n, l) cells to the probe grid adds slicing jobs for the decoder, extraction jobs
    for the encoder (its states depend on later tokens), and leaves the decoder's extractions as they were."""
    grid = {"n_texts": [6, 8], "max_tokens": [8, 12]}
    plans = {}
    for name, cells in {"before": grid, "after": {"n_texts": [4, 6, 8], "max_tokens": [5, 8, 12]}}.items():
        workdir = tmp_path / name
        workdir.mkdir()
        done = snakemake(workdir, tiny_config(workdir, shared_data, **{"probes.grid": cells}), "-n")
        assert done.returncode == 0, done.stderr[-3000:]
        plans[name] = planned_stores(done.stdout + done.stderr)
    decoder_extracts = {name: {s for s in plan["extract"] if "/tiny-gpt2/" in s} for name, plan in plans.items()}
    assert decoder_extracts["after"] == decoder_extracts["before"]
    assert "results/activations/tiny-gpt2/imdb/n4_l5_s0" in plans["after"]["slice_store"]
    assert "results/activations/tiny-gpt2/imdb/n6_l8_s0" in plans["before"]["slice_store"]
    assert all("/tiny-gpt2/" in s for s in plans["after"]["slice_store"])  # encoders are never sliced
    assert "results/activations/tiny-bert/imdb/n4_l5_s0" in plans["after"]["extract"]
    # The largest imdb cell is extracted once and shared by the main setting, the grid and the norms.
    assert sum("/tiny-gpt2/imdb/" in s for s in decoder_extracts["after"]) == 1
