"""Every stored layer, not only the first and the last, is the model's own hidden state for that layer: a
store that kept the previous layer's state for a middle layer would pass the end-point tests in
test_extract.py. Random 4-layer models of every supported architecture, each text run alone (no padding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import RANDOM_ARCHITECTURES, random_spec
from layerwise.data import Sample
from layerwise.extract import extract_to_store
from layerwise.models import base_model, load_model, materialise
from layerwise.store import ActivationStore

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
    assert len(seen) == len(blocks) == N_LAYERS
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
