# Hidden states of every layer → activation stores (GPU when there is one). A causal decoder's smaller
# cells (first n texts, first l tokens) are sliced from its largest store instead of re-running it.

import re

from layerwise.activations.plan import (declared_facts, declared_kind, declared_sizes, extraction_mem_mb, requested_cells,
                                        slice_mem_mb, slice_sources)

EXTRACTION = config["extraction"]
SLICE_CHUNK_ROWS = 4096


MODEL_KINDS = {key: declared_kind(spec) for key, spec in config["models"].items()}
SLICED = {cell.path: source for cell, source in slice_sources(requested_cells(config), MODEL_KINDS).items()}


rule extract:
    input:
        card=lambda wc: model_card(wc.model),
        table="resources/datasets/{dataset}.parquet",
        provenance="resources/datasets/{dataset}.json",
    output:
        store=directory("results/activations/{model}/{dataset}/n{n}_l{length}_s{seed}"),
    params:
        library=library("extract.py"),
        dtype=EXTRACTION["dtype"],
        max_batch_tokens=EXTRACTION["max_batch_tokens"],
        min_tokens=EXTRACTION["min_tokens"],
        device=DEVICE,
        declared=lambda wc: declared_facts(MODELS[wc.model]),
    threads: COMPUTE_THREADS
    priority: 20  # inputs of the long probe fits: measured, SmolLM2's N=1000 stores otherwise came at minute 20
    resources:
        gpu=lambda wc: model_gpus(wc.model),
        mem_mb=lambda wc: extraction_mem_mb(n_texts=int(wc.n), max_tokens=int(wc.length), dtype=EXTRACTION["dtype"],
                                            max_batch_tokens=EXTRACTION["max_batch_tokens"],
                                            weights=host_weight_bytes(MODELS[wc.model], DEVICE),
                                            **declared_sizes(MODELS[wc.model])),
    log:
        "logs/extract/{model}/{dataset}/n{n}_l{length}_s{seed}.log",
    benchmark:
        "results/benchmarks/rules/extract/{model}/{dataset}/n{n}_l{length}_s{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/extract.py"


if SLICED:

    ruleorder: slice_store > extract

    rule slice_store:
        input:
            source=lambda wc: store_dir(SLICED[wc.cell].model, SLICED[wc.cell].dataset, SLICED[wc.cell].n,
                                        SLICED[wc.cell].length, SLICED[wc.cell].seed),
            card=lambda wc: model_card(SLICED[wc.cell].model),
            table=lambda wc: f"resources/datasets/{SLICED[wc.cell].dataset}.parquet",
            provenance=lambda wc: f"resources/datasets/{SLICED[wc.cell].dataset}.json",
        output:
            store=directory("results/activations/{cell}"),
        wildcard_constraints:
            cell="|".join(re.escape(path) for path in sorted(SLICED)),
        params:
            library=library("slice_store.py"),
            min_tokens=EXTRACTION["min_tokens"],
            chunk_rows=SLICE_CHUNK_ROWS,
        threads: 1  # copies rows between memory maps: I/O, no compute
        resources:
            mem_mb=lambda wc: slice_mem_mb(**declared_sizes(MODELS[SLICED[wc.cell].model]),
                                           dtype=EXTRACTION["dtype"], chunk_rows=SLICE_CHUNK_ROWS),
        log:
            "logs/slice_store/{cell}.log",
        benchmark:
            "results/benchmarks/rules/slice_store/{cell}.tsv"
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/slice_store.py"
