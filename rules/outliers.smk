# Beyond the sources: which tokens drive the geometry? Outlier tokens (norm > k × the layer's median) and
# massive activations (Sun et al. 2024), attributed: Study 3 with and without them, Study 1's probe without them.
# Runs on the stores of Study 3 (and Study 1 for the probe), keyed by their dataset: any corpus the config names.

OUTLIERS = config["outliers"]
OUTLIER_DETECTION = dict(k=OUTLIERS["k"], absolute=OUTLIERS["massive_absolute"], relative=OUTLIERS["massive_relative"])


localrules:
    outlier_figures,


rule outliers:
    input:
        store="results/activations/{model}/{dataset}/{sampling}",
    output:
        layers="results/outliers/{model}/{dataset}/{sampling}/layers.csv",
        occurrences="results/outliers/{model}/{dataset}/{sampling}/occurrences.csv",
        massive="results/outliers/{model}/{dataset}/{sampling}/massive.csv",
    params:
        library=library("outliers.py"),
        **OUTLIER_DETECTION,
        backend=config["backend"],
        seed=config["seed"],
        twonn=OUTLIERS["twonn"],
        batch_size=GEOMETRY["batch_size"],
        fraction=GEOMETRY["twonn_fraction"],
        block_size=GEOMETRY["block_size"],
        n_candidates=GEOMETRY["n_candidates"],
        include_position0=GEOMETRY["include_position0"],
    threads: COMPUTE_THREADS
    resources:
        mem_mb=lambda wc: store_mem_mb(wc, 1.5),
        gpu=1,
    log:
        "logs/outliers/{model}/{dataset}/{sampling}.log",
    benchmark:
        "results/benchmarks/rules/outliers/{model}/{dataset}/{sampling}.tsv"
    conda:
        "../envs/gpu.yaml"
    script:
        "../scripts/outliers.py"


rule outlier_probe:
    input:
        store="results/activations/{model}/{dataset}/{sampling}",
    output:
        scores="results/outliers/{model}/{dataset}/{sampling}/probe.csv",
        dims="results/outliers/{model}/{dataset}/{sampling}/probe_dims.csv",
    params:
        library=library("outlier_probe.py"),
        **OUTLIER_DETECTION,
        seed=config["seed"],
        test_fraction=PROBES["test_fraction"],
        probe=dict(PROBES["probe"], device=DEVICE),
        include_position0=PROBES["include_position0"],
        mask_k=PROBES["mask_k"],
        top_n=PROBES["top_n"],
    threads: COMPUTE_THREADS
    resources:
        mem_mb=lambda wc: store_mem_mb(wc, 3.5),
        gpu=1,
    log:
        "logs/outliers/{model}/{dataset}/{sampling}/probe.log",
    benchmark:
        "results/benchmarks/rules/outlier_probe/{model}_{dataset}_{sampling}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/outlier_probe.py"


OUTLIER_PROBE_MODELS = [m for m in PROBES["models"] if OUTLIERS["probe"]]


rule outlier_figures:
    input:
        layers=[f"{study_dir('outliers', m, GEOMETRY)}/layers.csv" for m in GEOMETRY["models"]],
        occurrences=[f"{study_dir('outliers', m, GEOMETRY)}/occurrences.csv" for m in GEOMETRY["models"]],
        probes=[f"{study_dir('outliers', m, PROBE_VARIANTS)}/probe.csv" for m in OUTLIER_PROBE_MODELS],
        probe_dims=[f"{study_dir('outliers', m, PROBE_VARIANTS)}/probe_dims.csv" for m in OUTLIER_PROBE_MODELS],
    output:
        figure=report("results/figures/outliers.pdf", caption="../report/outliers.rst", category="Outliers"),
        tokens=report("results/outliers/top_tokens.csv", caption="../report/tables.rst", category="Outliers"),
        macros="results/macros/outliers.tex",
    params:
        library=library("outlier_figures.py"),
        **OUTLIER_DETECTION,
        names=[display_name(m) for m in GEOMETRY["models"]],
        probe_names=[display_name(m) for m in OUTLIER_PROBE_MODELS],
        dataset=GEOMETRY["dataset"],
        probe_dataset=PROBES["dataset"],
        top_n=OUTLIERS["top_n"],
    log:
        "logs/outliers/figures.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/outlier_figures.py"


PAPER_INPUTS.extend([rules.outlier_figures.output.figure, rules.outlier_figures.output.macros])
