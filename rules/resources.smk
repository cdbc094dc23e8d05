# Datasets and models → resources/. Downloads run on the submit host (localrules).

from layerwise.resources.datasets import check_hub_cache as check_hub_dataset, parse_spec
from layerwise.resources.models import check_hub_cache, hub_offline

# The dataset registry (DATASETS: the built-in entries, replaced or extended by config 'datasets'); every entry
# parses and every study names a registered dataset, before any job runs.
for _name, _entry in DATASETS.items():
    parse_spec(_name, _entry)
# Datasets the studies use; their provenance (resolved hub commit or local path) feeds the appendix.
USED_DATASETS = set()
for _setting in ("norms.dataset", "geometry.dataset", "training.dataset", "lens.dataset", "probes.dataset",
                 "probes.transfer_dataset"):
    _section, _key = _setting.split(".")
    if config[_section][_key] not in DATASETS:
        raise ValueError(f"config '{_setting}': unknown dataset {config[_section][_key]!r}; "
                         f"registry (config 'datasets') has {sorted(DATASETS)}")
    USED_DATASETS.add(config[_section][_key])


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


localrules:
    dataset,
    model,


rule dataset:
    output:
        table="resources/datasets/{dataset}.parquet",
        provenance="resources/datasets/{dataset}.json",
    params:
        library=library("dataset.py"),
        search_path=config["data"]["search_path"],
        allow_hub=config["data"]["allow_hub"],
        entry=lambda wc: DATASETS[wc.dataset.split(".")[0]],
    log:
        "logs/dataset/{dataset}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/dataset.py"


rule model:
    output:
        card="resources/models/{model}/layerwise_model.json",
    params:
        library=library("model.py"),
        # The display name changes figures and text, not the model: left out, so renaming reruns no extraction.
        spec=lambda wc: {k: v for k, v in MODELS[wc.model].items() if k != "display"},
    log:
        "logs/model/{model}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/model.py"
