# Datasets and models → resources/. Downloads run on the submit host (localrules).


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
        spec=lambda wc: config["models"][wc.model],
    log:
        "logs/model/{model}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/model.py"
