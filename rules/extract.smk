# Hidden states of every layer → activation stores (GPU when there is one).


rule extract:
    input:
        card=lambda wc: model_card(wc.model),
        table="resources/datasets/{dataset}.parquet",
        provenance="resources/datasets/{dataset}.json",
    output:
        store=directory("results/activations/{model}/{dataset}/n{n}_l{length}_s{seed}"),
    params:
        library=library("extract.py"),
        dtype=config["extraction"]["dtype"],
        max_batch_tokens=config["extraction"]["max_batch_tokens"],
        min_tokens=config["extraction"]["min_tokens"],
        device=config["device"],
    log:
        "logs/extract/{model}/{dataset}/n{n}_l{length}_s{seed}.log",
    benchmark:
        "results/benchmarks/rules/extract/{model}/{dataset}/n{n}_l{length}_s{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/extract.py"
