# Datasets and models → resources/. Downloads run on the submit host (localrules).

from layerwise.resources.datasets import parse_spec

# The dataset registry (DATASETS: the built-in entries, replaced or extended by config 'datasets'); every entry
# parses and every study names a registered dataset, before any job runs.
for _name, _entry in DATASETS.items():
    parse_spec(_name, _entry)
# Every study names a registered dataset; the names go to USED_DATASETS (rules/common.smk).
for _setting in ("norms.dataset", "geometry.dataset", "training.dataset", "lens.dataset", "probes.dataset",
                 "probes.transfer_dataset"):
    _section, _key = _setting.split(".")
    if config[_section][_key] not in DATASETS:
        raise ValueError(f"config '{_setting}': unknown dataset {config[_section][_key]!r}; "
                         f"registry (config 'datasets') has {sorted(DATASETS)}")
    USED_DATASETS.add(config[_section][_key])


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
    priority: 20  # inputs of the long jobs: a 2-lane run must not start them last
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
    priority: 20  # inputs of the long jobs: a 2-lane run must not start them last
    log:
        "logs/model/{model}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/model.py"
