"""Known answers for the logit lens paths that mutmut found untested: a model whose unembedding is not a float32
matrix (bfloat16 weights, as GPU users load them) decodes through the general path and must still end at the
model's own logits under each decoder; the "final" row's depth; the chunk size as an integer; inputs refused
by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import layerwise.lens.decode as lens
from layerwise.lens.decode import FINAL, logit_lens
from layerwise.lens.adapters import decode, lens_parts

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def tiny_gpt2(n_layer: int = 2) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=n_layer, n_head=2,
                                      bos_token_id=0, eos_token_id=0)).eval()


IDS = torch.tensor([[3, 17, 5, 9, 22, 1]])


@pytest.mark.parametrize("decoder", ["full", "norm_only", "none"])
def test_a_bfloat16_model_is_decoded_by_its_own_head_and_ends_at_its_logits(decoder):
    """bfloat16 weights take the general decode path (the head itself, then a float32 copy): every layer's top-1
    logit is that of `decode` under the same decoder, and with `full` the last block is the model's output."""
    model = tiny_gpt2().to(torch.bfloat16)
    table = logit_lens(model, IDS, decoder=decoder)
    with torch.no_grad():
        out = model(IDS, output_hidden_states=True)
        # layer 0 is the input embedding plus positions: hidden_states[0]
        expected0 = decode(lens_parts(model), out.hidden_states[0], decoder).float()[0]
    rows = table[table["layer"] == "0"].sort_values("position")
    np.testing.assert_allclose(rows["top1_logit"], expected0.max(-1).values.numpy(), rtol=1e-6)
    assert rows["top1_id"].tolist() == expected0.argmax(-1).tolist()
    final = table[table["layer"] == FINAL].sort_values("position")
    own = out.logits.float()[0]
    np.testing.assert_allclose(final["top1_logit"], own.max(-1).values.numpy(), rtol=1e-6)
    if decoder == "full":
        last = table[table["layer"] == "2"].sort_values("position")
        np.testing.assert_allclose(last["top1_logit"], own.max(-1).values.numpy(), rtol=1e-2)
        assert (last["top1_id"].to_numpy() == own.argmax(-1).numpy()).mean() >= 5 / 6


def test_the_final_row_sits_one_depth_past_the_last_block():
    for n_layer in (1, 3):
        table = logit_lens(tiny_gpt2(n_layer), IDS)
        depth = table.groupby("layer", sort=False)["depth"].first()
        assert depth.to_dict() == {**{str(i): float(i) for i in range(n_layer + 1)}, FINAL: float(n_layer + 1)}


def test_chunk_rows_is_a_whole_number_of_positions():
    rows = lens.chunk_rows(1000, available_bytes=8 * lens.CHUNK_ARRAYS * 1000 * 4 * 7 + 5)
    assert rows == 7 and isinstance(rows, int)


def test_bad_lens_inputs_are_refused_by_name():
    model = tiny_gpt2(1)
    with pytest.raises(ValueError, match=r"^input_ids must be a 2-D LongTensor \[batch, positions\]$"):
        logit_lens(model, IDS[0])
    with pytest.raises(ValueError, match=r"^attention_mask must contain only 0 and 1$"):
        logit_lens(model, IDS, torch.full_like(IDS, 2))
    with pytest.raises(ValueError, match=r"^every sequence needs at least one unmasked token$"):
        logit_lens(model, IDS.repeat(2, 1), torch.tensor([[1] * 6, [0] * 6]))
    with pytest.raises(ValueError, match=r"^3 text names for a batch of 1$"):
        logit_lens(model, IDS, text_names=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"^chunk must be positive$"):
        logit_lens(model, IDS, chunk=0)
