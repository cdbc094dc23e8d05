"""`models.<key>.dtype` and `models.<key>.device_map`: bfloat16 against float32 on the same tiny random
models (anisotropy per layer, the logit lens), where the dtype is recorded (model facts, the store manifest,
the paper's revisions table), loading through accelerate, and the memory and GPU counts that size jobs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerwise.resources.datasets import Sample
from layerwise.activations.extract import extract_to_store, forward_hidden_states
from layerwise.geometry.spectrum import anisotropy
from layerwise.lens.decode import logit_lens
from layerwise.resources.models import ModelSpecError, load_model, materialise, resolved_dtype, validate_spec
from layerwise.probes.features import split_layer_dataset
from layerwise.probes.logistic import TorchLogisticProbe
from layerwise.workflow.provenance import model_dtypes, model_revisions
from layerwise.activations.store import ActivationStore
from layerwise.activations.plan import (declared_parameters, extraction_mem_mb, gpus_needed, host_weight_bytes,
                                  weight_bytes)

from tests.helpers import random_spec

pytestmark = pytest.mark.usefixtures("single_torch_thread")
TEXTS = [f"Text number {i}: the residual stream of layer {i % 5} grows, and {i * 7} tokens follow." for i in range(24)]


def padded(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, ids))
    batch, mask = torch.zeros(len(ids), width, dtype=torch.long), torch.zeros(len(ids), width, dtype=torch.long)
    for i, row in enumerate(ids):
        batch[i, :len(row)], mask[i, :len(row)] = torch.tensor(row), 1
    return batch, mask


def run(arch: str, dtype: str, root) -> tuple[np.ndarray, object, dict]:
    """Per-layer anisotropy of a float16 store and the `full` lens table of one random model in `dtype`
    (the store stays in `root / "store"`)."""
    card = materialise(f"m-{arch}", random_spec(arch, dtype=dtype, width=64, n_layers=4), root / "model")
    loaded = load_model(card, device="cpu", lm_head=True)
    ids = [loaded.tokenizer(t)["input_ids"] for t in TEXTS]
    manifest = extract_to_store(loaded, Sample(ids, list(range(len(ids))), {}), root / "store", progress=False)
    store = ActivationStore.open(root / "store")
    values = np.array([anisotropy(np.asarray(store.layer(k), dtype=np.float64), backend="numpy")
                       for k in store.layers])
    return values, logit_lens(loaded.model, *padded(ids), decoder="full"), manifest


def probe_on(root) -> tuple[float, np.ndarray]:
    """Test accuracy and probabilities of the layer probe (Study 1: which layer is this vector from?)."""
    train, test = split_layer_dataset(ActivationStore.open(root / "store"), 0.25, 0)
    probe = TorchLogisticProbe(C=1.0, max_epochs=100, device="cpu").fit(train.X, train.y)
    return float((probe.predict(test.X) == test.y).mean()), probe.predict_proba(test.X)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_bfloat16_agrees_with_float32_on_anisotropy_the_lens_and_the_probe(arch, tmp_path):
    """Same weights (one seed, saved in float32), run in bfloat16 and in float32, stored in float16.

    Stated tolerances, with what was measured on these models (width 64, 4 layers, 24 texts; llama, gpt2,
    gpt_neox) in brackets: per-layer anisotropy |difference| <= 1e-3 [<= 1.9e-4]; the lens's per-position
    KL(final || layer) <= 1e-3 nats [<= 1.4e-4], next-token log-probability <= 0.02 nats [<= 4.9e-3], and
    top-1 tokens the same at >= 98 % of (layer, position) rows [>= 99.1 %]; the layer probe's test accuracy
    <= 0.01 [<= 4.5e-4: one of 2,220 test vectors] and its probabilities <= 0.05 [<= 0.010]. bfloat16 keeps
    8 bits of mantissa (relative rounding 2**-9), so a few near-ties in these near-uniform random
    distributions flip.
    """
    a32, lens32, manifest32 = run(arch, "float32", tmp_path / "f32")
    a16, lens16, manifest16 = run(arch, "bfloat16", tmp_path / "bf16")
    assert manifest32["model"]["dtype"] == "float32" and manifest16["model"]["dtype"] == "bfloat16"
    assert manifest32["dtype"] == manifest16["dtype"] == "float16"  # the store's dtype does not follow
    np.testing.assert_allclose(a16, a32, atol=1e-3, rtol=0)
    assert np.abs(a16 - a32).max() > 0  # the two runs did differ: bfloat16 was really used
    assert (lens16["kl_final"] - lens32["kl_final"]).abs().max() <= 1e-3
    assert (lens16["next_token_logprob"] - lens32["next_token_logprob"]).abs().max() <= 0.02
    assert (lens16["top1_id"] == lens32["top1_id"]).mean() >= 0.98
    (acc32, p32), (acc16, p16) = probe_on(tmp_path / "f32"), probe_on(tmp_path / "bf16")
    assert abs(acc16 - acc32) <= 0.01 and np.abs(p16 - p32).max() <= 0.05


def test_dtype_setting_is_resolved_and_validated():
    assert resolved_dtype("auto", "cpu") == "float32" and resolved_dtype("auto", "cuda") == "bfloat16"
    assert resolved_dtype("float16", "cpu") == "float16"
    with pytest.raises(ModelSpecError, match="model 'm': dtype must be one of"):
        validate_spec("m", random_spec("gpt2", dtype="float64"))
    with pytest.raises(ModelSpecError, match="model 'm': device_map must be one of"):
        validate_spec("m", random_spec("gpt2", device_map="everywhere"))
    revisions = model_revisions([{"key": "a", "source": "random", "model_id": "random:gpt2", "revision": "seed0"},
                                 {"key": "b@step0", "source": "hf", "model_id": "x/b", "revision": "step0"}],
                                model_dtypes({"a": {}, "b": {"dtype": "bfloat16"}}, "cpu"))
    assert revisions["dtype"].tolist() == ["float32", "bfloat16"]


def test_device_map_loads_through_accelerate_and_hooks_still_read_every_layer(tmp_path):
    pytest.importorskip("accelerate")
    plain = load_model(materialise("p", random_spec("llama"), tmp_path / "p"), device="cpu")
    sharded = load_model(materialise("s", random_spec("llama", device_map="auto"), tmp_path / "s"), device="cpu")
    assert sharded.facts.device_map == "auto" and sharded.device == torch.device("cpu")
    ids, mask = padded([[5, 6, 7, 8], [9, 10]])
    ours, post = forward_hidden_states(sharded, ids, mask)
    theirs, post_plain = forward_hidden_states(plain, ids, mask)
    for a, b in zip(ours + [post], theirs + [post_plain]):
        torch.testing.assert_close(a, b)


def test_device_map_without_accelerate_names_the_key(tmp_path, monkeypatch):
    import layerwise.resources.models

    card = materialise("big", random_spec("llama", device_map="auto"), tmp_path)
    monkeypatch.setattr(layerwise.resources.models, "_accelerate_available", lambda: False)
    with pytest.raises(ModelSpecError, match=r"config 'models\.big\.device_map' = 'auto' needs the accelerate"):
        load_model(card, device="cpu")


def test_gpus_needed_for_the_issues_models():
    assert gpus_needed(7e9, "bfloat16", 40) == 1  # 16.8 GB with its overhead: one 40 GB GPU
    assert gpus_needed(8e9, "bfloat16", 40) == 1
    assert gpus_needed(7e9, "float32", 24) == 2
    assert gpus_needed(70e9, "bfloat16", 40) == 5 and gpus_needed(70e9, "bfloat16", 80) == 3  # multi-GPU node
    with pytest.raises(ValueError):
        gpus_needed(7e9, "bfloat16", 0)


def test_memory_estimates_follow_the_dtype_and_the_declared_size():
    small = {"source": "hf", "id": "x/y", "n_layers": 12, "width": 768}
    assert host_weight_bytes(small, "cpu") == 2 * weight_bytes(12, 768)  # float32 on CPU, as before
    assert host_weight_bytes(small, "cuda") == weight_bytes(12, 768)  # auto = bfloat16 on a GPU: half
    modern = {"source": "hf", "id": "x/z", "n_layers": 32, "width": 4096, "n_parameters": 8.03e9,
              "dtype": "bfloat16", "device_map": "auto"}
    assert declared_parameters(modern) == 8_030_000_000
    assert host_weight_bytes(modern, "cuda") == 2 * 8_030_000_000  # streamed to the GPU: one copy
    common = dict(n_texts=100, max_tokens=64, n_layers=32, width=4096, dtype="float16", max_batch_tokens=4096)
    assert extraction_mem_mb(**common, weights=host_weight_bytes(modern, "cuda")) < extraction_mem_mb(**common)


@pytest.mark.slow
def test_the_tiny_config_runs_in_bfloat16_on_cpu(tmp_path, shared_data):
    """Every model of tests/config/tiny.yaml in bfloat16 on the CPU: its stores (float16, as always), geometry,
    norms, lens and probes are made, and the manifests and the lens say which dtype ran."""
    import json

    import yaml

    from tests.helpers.workflow_runs import snakemake, tiny_config

    config = tiny_config(tmp_path, shared_data)
    values = yaml.safe_load(config.read_text())
    for spec in values["models"].values():
        spec["dtype"] = "bfloat16"
    config.write_text(yaml.safe_dump(values))
    targets = [f"results/{study}/{m}/{cell}" for m in ("tiny-gpt2", "tiny-bert")
               for study, cell in (("geometry", "enwik8/n8_l16_s0.csv"), ("norms", "imdb/n8_l12_s0.csv"),
                                   ("probes", "imdb/n8_l12_s0/raw/scores.csv"))]
    targets.append("results/lens/tiny-gpt2/imdb/n8_l12_s0.full.summary.csv")
    done = snakemake(tmp_path, config, "--cores", "2", *targets)
    assert done.returncode == 0, done.stderr[-4000:]
    for m in ("tiny-gpt2", "tiny-bert"):
        manifest = json.loads((tmp_path / f"results/activations/{m}/enwik8/n8_l16_s0/manifest.json").read_text())
        assert manifest["model"]["dtype"] == "bfloat16" and manifest["dtype"] == "float16"
    for target in targets:
        assert (tmp_path / target).stat().st_size > 0, target
