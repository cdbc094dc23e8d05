"""configs/modern.yaml, every study on four current open decoders: its DAG has each study on each model with
memory requests by dtype, and its hub path runs offline from a Hugging Face cache holding tiny random models
of the same families (llama, qwen2, gemma2, olmo2; tests/helpers/tiny_families.py) under the same repo ids and
revisions, in bfloat16 through accelerate's device_map as the config asks (extraction and the lens's example
texts; the studies' analyses are the ones configs/paper.yaml's offline test runs)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from layerwise.resources.byte_tokenizer import make_byte_tokenizer
from layerwise.activations.plan import extraction_mem_mb, host_weight_bytes

from tests.helpers import REPO
from tests.helpers.hub_cache import cache_snapshot, offline_run, parquet_bytes
from tests.helpers.tiny_families import tiny_model
from tests.helpers.workflow_runs import SNAKEMAKE

MODERN = REPO / "configs" / "modern.yaml"
FAMILY = {"meta-llama/Llama-3.1-8B": "llama", "Qwen/Qwen2.5-7B": "qwen2", "google/gemma-2-9b": "gemma2",
          "allenai/OLMo-2-1124-7B": "olmo2"}
STUDIES = ("norms", "probes", "lens", "geometry")


def run(workdir: Path, config: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile",
           str(config), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)


def step_of(revision: str) -> int:
    """The training step an OLMo branch name carries: stage1-step1000-tokens5B -> 1000."""
    return int(re.search(r"-step(\d+)-", revision).group(1))


def online_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}


def test_modern_config_plans_every_study_on_every_model_with_memory_by_dtype(tmp_path):
    modern = yaml.safe_load(MODERN.read_text())
    assert {spec["id"] for spec in modern["models"].values()} == set(FAMILY)
    done = run(tmp_path, MODERN, "-n", "--cores", "1", env=online_env())
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    for study in STUDIES:
        assert set(modern[study]["models"]) == set(modern["models"]), study
        for key in modern["models"]:
            assert f"results/{study}/{key}/" in out, (study, key)
    extract = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"rule extract:\n(?:    .*\n)*?    output: results/activations/([^/]+)/imdb/n1000_l30_s0\n(?:    .*\n)*?"
        r"    resources: .*?mem_mb=(\d+)", out)}
    assert set(extract) == set(modern["models"]), extract
    for key, mem_mb in extract.items():  # bfloat16 weights (2 bytes a parameter), declared parameter counts
        spec = modern["models"][key]
        expected = extraction_mem_mb(n_texts=1000, max_tokens=30, n_layers=spec["n_layers"], width=spec["width"],
                                     dtype="float16", max_batch_tokens=modern["extraction"]["max_batch_tokens"],
                                     weights=host_weight_bytes(spec, "cpu"))
        assert mem_mb == expected, (key, mem_mb, expected)
        assert host_weight_bytes(spec, "cpu") == 2 * 2 * spec["n_parameters"]
    # Study 3 across training: every OLMo-2 pretraining checkpoint is extracted and measured as the final model
    # is, and asks for the memory the final model asks for (it takes olmo-2-7b's settings through `like:`)
    enwik8 = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"rule extract:\n(?:    .*\n)*?    output: results/activations/([^/]+)/enwik8/n160_l512_s0\n(?:    .*\n)*?"
        r"    resources: .*?mem_mb=(\d+)", out)}
    for key, entry in modern["training"]["hub"].items():
        for revision in entry["revisions"]:
            assert f"results/geometry/{key}@step{step_of(revision)}/enwik8/" in out, revision
            assert enwik8[f"{key}@step{step_of(revision)}"] == enwik8[entry["like"]], (revision, enwik8)


def build_hub_cache(hf_home: Path, modern: dict, data: Path, tmp: Path) -> None:
    """Each model repo of the config at its revision: a tiny random model of its family with the byte
    tokenizer; and the three datasets at theirs, from the shared data."""
    tok = make_byte_tokenizer()
    ids = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
               eos_token_id=tok.eos_token_id)
    for seed, spec in enumerate(modern["models"].values()):
        folder = tmp / f"model{seed}"
        model = tiny_model(FAMILY[spec["id"]], seed=seed, max_position_embeddings=512, **ids)
        model.save_pretrained(folder, safe_serialization=True)
        tok.save_pretrained(folder)
        cache_snapshot(hf_home, spec["id"], spec["revision"], folder)
    for key, entry in modern["training"]["hub"].items():  # published checkpoints: one tiny model per revision
        family = FAMILY[entry["id"]]
        for i, revision in enumerate(entry["revisions"]):
            folder = tmp / f"{key}-{i}"
            tiny_model(family, seed=100 + i, max_position_embeddings=512, **ids).save_pretrained(
                folder, safe_serialization=True)
            tok.save_pretrained(folder)
            cache_snapshot(hf_home, entry["id"], revision, folder)
    imdb = pd.read_json(data / "imdb_test.jsonl.gz", lines=True).sample(100, random_state=0)
    ag_news = pd.read_csv(data / "ag_news_test.csv", header=None, names=["label", "title", "description"]).head(100)
    ag_news = pd.DataFrame({"text": ag_news["title"] + " " + ag_news["description"], "label": ag_news["label"] - 1})
    enwik8 = (data / "enwik8_small.xml").read_text(errors="replace")[:20_000].splitlines()
    files = {"stanfordnlp/imdb": {"plain_text/test-00000-of-00001.parquet": parquet_bytes(imdb[["text", "label"]])},
             "fancyzhx/ag_news": {"data/test-00000-of-00001.parquet": parquet_bytes(ag_news)},
             "LTCB/enwik8": {"enwik8/train/0000.parquet": parquet_bytes(pd.DataFrame({"text": enwik8}))}}
    for entry in modern["datasets"].values():
        cache_snapshot(hf_home, entry["id"], entry["revision"], files[entry["id"]], repo_type="dataset")


@pytest.mark.slow
def test_modern_config_hub_path_runs_offline_from_a_cache_of_tiny_models(tmp_path, shared_data):
    pytest.importorskip("accelerate")
    modern = yaml.safe_load(MODERN.read_text())
    hf_home = tmp_path / "hf-home"
    build_hub_cache(hf_home, modern, shared_data, tmp_path)
    tiny = dict(modern, device="cpu", threads=1, data={"allow_hub": True, "search_path": []},
                extraction={"max_batch_tokens": 256},
                # the tiny models' sizes (the extraction job checks them), dtype and device_map kept
                models={k: {**v, "n_layers": 2, "width": 32, "max_positions": 512} for k, v in modern["models"].items()},
                lens={**modern["lens"], "n_texts": 8, "max_tokens": 12, "example_max_tokens": 16})
    override, workdir, env = offline_run(tmp_path, hf_home, tiny, "modern_tiny.yaml")

    empty = run(workdir, override, "-n", "--cores", "1", env={**env, "HF_HOME": str(tmp_path / "empty")})
    refusal = empty.stdout + empty.stderr
    assert empty.returncode != 0 and "Job stats" not in refusal
    assert re.search(r"config 'models\.\S+': hub model '\S+' at revision 'main' is not available", refusal)

    assert run(workdir, override, "-n", "--cores", "1", env=env).returncode == 0  # every revision is cached
    targets = [f"results/activations/{key}/enwik8/n4_l16_s0" for key in modern["models"]]
    targets += [f"results/lens/{key}/examples/plasma.parquet" for key in modern["models"]]
    (hub_key, hub_entry), = modern["training"]["hub"].items()
    first_revision = hub_entry["revisions"][0]
    checkpoint = f"{hub_key}@step{step_of(first_revision)}"
    targets.append(f"results/activations/{checkpoint}/enwik8/n4_l16_s0")
    done = run(workdir, override, "--cores", "2", *targets, env=env)
    assert done.returncode == 0, done.stderr[-5000:]
    for key in modern["models"]:
        manifest = yaml.safe_load((workdir / f"results/activations/{key}/enwik8/n4_l16_s0/manifest.json").read_text())
        assert manifest["model"]["dtype"] == "bfloat16" and manifest["model"]["device_map"] == "auto"
        assert manifest["dtype"] == "float16" and manifest["model"]["model_type"] == FAMILY[modern["models"][key]["id"]]
        lens = pd.read_parquet(workdir / f"results/lens/{key}/examples/plasma.parquet")
        final = lens[lens["layer"] == "final"]
        assert len(final) and torch.isfinite(torch.tensor(lens["kl_final"].to_numpy(dtype=float))).all()
    # the checkpoint ran from its own revision of the repo, in the final model's dtype and sharding
    manifest = yaml.safe_load((workdir / f"results/activations/{checkpoint}/enwik8/n4_l16_s0/manifest.json").read_text())
    assert manifest["model"]["revision"] == first_revision and manifest["model"]["dtype"] == "bfloat16"
    assert manifest["model"]["device_map"] == "auto" and manifest["model"]["model_type"] == "olmo2"


def test_memory_table_of_a_gpu_run_asks_one_40gb_gpu_per_modern_model_and_several_for_70b():
    import sys

    sys.path.insert(0, str(REPO / "tools"))
    from memory_table import table

    modern = yaml.safe_load(MODERN.read_text())
    rows = table(modern, "cuda", 40)
    assert [r["gpus"] for r in rows] == [1, 1, 1, 1] and {r["dtype"] for r in rows} == {"bfloat16"}
    assert all(14 < r["weights_gb"] < 19 for r in rows)
    big = {"models": {"llama-3.1-70b": {"source": "hf", "id": "meta-llama/Llama-3.1-70B", "n_layers": 80,
                                        "width": 8192, "n_parameters": 70.6e9, "dtype": "bfloat16",
                                        "device_map": "auto"}}}
    assert table(big, "cuda", 40)[0]["gpus"] == 5 and table(big, "cuda", 80)[0]["gpus"] == 3
