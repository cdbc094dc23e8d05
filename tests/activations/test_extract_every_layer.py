"""Every stored layer, not only the first and the last, is the model's own hidden state for that layer: a
store that kept the previous layer's state for a middle layer would pass the end-point tests in test_extract.py.
Random 4-layer models of every supported architecture, each text run alone (no padding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerwise.activations.extract import extract_to_store
from layerwise.activations.store import ActivationStore
from layerwise.resources.datasets import Sample
from layerwise.resources.models import base_model, load_model, materialise

from tests.helpers import RANDOM_ARCHITECTURES, random_spec


TEXTS = ["The cat sat on the mat.", "Residual streams grow in norm, layer after layer.", "Hi"]
N_LAYERS = 4


@torch.inference_mode()
def block_outputs(loaded, ids: list[int]) -> list[np.ndarray]:
    """The embedding output (layer 0) and each block's output, caught by hooks on the modules themselves
    (HF's `hidden_states` applies the final norm to its last entry in some families, so it is not used)."""
    base = base_model(loaded.model)
    blocks = getattr(base, "h", None) or getattr(base, "layers", None) or base.encoder.layer
    seen: list[np.ndarray] = []
    handles = [b.register_forward_hook(
        lambda _m, args, out: seen.append((out[0] if isinstance(out, tuple) else out)[0].clone().numpy()))
        for b in blocks]
    inputs: list[np.ndarray] = []
    handles.append(blocks[0].register_forward_hook(
        lambda _m, args, _out: inputs.append(args[0][0].clone().numpy())))
    try:
        base(input_ids=torch.tensor([ids]))
    finally:
        for h in handles:
            h.remove()
    assert len(seen) == len(blocks)
    return inputs + seen


@torch.inference_mode()
def hf_hidden_states(loaded, ids: list[int]) -> list[np.ndarray]:
    out = base_model(loaded.model)(input_ids=torch.tensor([ids]), output_hidden_states=True)
    return [h[0].numpy() for h in out.hidden_states]


@pytest.mark.parametrize("architecture", RANDOM_ARCHITECTURES)
def test_every_layer_is_the_models_hidden_state(architecture, tmp_path):
    card = materialise(f"deep-{architecture}", random_spec(architecture, n_layers=N_LAYERS), tmp_path / "model")
    loaded = load_model(card, device="cpu")
    ids = [loaded.tokenizer(t)["input_ids"] for t in TEXTS]
    extract_to_store(loaded, Sample(ids, list(range(len(ids))), {}), tmp_path / "store", dtype="float32",
                     max_batch_tokens=10_000, progress=False)
    store = ActivationStore.open(tmp_path / "store")
    text = store.tokens["text_index"].to_numpy()
    for k, text_ids in enumerate(ids):
        expected = block_outputs(loaded, text_ids)
        for layer in range(N_LAYERS + 1):
            stored = np.asarray(store.layer(layer))[text == k]
            np.testing.assert_allclose(stored, expected[layer], rtol=1e-5, atol=1e-5,
                                       err_msg=f"{architecture} text {k} layer {layer}")
            if layer < N_LAYERS:  # transformers' own record, independent of hooks (its last entry may be post-norm)
                np.testing.assert_allclose(stored, hf_hidden_states(loaded, text_ids)[layer], rtol=1e-5, atol=1e-5,
                                           err_msg=f"{architecture} text {k} layer {layer} vs hidden_states")
        # The layers really differ, so a shifted copy could not pass by accident.
        for layer in range(1, N_LAYERS + 1):
            assert not np.allclose(expected[layer], expected[layer - 1], atol=1e-3)


@pytest.mark.parametrize("architecture", RANDOM_ARCHITECTURES)
def test_forward_hidden_states_are_the_stored_layers_and_the_final_norm_output(architecture, tiny_model):
    """The in-memory path (training checkpoints) returns what the store holds: layers 0..n as transformers
    records them (the last one before the final norm), then the final norm's output, or None for BERT."""
    from layerwise.activations.extract import forward_hidden_states

    loaded = tiny_model(architecture)
    ids = torch.tensor([loaded.tokenizer(TEXTS[1])["input_ids"]])
    hidden, post = forward_hidden_states(loaded, ids, torch.ones_like(ids))
    n = loaded.facts.n_layers
    with torch.inference_mode():
        out = base_model(loaded.model)(input_ids=ids, output_hidden_states=True)
    assert len(hidden) == n + 1
    for layer in range(n):
        np.testing.assert_allclose(hidden[layer].numpy(), out.hidden_states[layer].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hidden[n][0].numpy(), block_outputs(loaded, ids[0].tolist())[-1], rtol=1e-6, atol=1e-6)
    if architecture == "bert":  # post-LN: no final norm, the last block output is the final state
        assert post is None
        np.testing.assert_allclose(hidden[n].numpy(), out.last_hidden_state.numpy(), rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_allclose(post.numpy(), out.last_hidden_state.numpy(), rtol=1e-6, atol=1e-6)
        assert not np.allclose(post.numpy(), hidden[n].numpy(), atol=1e-3)


@pytest.mark.parametrize("architecture", ["gpt2", "bert"])
def test_the_manifest_records_how_the_states_were_taken(architecture, tiny_model, tmp_path):
    """The pitfalls' choices are written into every store: which layer is which, where the final norm's
    output is, that position 0 is kept and whether it is a special token, the padding, and the versions."""
    import platform

    import transformers

    loaded = tiny_model(architecture)
    special = loaded.tokenizer.all_special_ids[0]
    ids = [loaded.tokenizer(t)["input_ids"] for t in TEXTS]
    marked = Sample([[special] + s for s in ids], list(range(len(ids))), {})
    manifest = extract_to_store(loaded, marked, tmp_path / "a", dtype="float32", pad_to=40, progress=False)
    assert manifest["n_texts"] == len(TEXTS) and manifest["padded_width"] == 40
    assert manifest["position0_is_special"] is True
    assert manifest["layers"].startswith("0 = input embeddings") and "before the final norm" in manifest["layers"]
    assert "hooks" in manifest["pre_norm_last_layer"]
    assert "position 0 included" in manifest["positions_stored"]
    if architecture == "bert":
        assert manifest["final_norm_state"].startswith("none: post-LN encoder")
    else:
        assert manifest["final_norm_state"].startswith("final_norm.npy = output of the final norm")
    assert manifest["device"] == "cpu"
    assert manifest["versions"] == {"python": platform.python_version(), "torch": torch.__version__,
                                    "transformers": transformers.__version__, "numpy": np.__version__}
    n_tokens = sum(len(s) for s in marked.input_ids)
    assert 0 < manifest["extraction_seconds"] < 60
    assert manifest["tokens_per_second"] == pytest.approx(n_tokens / manifest["extraction_seconds"])

    plain = extract_to_store(loaded, Sample(ids, list(range(len(ids))), {}), tmp_path / "b", dtype="float32",
                             progress=False)
    assert plain["position0_is_special"] is False  # byte-level tokens, no BOS or [CLS]
    assert plain["padded_width"] == "longest text of each batch"
    mixed = Sample([[special] + ids[0]] + ids[1:], list(range(len(ids))), {})
    assert extract_to_store(loaded, mixed, tmp_path / "c", dtype="float32", progress=False)[
        "position0_is_special"] is False  # only when every text starts with one


def test_non_finite_activations_raise_and_leave_no_manifest(tmp_path):
    """A NaN from the model is an error in any store dtype, not a value to store or to call an overflow."""
    card = materialise("nan", random_spec("llama"), tmp_path / "model")
    loaded = load_model(card, device="cpu")
    with torch.no_grad():
        loaded.model.get_input_embeddings().weight[:] = float("nan")
    ids = [loaded.tokenizer(t)["input_ids"] for t in TEXTS[:2]]
    for dtype in ("float32", "float16"):
        with pytest.raises(FloatingPointError, match="non-finite activations"):
            extract_to_store(loaded, Sample(ids, [0, 1], {}), tmp_path / dtype, dtype=dtype, progress=False)
        assert not (tmp_path / dtype / "manifest.json").exists()
