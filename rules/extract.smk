# Hidden states of every layer → activation stores (GPU when there is one). A causal decoder's smaller
# cells (first n texts, first l tokens) are sliced from its largest store instead of re-running it.

import re

from layerwise.store_plan import Cell, declared_kind, extraction_mem_mb, slice_mem_mb, slice_sources

EXTRACTION = config["extraction"]
SLICE_CHUNK_ROWS = 4096


def requested_cells():
    """Every activation store the studies read, from the config (the same cells their rules ask for)."""
    seed, cells = config["seed"], []
    for section in ("norms", "geometry"):
        sec = config[section]
        cells += [Cell(m, sec["dataset"], sec["n_texts"], sec["max_tokens"], seed) for m in sec["models"]]
    pr = config["probes"]
    for m in pr["models"]:
        for dataset in (pr["dataset"], f"{pr['dataset']}.nopunct", pr["transfer_dataset"]):
            cells.append(Cell(m, dataset, pr["n_texts"], pr["max_tokens"], seed))
        cells += [Cell(m, pr["dataset"], n, l, seed) for n in pr["grid"]["n_texts"] for l in pr["grid"]["max_tokens"]]
    return cells


MODEL_KINDS = {key: declared_kind(spec) for key, spec in config["models"].items()}
SLICED = {cell.path: source for cell, source in slice_sources(requested_cells(), MODEL_KINDS).items()}


def model_sizes(model):
    """(n_layers, width) declared in the registry; unknown sizes are assumed large (1 GB-class model)."""
    spec = config["models"][model]
    return int(spec.get("n_layers", 32)), int(spec.get("width", 1024))


def declared_facts(model):
    """What the registry says of a model that the plan and the estimates rely on; the job checks it."""
    spec = config["models"][model]
    return {key: spec[key] for key in ("n_layers", "width") if key in spec} | {"kind": MODEL_KINDS[model]}


def extract_mem_mb(wc):
    n_layers, width = model_sizes(wc.model)
    return extraction_mem_mb(n_texts=int(wc.n), max_tokens=int(wc.length), n_layers=n_layers, width=width,
                             dtype=EXTRACTION["dtype"], max_batch_tokens=EXTRACTION["max_batch_tokens"])


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
        device=config["device"],
        declared=lambda wc: declared_facts(wc.model),
    resources:
        mem_mb=extract_mem_mb,
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
        resources:
            mem_mb=lambda wc: slice_mem_mb(*model_sizes(SLICED[wc.cell].model), dtype=EXTRACTION["dtype"],
                                           chunk_rows=SLICE_CHUNK_ROWS),
        log:
            "logs/slice_store/{cell}.log",
        benchmark:
            "results/benchmarks/rules/slice_store/{cell}.tsv"
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/slice_store.py"
