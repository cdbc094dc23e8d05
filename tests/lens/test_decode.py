"""The logit lens's decoding path (`layerwise.lens.decode`) on known answers: ranks with ties, the torch
statistics path against hand-computed KL values and a plain-numpy brute force, the fused CPU kernel, chunk sizes,
a model whose unembedding is not a float32 matrix (bfloat16 weights, as GPU users load them: the general path
must still end at the model's own logits under each decoder), the "final" row's depth and inputs refused by name."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import layerwise.lens.decode as lens
from layerwise.lens.adapters import decode, lens_parts
from layerwise.lens.decode import (FINAL, _kl_from, _layer_stats_torch, _log_partition, _references, logit_lens,
                                   logit_lens_texts, token_rank)


pytestmark = pytest.mark.usefixtures("single_torch_thread")


# --- ranks ----------------------------------------------------------------------------------------------------------

def test_token_rank_on_batched_logits_counts_ties_against_the_token():
    """[B, T, V] logits: rank = #{v : logit_v >= logit_token}, worked out by hand per row."""
    logits = torch.tensor([[[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-5.0, 7.0, 1.0, 7.0]],
                           [[0.0, 0.0, 9.0, 0.0], [4.0, 3.0, 2.0, 1.0], [1e4, -1e4, 0.0, 1e4]]])
    ids = torch.tensor([[1, 3, 0], [2, 0, 1]])
    # row (0,0): token 1 ties token 2 at the top -> 2; (0,1): all four tied -> 4; (0,2): -5 is last -> 4
    # row (1,0): unique top -> 1; (1,1): unique top -> 1; (1,2): -1e4 is last -> 4
    assert token_rank(logits, ids).tolist() == [[2, 4, 4], [1, 1, 4]]
    assert token_rank(logits, torch.tensor([[0, 0, 2], [3, 3, 3]])).tolist() == [[3, 4, 3], [4, 4, 2]]


def test_token_rank_writes_the_comparison_into_the_callers_scratch():
    """The documented memory contract: `scratch` receives the comparison (no fresh [positions x vocab] mask)."""
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 0.0, 5.0, 2.0]])
    scratch = torch.full_like(logits, -7.0)
    assert token_rank(logits, torch.tensor([0, 3]), scratch).tolist() == [3, 3]
    assert scratch.tolist() == [[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0]]


# --- KL with known values -------------------------------------------------------------------------------------------

def _kl_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """[2, 2, 2] two-token logits: references (final, input) and a layer, with KLs worked out by hand.

    uniform p = (1/2, 1/2) vs q = softmax(0, ln 3) = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3);
    one-hot p = (1, 0) vs the same q: KL = -ln(1/4) = ln 4; KL(q || q) = 0; q vs uniform: 1/4 ln(1/2) + 3/4 ln(3/2).
    """
    ln3 = math.log(3.0)
    uniform, onehot, q = [0.0, 0.0], [0.0, -500.0], [0.0, ln3]
    final = torch.tensor([[uniform, onehot], [q, uniform]])
    layer0 = torch.tensor([[q, uniform], [onehot, q]])
    layer = torch.tensor([[q, q], [q, [5.0, 5.0]]])  # the last row is uniform, shifted by 5
    kl_uq, kl_oq, kl_qu = 0.5 * math.log(4 / 3), math.log(4.0), 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    expected_final = np.array([[kl_uq, kl_oq], [0.0, 0.0]])
    expected_input = np.array([[0.0, kl_uq], [kl_oq, kl_qu]])
    return final, layer0, layer, expected_final, expected_input


def test_kl_from_equals_hand_computed_values_on_batched_two_token_vocabularies():
    final, layer0, layer, expected_final, expected_input = _kl_case()
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    centred = layer - layer.amax(-1, keepdim=True)
    kl = _kl_from(references, centred, _log_partition(centred.clone(), scratch), scratch)
    assert kl.shape == (2, 2, 2)
    np.testing.assert_allclose(kl[..., 0].numpy(), expected_final, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kl[..., 1].numpy(), expected_input, rtol=1e-5, atol=1e-6)
    # the cross terms are elementwise products written into the caller's scratch (last: the input reference)
    torch.testing.assert_close(scratch, references[0][..., 1, :] * centred)


def test_torch_layer_stats_equal_hand_computed_kl_and_log_probabilities():
    final, layer0, layer, expected_final, expected_input = _kl_case()
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    zeros = torch.zeros(2, 2, dtype=torch.long)
    ones = torch.ones(2, 2, dtype=torch.long)
    stats = _layer_stats_torch(layer.clone(), zeros, ones, ones, references, scratch)
    np.testing.assert_allclose(stats["kl_final"].numpy(), expected_final, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["kl_input"].numpy(), expected_input, rtol=1e-5, atol=1e-6)
    # log q(token 1) = ln 3/4 where q = (1/4, 3/4), ln 1/2 in the uniform row
    ln34 = math.log(0.75)
    np.testing.assert_allclose(stats["next_token_logprob"].numpy(), [[ln34, ln34], [ln34, math.log(0.5)]], rtol=1e-6)
    assert stats["top1_id"].tolist() == [[1, 1], [1, 0]]  # the uniform row's tie goes to the first token
    assert stats["final_top1_rank"].tolist() == [[2, 2], [2, 2]]
    assert stats["input_token_rank"].tolist() == [[1, 1], [1, 2]]


# --- the torch path against a plain-numpy brute force ---------------------------------------------------------------

def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _brute_stats(logits, final, layer0, final_top1, input_ids, next_ids) -> dict[str, np.ndarray]:
    """Every statistic of one layer from its definition, in float64 numpy."""
    x = logits.double().numpy()
    lq = _log_softmax(x)

    def kl(reference):
        lp = _log_softmax(reference.double().numpy())
        p = np.exp(lp)
        return np.where(p > 0, p * (lp - lq), 0.0).sum(-1)

    def rank(ids):
        target = np.take_along_axis(x, ids.numpy()[..., None], -1)
        return (x >= target).sum(-1)

    return {"top1_id": x.argmax(-1), "top1_logit": x.max(-1), "final_top1_rank": rank(final_top1),
            "input_token_rank": rank(input_ids), "next_token_rank": rank(next_ids), "kl_final": kl(final),
            "kl_input": kl(layer0),
            "next_token_logprob": np.take_along_axis(lq, next_ids.numpy()[..., None], -1)[..., 0]}


def _planted_cases():
    """[2, 3, 5] logits with ties (four-way at the top, all equal), raw SmolLM2-sized and extreme values."""
    layer = torch.tensor([[[3.0, 3.0, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, 2.0, 2.0], [250.0, 249.5, -1e4, 0.0, 30.0]],
                          [[0.0, 1.0, 2.0, 3.0, 4.0], [-1e4, 1e4, 1e4, 0.0, 1.0], [0.1, -0.2, 0.1, 0.3, -0.3]]])
    final = torch.tensor([[[0.0, 2.0, 0.0, 1.0, 0.0], [5.0, 0.0, 0.0, 0.0, 0.0], [200.0, 201.0, 150.0, 0.0, 1.0]],
                          [[4.0, 3.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 9.0]]])
    layer0 = torch.tensor([[[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0, 0.0], [-3.0, 2.0, 0.5, 0.5, 1.0]],
                           [[0.0, 0.0, 0.0, 0.0, 0.0], [2.0, 1.0, 0.0, -1.0, -2.0], [0.0, 0.0, 0.0, 0.0, 50.0]]])
    final_top1 = final.argmax(-1)
    input_ids = torch.tensor([[2, 4, 0], [3, 2, 1]])  # (0,0) inside the four-way tie, (0,1) in the all-equal row
    next_ids = torch.tensor([[0, 1, 1], [4, 0, 3]])
    return layer, final, layer0, final_top1, input_ids, next_ids


def test_torch_layer_stats_equal_numpy_brute_force_on_batched_planted_logits():
    layer, final, layer0, final_top1, input_ids, next_ids = _planted_cases()
    expected = _brute_stats(layer, final, layer0, final_top1, input_ids, next_ids)
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    stats = _layer_stats_torch(layer.clone(), final_top1, input_ids, next_ids, references, scratch)
    assert set(stats) == set(expected)
    for key, value in expected.items():
        assert stats[key].shape == (2, 3), key
        np.testing.assert_allclose(stats[key].double().numpy(), value, rtol=1e-5, atol=1e-4, err_msg=key)
    assert stats["input_token_rank"][0, 0] == 4 and stats["input_token_rank"][0, 1] == 5  # ties count against


def test_fused_cpu_layer_stats_equal_numpy_brute_force_on_planted_logits():
    """The CPU path (`_layer_stats`, fused kernel) on the same planted rows, flattened to [positions, vocab]."""
    layer, final, layer0, final_top1, input_ids, next_ids = (t.reshape(6, *t.shape[2:]) for t in _planted_cases())
    expected = _brute_stats(layer, final, layer0, final_top1, input_ids, next_ids)
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    stats = lens._layer_stats(layer.clone(), final_top1, input_ids, next_ids, references, scratch)
    assert set(stats) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(stats[key].double().numpy(), value, rtol=1e-5, atol=1e-4, err_msg=key)


def test_chunk_rows_fits_six_float32_arrays_in_an_eighth_of_memory():
    vocab = 1000
    per_row = lens.CHUNK_ARRAYS * vocab * 4  # bytes of one position in every array of a chunk
    assert lens.CHUNK_ARRAYS == 6
    assert lens.chunk_rows(vocab, available_bytes=8 * per_row * 7) == 7
    assert lens.chunk_rows(vocab, available_bytes=8 * per_row * 7 + 8 * per_row - 1) == 7
    assert lens.chunk_rows(vocab, available_bytes=8 * per_row - 1) == 1 and lens.chunk_rows(vocab, 0) == 1


def test_torch_layer_stats_of_the_final_logits_are_trivial():
    """Decoding the model's own logits: KL(final || final) = 0, the final top-1 ranks first and is the top-1."""
    layer, final, layer0, final_top1, input_ids, next_ids = _planted_cases()
    scratch = torch.empty_like(final)
    references = _references(final.clone(), layer0.clone(), scratch)
    stats = _layer_stats_torch(final.clone(), final_top1, input_ids, next_ids, references, scratch)
    np.testing.assert_allclose(stats["kl_final"].numpy(), 0.0, atol=1e-5)
    unique = (final == final.amax(-1, keepdim=True)).sum(-1) == 1
    assert (stats["final_top1_rank"][unique] == 1).all() and (stats["top1_id"] == final_top1).all()


def test_torch_layer_stats_reuse_the_callers_scratch(monkeypatch):
    """No fresh [positions x vocab] buffers per reduction: every rank, the partition and the KL get `scratch`."""
    seen = []

    def spy(name, fn, position):
        def wrapped(*args, **kwargs):
            given = args[position] if len(args) > position else kwargs.get("scratch")
            seen.append((name, given is scratch))
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(lens, "token_rank", spy("token_rank", lens.token_rank, 2))
    monkeypatch.setattr(lens, "_log_partition", spy("_log_partition", lens._log_partition, 1))
    monkeypatch.setattr(lens, "_kl_from", spy("_kl_from", lens._kl_from, 3))
    layer, final, layer0, final_top1, input_ids, next_ids = _planted_cases()
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    seen.clear()
    lens._layer_stats_torch(layer.clone(), final_top1, input_ids, next_ids, references, scratch)
    assert sorted(seen) == sorted([("token_rank", True)] * 3 + [("_log_partition", True), ("_kl_from", True)])


def test_torch_path_lens_of_a_model_ends_at_its_own_logits(monkeypatch):
    """The whole lens through the torch statistics (the GPU path): the last block decoded with `full` is the
    model's own output, so KL(final || last) = 0 and top-1 agreement is 1 there and on the final row."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2, bos_token_id=0,
                                       eos_token_id=0)).eval()
    monkeypatch.setattr(lens, "_layer_stats", lens._layer_stats_torch)
    ids = torch.tensor([[3, 17, 5, 9, 22, 1]])
    table = logit_lens(model, ids)
    with torch.no_grad():
        own = model(ids).logits[0].double().numpy()
    for label in ("2", FINAL):
        rows = table[table["layer"] == label].sort_values("position")
        np.testing.assert_allclose(rows["kl_final"], 0.0, atol=1e-5)
        assert (rows["top1_id"] == rows["final_top1_id"]).all() and (rows["final_top1_rank"] == 1).all()
        assert rows["top1_id"].tolist() == own.argmax(-1).tolist()
        np.testing.assert_allclose(rows["top1_logit"], own.max(-1), rtol=1e-5, atol=1e-5)
        lq = _log_softmax(own)
        np.testing.assert_allclose(rows["next_token_logprob"].iloc[:-1], lq[np.arange(5), ids[0, 1:].numpy()],
                                   rtol=1e-5, atol=1e-5)
    first = table[table["layer"] == "0"]
    np.testing.assert_allclose(first["kl_input"], 0.0, atol=1e-5)  # the input row is its own reference


# --- logit_lens_texts ----------------------------------------------------------------------------------------------

class _BosTokenizer:
    """Bytes, preceded by a BOS id (250) when special tokens are added; truncates as transformers does (to
    `max_length` unless truncation is explicitly False)."""

    def __call__(self, text, add_special_tokens=True, truncation=None, max_length=None):
        ids = ([250] if add_special_tokens else []) + list(text.encode())
        return {"input_ids": ids[:max_length] if max_length is not None and truncation is not False else ids}

    def decode(self, ids):
        return "".join("<s>" if i == 250 else chr(i) for i in ids)


def test_logit_lens_texts_adds_special_tokens_and_allows_two_tokens():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=0,
                                       eos_token_id=0)).eval()
    table = logit_lens_texts(model, _BosTokenizer(), {"t": "abc"})
    first = table[(table["layer"] == FINAL)].sort_values("position")
    assert first["input_token_id"].tolist() == [250, 97, 98, 99] and first["input_token"].iloc[0] == "<s>"
    for id_column, text_column in (("input_token_id", "input_token"), ("top1_id", "top1_token"),
                                   ("final_top1_id", "final_top1_token"), ("next_token_id", "next_token")):
        expected = [_BosTokenizer().decode([int(i)]) if pd.notna(i) else None for i in table[id_column]]
        assert [t if isinstance(t, str) else None for t in table[text_column]] == expected, text_column
    assert table["next_token"].isna().sum() == table["layer"].nunique()  # the last position of each layer
    sub = logit_lens_texts(model, _BosTokenizer(), {"t": "abc"}, subblocks=True, batch_size=2)
    assert sub["layer"].unique().tolist() == ["0", "1.attn", "1.mlp", FINAL]
    two_texts = logit_lens_texts(model, _BosTokenizer(), {"t": "abc", "u": "de"}, batch_size=1)
    assert two_texts.index.equals(pd.RangeIndex(len(two_texts)))  # one table, not the batches' indexes
    assert two_texts.groupby("text").size().to_dict() == {"t": 4 * 3, "u": 3 * 3}
    two = logit_lens_texts(model, _BosTokenizer(), {"t": "abc"}, max_tokens=2, add_special_tokens=False)
    assert sorted(two["position"].unique()) == [0, 1] and two[two["layer"] == FINAL]["input_token_id"].tolist() == [97, 98]
    with pytest.raises(ValueError, match="max_tokens must be at least 2"):
        logit_lens_texts(model, _BosTokenizer(), {"t": "abc"}, max_tokens=1)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        logit_lens_texts(model, _BosTokenizer(), {"t": "abc"}, batch_size=0)
    with pytest.raises(ValueError, match="text 'e' tokenizes to nothing"):
        logit_lens_texts(model, _BosTokenizer(), {"t": "abc", "e": ""}, add_special_tokens=False)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        lens.logit_lens_sequences(model, [[1, 2]], ["a"], batch_size=0)
    with pytest.raises(ValueError, match="2 sequences but 1 names"):
        lens.logit_lens_sequences(model, [[1, 2], [3, 4]], ["a"])


# --------------------------------------------------------------------------- the general decode path, depth, inputs

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
