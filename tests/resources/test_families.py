"""Every family of `layerwise.families` on a tiny random model (tests/helpers/tiny_families.py, built offline):
extraction's states are transformers' own `output_hidden_states` (the last one pre-norm), the `full` lens at
the last block is the model's own logits, after-attention streams are what attention adds, and each named
quirk (Gemma's sqrt(d) embeddings and logit soft-cap, OPT's output projection and post-norm variant,
ALBERT's shared block) is what the model does. Ground truth: the models' own forward passes."""

from __future__ import annotations

import pytest
import torch

from layerwise.activations.extract import forward_hidden_states
from layerwise.families import DECODER_FAMILIES, ENCODER_FAMILIES, FAMILIES, apply_softcap, submodule
from layerwise.lens.decode import FINAL, logit_lens, residual_streams
from layerwise.lens.adapters import decode, lens_parts
from layerwise.resources.models import LoadedModel, _facts, base_model, final_norm, model_kind

from tests.helpers.tiny_families import ALL_FAMILIES, N_LAYERS, SOFTCAP, VOCAB, tiny_model

pytestmark = pytest.mark.usefixtures("single_torch_thread")
TOL = dict(atol=1e-5, rtol=1e-5)  # float32, a handful of ops apart at most


@pytest.fixture(scope="module")
def models() -> dict:
    return {family: tiny_model(family) for family in ALL_FAMILIES}


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two texts, the second right-padded: every state is compared at padded positions too."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, VOCAB, (2, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    ids[1, 6:] = 0
    return ids, mask


def loaded(model) -> LoadedModel:
    card = {"key": f"tiny-{model.config.model_type}", "source": "random", "model_id": "random", "revision": "s0"}
    return LoadedModel(model=model, tokenizer=None, facts=_facts(card, model, model.config, model_kind(model.config)),
                       device=torch.device("cpu"))


def own_hidden_states(model, ids, mask, *, tie: bool) -> tuple:
    """transformers' hidden_states of the base model; `tie=False` asks for the pre-norm last entry."""
    base = base_model(model)
    saved = model.config.__dict__.get("tie_last_hidden_states", None)
    model.config.tie_last_hidden_states = tie
    try:
        with torch.inference_mode():
            out = base(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
    finally:
        if saved is None:
            del model.config.tie_last_hidden_states
        else:
            model.config.tie_last_hidden_states = saved
    return out.hidden_states, out.last_hidden_state


def test_the_table_names_the_issues_families():
    assert set(DECODER_FAMILIES) == {"gpt2", "gpt_neox", "llama", "mistral", "qwen2", "qwen3", "gemma2",
                                     "gemma3_text", "phi3", "olmo2", "gptj", "gpt_neo", "opt", "falcon"}
    assert set(ENCODER_FAMILIES) == {"bert", "roberta", "albert", "distilbert", "deberta-v2", "electra",
                                     "modernbert"}
    for name in ("gemma2", "opt", "falcon", "gptj", "albert"):
        assert FAMILIES[name].quirks(), name  # each quirk the issue names is written down


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_extraction_states_are_the_models_hidden_states_pre_norm_last(models, batch, family):
    model, (ids, mask) = models[family], batch
    states, post_norm = forward_hidden_states(loaded(model), ids, mask)
    pre_norm, last = own_hidden_states(model, ids, mask, tie=False)
    assert len(states) == len(pre_norm) == N_LAYERS + 1
    honours_tie = not FAMILIES[family].post_norm_last_hidden_state
    for k, (ours, theirs) in enumerate(zip(states, pre_norm if honours_tie else pre_norm[:-1])):
        torch.testing.assert_close(ours, theirs, **TOL, msg=lambda m: f"{family} layer {k}: {m}")
    norm = final_norm(model)
    if not honours_tie:  # hidden_states[-1] is the post-norm state: ours is its input
        torch.testing.assert_close(post_norm, pre_norm[-1], **TOL)
        with torch.inference_mode():
            torch.testing.assert_close(norm(states[-1]), pre_norm[-1], **TOL)
    assert (post_norm is None) == (norm is None) == (FAMILIES[family].final_norm is None)
    if norm is None:  # post-norm encoder: the last block's output is the model's output
        torch.testing.assert_close(states[-1], last, **TOL)
        return
    project_out = submodule(base_model(model), FAMILIES[family].project_out)
    with torch.inference_mode():
        torch.testing.assert_close(project_out(post_norm) if project_out is not None else post_norm, last, **TOL)
        assert not torch.allclose(states[-1], post_norm, atol=1e-3)  # the final norm did something
    tied, _ = own_hidden_states(model, ids, mask, tie=True)
    if tied[-1].shape == post_norm.shape:  # transformers >= 5: the default last entry is post-norm
        torch.testing.assert_close(post_norm, tied[-1], **TOL)


@pytest.mark.parametrize("family", DECODER_FAMILIES)
def test_full_lens_at_the_last_block_is_the_models_own_logits(models, batch, family):
    model, (ids, mask) = models[family], batch
    streams, logits = residual_streams(model, ids, mask)
    assert [s.label for s in streams] == [str(i) for i in range(N_LAYERS + 1)]
    with torch.no_grad():
        torch.testing.assert_close(decode(lens_parts(model), streams[-1].hidden, "full"), logits, **TOL)
    table = logit_lens(model, ids, mask, decoder="full", subblocks=True)
    last = table[table["layer"] == f"{N_LAYERS}.mlp"].reset_index(drop=True)
    final = table[table["layer"] == FINAL].reset_index(drop=True)
    assert (last["top1_id"] == final["top1_id"]).all() and (last["kl_final"] < 1e-5).all()
    for decoder in ("norm_only", "none"):  # the variants run on every family too
        assert logit_lens(model, ids, mask, decoder=decoder)["kl_final"].notna().all()


@pytest.mark.parametrize("family", DECODER_FAMILIES)
def test_after_attention_stream_is_what_attention_adds(models, batch, family):
    """With the MLP's addition silenced, a block's output is the residual plus attention's addition only, so
    the lens's "i.attn" stream must equal its "i.mlp" stream (block output); with the MLP on, they differ."""
    model, (ids, mask) = models[family], batch
    mlp_name = FAMILIES[family].mlp
    streams = {s.label: s.hidden for s in residual_streams(model, ids, mask, subblocks=True)[0]}
    assert not torch.allclose(streams[f"{N_LAYERS}.attn"], streams[f"{N_LAYERS}.mlp"], atol=1e-3)
    blocks = lens_parts(model).blocks
    handles = [submodule(block, mlp_name).register_forward_hook(lambda _m, _a, out: torch.zeros_like(out))
               for block in blocks]
    try:
        silenced = {s.label: s.hidden for s in residual_streams(model, ids, mask, subblocks=True)[0]}
    finally:
        for handle in handles:
            handle.remove()
    for layer in range(1, N_LAYERS + 1):
        torch.testing.assert_close(silenced[f"{layer}.attn"], silenced[f"{layer}.mlp"], **TOL)


@pytest.mark.parametrize("family", ["gemma2", "gemma3_text"])
def test_gemma_scales_embeddings_and_soft_caps_its_logits(models, batch, family):
    model, (ids, mask) = models[family], batch
    streams, logits = residual_streams(model, ids, mask)
    table = model.get_input_embeddings().weight
    torch.testing.assert_close(streams[0].hidden, table[ids] * model.config.hidden_size ** 0.5, **TOL)
    parts = lens_parts(model)
    assert parts.softcap == SOFTCAP
    with torch.no_grad():
        uncapped = parts.unembed(parts.final_norm(streams[-1].hidden))
        assert uncapped.abs().max() > 2 * SOFTCAP  # the cap bends these logits
        assert logits.abs().max() <= SOFTCAP
        torch.testing.assert_close(apply_softcap(uncapped, SOFTCAP), logits, **TOL)
        torch.testing.assert_close(decode(parts, streams[-1].hidden, "none"),
                                   parts.unembed(streams[-1].hidden))  # variants: the raw unembedding


def test_opt_projects_out_after_the_final_norm_and_its_post_norm_variant_is_refused(models, batch):
    parts = lens_parts(models["opt"])
    assert parts.project_out is not None and parts.project_out.out_features == 16
    post_norm = tiny_model("opt", do_layer_norm_before=False)
    assert final_norm(post_norm) is None
    with pytest.raises(ValueError, match=r"OPTForCausalLM \(model_type='opt'\) has no final norm.*"
                                         r"do_layer_norm_before=False"):
        lens_parts(post_norm)
    states, after = forward_hidden_states(loaded(post_norm), *batch)  # extraction still reads it
    pre_norm, _ = own_hidden_states(post_norm, *batch, tie=False)
    assert after is None
    for ours, theirs in zip(states, pre_norm):
        torch.testing.assert_close(ours, theirs, **TOL)


def test_albert_shares_one_block_across_layers(models):
    model = models["albert"]
    groups = model.encoder.albert_layer_groups
    assert len(groups) == 1 and model.config.num_hidden_layers == N_LAYERS  # one module, fired per layer


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_tied_heads_are_recorded_as_such(models, family):
    model = models[family]
    facts = loaded(model).facts
    head = model.get_output_embeddings() if family in DECODER_FAMILIES else None
    expected = head is not None and head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert facts.tied_embeddings == expected or head is None
    assert facts.kind == FAMILIES[family].kind


def test_an_unlisted_family_is_refused_by_name():
    from transformers import BloomConfig, BloomForCausalLM

    bloom = BloomForCausalLM(BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=1, n_head=4))
    with pytest.raises(ValueError, match=r"BloomForCausalLM \(model_type='bloom'\).*no lens adapter.*"
                                         r"falcon, gemma2, gemma3_text, gpt2, gpt_neo, gpt_neox, gptj, llama"):
        lens_parts(bloom)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_every_family_is_a_random_registry_architecture(family, tmp_path):
    """`source: random, architecture: <family>` materialises, loads (the causal-LM class for a decoder) and
    extracts every layer; a decoder's lens runs on it."""
    from tests.helpers import random_spec
    from layerwise.resources.models import load_model, materialise, random_kind, validate_spec

    spec = random_spec(family)
    validate_spec("tiny", spec)
    kind = FAMILIES[family].kind
    assert random_kind(family) == kind
    loaded_model = load_model(materialise("tiny", spec, tmp_path), device="cpu", lm_head=kind == "decoder")
    assert loaded_model.facts.model_type == family and loaded_model.facts.kind == kind
    assert (loaded_model.facts.n_layers, loaded_model.facts.width) == (2, 32)
    ids = torch.tensor([loaded_model.tokenizer("Layer by layer.")["input_ids"]])
    states, _ = forward_hidden_states(loaded_model, ids, torch.ones_like(ids))
    assert len(states) == 3 and all(torch.isfinite(s).all() for s in states)
    if kind == "decoder":
        assert logit_lens(loaded_model.model, ids)["kl_final"].notna().all()


def test_provenance_knows_the_encoder_families_without_importing_torch():
    """workflow.provenance keeps its own list of encoder architectures (the report rules run without torch): it
    must name exactly the table's encoders."""
    from layerwise.families import FAMILIES
    from layerwise.workflow.provenance import _ENCODER_ARCHITECTURES
    assert set(_ENCODER_ARCHITECTURES) == {k for k, f in FAMILIES.items() if f.kind == "encoder"}
