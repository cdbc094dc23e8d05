"""configs/paper.yaml, the published scale: its DAG has a job for every (study, published model) pair, and
every study runs on each of its models offline, from a Hugging Face cache holding tiny random models of the same
architectures under the same repo ids and revisions, and the datasets under their hub ids and revisions
(at tiny N and L, on a model list reduced per study that keeps every architecture and study: REDUCED)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from layerwise.resources.byte_tokenizer import SPECIAL_TOKENS

from tests.helpers import REPO
from tests.helpers.hub_cache import cache_snapshot, offline_run, parquet_bytes
from tests.helpers.workflow_runs import SNAKEMAKE

PAPER = REPO / "configs" / "paper.yaml"
# What the sources ran (the list, written out here rather than read from the config under test).
GPT2 = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"]
ENCODERS = ["bert-base-uncased", "roberta-base", "albert-base-v2"]
PYTHIA = ["pythia-160m", "pythia-410m"]
PUBLISHED = {"probes": GPT2, "lens": ["gpt2"], "geometry": ENCODERS + GPT2 + PYTHIA,
             "norms": GPT2 + ENCODERS}


def run(workdir: Path, configs: list[Path], *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The repository's workflow on `configs` in `workdir`; by default online-capable (a dry run calls no hub)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", *map(str, configs), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)


def test_paper_config_dag_has_a_job_for_every_study_and_published_model(tmp_path):
    done = run(tmp_path, [PAPER], "-n", "--cores", "1")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    jobs = set(re.findall(r"output: (\S+?),?\n", out)) | set(re.findall(r"(results/\S+?)[,\s]", out))
    expected = {
        "probes": "results/probes/{m}/imdb/n1000_l30_s0/raw/scores.csv",
        "lens": "results/lens/{m}/imdb/n1000_l64_s0.full.summary.csv",
        "geometry": "results/geometry/{m}/enwik8/n160_l512_s0.csv",
        "norms": "results/norms/{m}/imdb/n1000_l30_s0.csv",
    }
    missing = [(study, m) for study, models in PUBLISHED.items() for m in models
               if expected[study].format(m=m) not in jobs]
    assert not missing, missing
    # The AG News transfer of the main setting, raw and with punctuation stripped on both sides.
    assert {"results/probes/gpt2-medium/transfer_raw_n1000.csv", "results/probes/gpt2-medium/transfer_nopunct_n1000.csv"} <= jobs
    assert "results/probes/gpt2-medium/imdb/n5000_l50_s0/raw/scores.csv" in jobs  # Fig 6's largest cell
    # Across training: >= 12 log-spaced Pythia revisions from step0 to step143000 per model, and our own pair.
    for model in PYTHIA:
        steps = sorted(int(s) for s in set(re.findall(rf"results/geometry/{model}@step(\d+)/enwik8/", out)))
        assert len(steps) >= 12 and steps[0] == 0 and steps[-1] == 143000, steps
        ratios = [b / a for a, b in zip(steps[1:], steps[2:])]
        assert max(ratios) < 10, steps  # log-spaced: no decade skipped
    assert "results/training/decoder/seed0/log.csv" in jobs and "results/training/encoder/seed0/log.csv" in jobs


# --------------------------------------------------------------------------- offline end to end

# The tiny override: small N and L, and, to keep this test to a few minutes on 2 cores, each study on fewer of
# the paper config's models, chosen so that every architecture (gpt2, bert, roberta, albert, gpt_neox) and
# every study still runs from the hub cache: the probes on GPT-2 small only (not medium/large/XL: same
# architecture), geometry on one model per architecture, the norms on GPT-2 and BERT, the Pythia-160m
# revision series at its two ends (not 12 revisions, not Pythia-410m: same architecture), a 1-cell grid.
REDUCED = {"probes": ["gpt2"], "lens": ["gpt2"], "norms": ["gpt2", "bert-base-uncased"],
           "geometry": ["gpt2", "bert-base-uncased", "roberta-base", "albert-base-v2", "pythia-160m"]}
TINY_STEPS = ["step0", "step143000"]  # what n_revisions: 2 asks for: the two ends
TINY_SIZES = {
    "device": "cpu",
    "data": {"search_path": []},
    "extraction": {"max_batch_tokens": 256},
    "norms": {"models": REDUCED["norms"], "n_texts": 8, "max_tokens": 12},
    "probes": {"models": REDUCED["probes"], "n_texts": 8, "max_tokens": 12, "probe": {"C": 1.0, "max_epochs": 20},
               "tree": {"max_depth": 4}, "stability_seeds": [0, 1], "grid": {"n_texts": [8], "max_tokens": [8, 12]},
               "reductions": {"methods": ["pca"], "n_per_layer": 10}},
    "lens": {"models": REDUCED["lens"], "n_texts": 8, "max_tokens": 12, "example_max_tokens": 16,
             "heatmap_max_positions": 8, "decoders": ["full"], "heatmap_values": ["top1_logit", "final_top1_rank"]},
    "geometry": {"models": REDUCED["geometry"], "n_texts": 8, "max_tokens": 16, "batch_size": 32, "block_size": 16,
                 "n_candidates": 4},
    "training": {"n_layers": 1, "width": 16, "n_heads": 2, "seq_len": 16, "batch_size": 4, "max_steps": 4,
                 "warmup_steps": 1, "n_checkpoints": 2, "eval_every": 2, "eval_batches": 1, "heldout_chunks": 8,
                 "hub": {"pythia-160m": {"id": "EleutherAI/pythia-160m", "n_revisions": len(TINY_STEPS)}}},
}


def word_tokenizer(texts: list[str]):
    """A word-level tokenizer over `texts` (the byte tokenizer's special tokens). Words, not bytes: with 256
    byte tokens most layer-0 vectors of a model without position embeddings (GPT-NeoX) would be exact
    duplicates, which leaves TwoNN no distinct neighbours in a tiny batch."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=4000,
                                                              special_tokens=list(SPECIAL_TOKENS.values())))
    return PreTrainedTokenizerFast(tokenizer_object=core, model_max_length=1024, **SPECIAL_TOKENS)


def tiny_hub_model(model_type: str, folder: Path, seed: int, tok) -> None:
    """A random-weight model of `model_type` (2 layers, width 32) with tokenizer `tok`, saved as the hub
    would serve it (config.json, model.safetensors, tokenizer files)."""
    from transformers import (AlbertConfig, AlbertModel, BertConfig, BertModel, GPT2Config, GPT2LMHeadModel,
                              GPTNeoXConfig, GPTNeoXForCausalLM, RobertaConfig, RobertaModel)

    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                  eos_token_id=tok.eos_token_id)
    size = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64)
    config, cls = {
        "gpt2": (lambda: GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=1024, **common), GPT2LMHeadModel),
        "bert": (lambda: BertConfig(max_position_embeddings=512, **size, **common), BertModel),
        # RoBERTa's positions start after its padding index.
        "roberta": (lambda: RobertaConfig(max_position_embeddings=512 + tok.pad_token_id + 2, **size, **common),
                    RobertaModel),
        "albert": (lambda: AlbertConfig(embedding_size=16, max_position_embeddings=512, **size, **common),
                   AlbertModel),
        "gpt_neox": (lambda: GPTNeoXConfig(max_position_embeddings=2048, **size, **common), GPTNeoXForCausalLM),
    }[model_type]
    torch.manual_seed(seed)
    cls(config()).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)


def build_hub_cache(hf_home: Path, paper: dict, data: Path, tmp: Path) -> dict[tuple[str, str], str]:
    """Every model and dataset repo the paper config names, at the revisions it names; returns the commits."""
    arch = {"gpt2": "gpt2", "bert": "bert", "roberta": "roberta", "albert": "albert", "pythia": "gpt_neox"}
    imdb = pd.read_json(data / "imdb_test.jsonl.gz", lines=True).sample(200, random_state=0)
    ag_news = pd.read_csv(data / "ag_news_test.csv", header=None, names=["label", "title", "description"]).head(200)
    ag_news = pd.DataFrame({"text": ag_news["title"] + " " + ag_news["description"], "label": ag_news["label"] - 1})
    enwik8 = (data / "enwik8_small.xml").read_text(errors="replace")[:20_000].splitlines()
    tok = word_tokenizer([*imdb["text"], *ag_news["text"], *enwik8])
    wanted = {(m["id"], m["revision"]) for m in paper["models"].values()}  # all nine, used or not
    wanted |= {(e["id"], step) for e in TINY_SIZES["training"]["hub"].values() for step in TINY_STEPS}
    commits = {}
    for seed, (repo, revision) in enumerate(sorted(wanted)):
        folder = tmp / f"model{seed}"
        tiny_hub_model(next(v for k, v in arch.items() if k in repo.lower()), folder, seed, tok)
        commits[repo, revision] = cache_snapshot(hf_home, repo, revision, folder)
    files = {"stanfordnlp/imdb": {"plain_text/test-00000-of-00001.parquet": parquet_bytes(imdb[["text", "label"]])},
             "fancyzhx/ag_news": {"data/test-00000-of-00001.parquet": parquet_bytes(ag_news)},
             "LTCB/enwik8": {"enwik8/train/0000.parquet": parquet_bytes(pd.DataFrame({"text": enwik8}))}}
    for name, entry in paper["datasets"].items():
        commits[entry["id"], entry["revision"]] = cache_snapshot(hf_home, entry["id"], entry["revision"],
                                                                 files[entry["id"]], repo_type="dataset")
    return commits


def study_targets(config: dict) -> list[str]:
    """One result of each study per model of `config`, the geometry of the hub series' revisions and of our own
    trained pair, and every dataset's record. (Not the appendix's provenance table: it reads every result.)"""
    probes, lens, norms, geometry = (config[k] for k in ("probes", "lens", "norms", "geometry"))
    main = f"n{probes['n_texts']}_l{probes['max_tokens']}_s0"
    targets = [f"results/probes/{m}/imdb/{main}/raw/scores.csv" for m in probes["models"]]
    targets += [f"results/lens/{m}/imdb/n{lens['n_texts']}_l{lens['max_tokens']}_s0.full.summary.csv"
                for m in lens["models"]]
    targets += [f"results/norms/{m}/imdb/n{norms['n_texts']}_l{norms['max_tokens']}_s0.csv" for m in norms["models"]]
    sampling = f"n{geometry['n_texts']}_l{geometry['max_tokens']}_s0"
    targets += [f"results/geometry/{m}/enwik8/{sampling}.csv"
                for m in [*geometry["models"], *(f"pythia-160m@{step}" for step in TINY_STEPS)]]
    targets += [f"results/training/{kind}/seed0/geometry.csv" for kind in ("decoder", "encoder")]
    return [*targets, *(f"resources/datasets/{name}.json" for name in config["datasets"])]


@pytest.mark.slow
def test_paper_config_runs_every_study_offline_from_a_hub_cache(tmp_path, shared_data):
    """Every study of the paper config on each of its (reduced) models, every hub model and dataset read from
    the cache at the commit its revision names. Not the figures, the appendix and the PDF: the same rules draw
    and typeset them in the tiny run (tests/workflow/test_end_to_end.py), and building them here too made this
    the suite's longest test (14 minutes)."""
    paper = yaml.safe_load(PAPER.read_text())
    hf_home = tmp_path / "hf-home"
    commits = build_hub_cache(hf_home, paper, shared_data, tmp_path)
    # The paper config with the tiny override applied per section (Snakemake's own merge of two config files
    # is deep, and could not drop Pythia-410m's revision series).
    tiny = {**paper, **{k: v if not isinstance(v, dict) else {**paper.get(k, {}), **v} for k, v in TINY_SIZES.items()}}
    override, workdir, env = offline_run(tmp_path, hf_home, tiny, "paper_tiny.yaml")

    # An empty cache is refused before any job runs, naming the key, repo, revision and the ways out.
    empty = run(workdir, [override], "-n", "--cores", "1", env={**env, "HF_HOME": str(tmp_path / "empty")})
    refusal = empty.stdout + empty.stderr
    assert empty.returncode != 0 and "Job stats" not in refusal
    assert re.search(r"config 'models\.\S+': hub model '\S+' at revision '\S+' is not available", refusal)
    assert "source: local" in refusal and "hf download" in refusal

    start = time.monotonic()
    done = run(workdir, [override], "--cores", "2", *study_targets(tiny), env=env)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-5000:]
    print(f"paper config, tiny sizes, offline: {elapsed:.0f} s")

    # Every hub model resolved to the commit its revision names in the cache.
    used = sorted({m for models in REDUCED.values() for m in models})
    for key in used:
        spec = paper["models"][key]
        card = json.loads((workdir / f"resources/models/{key}/layerwise_model.json").read_text())
        commit = commits[spec["id"], spec["revision"]]
        assert card["commit"] == commit and card["revision"] == spec["revision"]
        assert Path(card["folder"]).is_relative_to(hf_home / "hub")  # the standard cache, no private copy
    for step in TINY_STEPS:
        card = json.loads((workdir / f"resources/models/pythia-160m@{step}/layerwise_model.json").read_text())
        assert card["commit"] == commits["EleutherAI/pythia-160m", step]
    for name, entry in paper["datasets"].items():
        provenance = json.loads((workdir / f"resources/datasets/{name}.json").read_text())
        assert provenance["origin"] == "hub" and provenance["commit"] == commits[entry["id"], entry["revision"]]
    # Every study ran on each of its models, from the hub cache.
    for study, models in REDUCED.items():
        for m in models:
            assert list((workdir / "results" / study / m).rglob("*.csv")), (study, m)
    for step in TINY_STEPS:  # the hub series, and our own pair beside it
        assert (workdir / f"results/geometry/pythia-160m@{step}/enwik8/n8_l16_s0.csv").is_file()
    assert (workdir / "results/training/decoder/seed0/geometry.csv").is_file()
