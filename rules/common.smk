# Path builders, wildcard constraints, registries and config lookups shared by all the includes. Study-agnostic,
# it uses no name defined in a later include (a study's own helpers live beside its rules, in rules/<study>_inputs.smk).

import json
from pathlib import Path

from layerwise.workflow.code_deps import library_digest
from layerwise.resources.datasets import DEFAULT_DATASETS, check_hub_cache as check_hub_dataset, parse_spec
from layerwise.resources.models import (check_context, check_hub_cache, hub_offline, resolved_device_setting,
                                        resolved_dtype, validate_spec)
from layerwise.activations.plan import (BASE_MB, analysis_mem_mb, declared_parameters, declared_sizes,
                                        gpus_needed, host_weight_bytes, variant_n_texts)
from layerwise.training.checkpoints import hub_checkpoint_models

for _key, _spec in config["models"].items():
    validate_spec(_key, _spec)

# The registries the rules read: config's entries plus what follows from them (the built-in datasets, which an
# entry of config 'datasets' replaces or extends; every published checkpoint of `training.hub` as a model
# `<key>@step<N>`). Derived once here: config itself is never changed at parse time.
DATASETS = {**DEFAULT_DATASETS, **config["datasets"]}
MODELS = {**config["models"], **hub_checkpoint_models(config["training"]["hub"], config["models"])}
# config with its registries completed: what preflight checks and the provenance hash covers.
REGISTRY_CONFIG = dict(config, datasets=DATASETS, models=MODELS)

# The device the jobs run on, resolved before planning: `auto` and `cpu` on a CPU-only machine are one run (no
# rerun when the spelling changes), and a missing GPU is refused here. On a cluster the submit host may have no
# GPU while the nodes do, so there (and in a job's own parse on its node) the setting is passed on as written.
DEVICE = (resolved_device_setting(config["device"]) if workflow.local_exec and workflow.is_main_process
          else config["device"])

PAPER_PDF = "results/paper/layerwise.pdf"
# Each study appends what the paper needs (figures, macro files) to this list.
PAPER_INPUTS = []
# Models any study uses; their cards feed the reproducibility appendix.
USED_MODELS = set()
# Datasets any study uses (rules/resources.smk); their provenance (resolved hub commit or local path) feeds the appendix.
USED_DATASETS = set()


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.@-]*",
    dataset=r"[a-z0-9_]+(\.nopunct)?",
    n=r"\d+",
    length=r"\d+",
    seed=r"\d+",


def library(script):
    """Digest of the library code `scripts/<script>` imports: a rule parameter, so that editing a
    library module re-runs exactly the rules that use it (Snakemake itself only watches the script)."""
    return library_digest(Path(workflow.basedir) / "scripts" / script, SRC)


def check_models(section, keys):
    """Registry keys of a study section, refused (naming the key) before any job if unknown or if the
    section's sequence lengths exceed a model's declared context."""
    unknown = [k for k in keys if k not in config["models"]]
    if unknown:
        raise ValueError(f"config '{section}': unknown model key(s) {unknown}; registry has {sorted(config['models'])}")
    lengths = {f"{section}.{s}": config[section][s] for s in ("max_tokens", "example_max_tokens") if s in config[section]}
    if config[section].get("grid", {}).get("max_tokens"):
        lengths[f"{section}.grid.max_tokens"] = max(config[section]["grid"]["max_tokens"])
    for setting, n_tokens in lengths.items():
        for key in keys:
            check_context(key, config["models"][key], setting, n_tokens)
    USED_MODELS.update(keys)
    return keys


def sampling(n, length, seed=None):
    return f"n{n}_l{length}_s{config['seed'] if seed is None else seed}"


def store_dir(model, dataset, n, length, seed=None):
    return f"results/activations/{model}/{dataset}/{sampling(n, length, seed)}"


def study_table(study, model, section, ext="csv"):
    """results/<study>/<model>/<dataset>/<sampling>.<ext> for a study section with dataset/n_texts/max_tokens."""
    return f"results/{study}/{model}/{section['dataset']}/{sampling(section['n_texts'], section['max_tokens'])}.{ext}"


def study_dir(study, model, section):
    """results/<study>/<model>/<dataset>/<sampling>: a folder per store, for studies with several outputs."""
    return study_table(study, model, section, ext="")[:-1]


def model_card(model):
    return f"resources/models/{model}/layerwise_model.json"


def display_name(model):
    return MODELS[model].get("display", model)


def checkpoint_path(kind, step, seed):
    return f"resources/checkpoints/{kind}/seed{seed}/step{step}"


TRAIN_KINDS = ["decoder", "encoder"]


def training_runs(name, kinds=TRAIN_KINDS):
    """One file of every Study 3 training run (kind x seed of `training.seeds`)."""
    return [f"results/training/{kind}/seed{s}/{name}" for kind in kinds for s in config["training"]["seeds"]]


def check_hub_cache_before_jobs(models):
    """With HF_HUB_OFFLINE set, refuse hub models and hub datasets whose revision is not cached, naming the
    config key; a local dataset with a hub fallback is checked when its job runs (its file may appear)."""
    if not hub_offline():
        return
    for key in sorted(models):
        if MODELS[key]["source"] == "hf":
            check_hub_cache(key, MODELS[key])
    for name in sorted(USED_DATASETS):
        spec = parse_spec(name, DATASETS[name])
        if spec.source == "hf":
            check_hub_dataset(spec)


# Threads and memory of compute jobs: each declares `threads: COMPUTE_THREADS` (torch and BLAS follow it
# through layerwise.workflow.runlog) and its `mem_mb` from the size of the data it holds.
COMPUTE_THREADS = config["threads"]
# Jobs that cannot use a second core (scikit-learn's tree is single-threaded) or that are too small for it to
# pay (one checkpoint's held-out geometry, one example text through the lens: mostly start-up and loading)
# take one, so on 2 cores another job runs beside them.
SERIAL_THREADS = 1


def store_mem_mb(wc, copies):
    """mem_mb of a job over the store {model}/{dataset}/{sampling}: `copies` float32 copies of its vectors."""
    n, length, _ = wc.sampling.split("_")
    return analysis_mem_mb(n_texts=int(n[1:]), max_tokens=int(length[1:]), copies=copies,
                           **declared_sizes(MODELS[wc.model]))


def model_mem_mb(wc, extra_mb):
    """mem_mb of a job that runs a model forward: its weights in the dtype it runs in, twice (loading keeps a
    transient copy; once when accelerate shards them onto GPUs) plus `extra_mb` of working memory (e.g. the
    logit lens's positions × vocabulary chunks)."""
    return int(BASE_MB + host_weight_bytes(MODELS[wc.model], DEVICE) / 2**20 + extra_mb)


def model_gpus(model):
    """GPUs a job running `model` asks for: 1, or, for an entry with a `device_map` on a GPU run, as many
    `gpu_memory_gb` GPUs as its weights in their dtype need (layerwise.activations.plan.gpus_needed)."""
    spec = MODELS[model]
    if spec.get("device_map") is None or not str(DEVICE).startswith("cuda"):
        return 1
    dtype = resolved_dtype(str(spec.get("dtype", "auto")), DEVICE)
    return gpus_needed(declared_parameters(spec), dtype, config["gpu_memory_gb"])
