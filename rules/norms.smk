# The first figure: L2 norm of each layer's residual stream, per model.

NORMS = config["norms"]
check_models("norms", NORMS["models"])


# Figures are drawn on the submit host: cheap, and they need no GPU.
localrules:
    norm_figure,


rule norm_table:
    input:
        store="results/activations/{model}/{dataset}/{sampling}",
    output:
        table="results/norms/{model}/{dataset}/{sampling}.csv",
        per_text="results/norms/{model}/{dataset}/{sampling}.per_text.csv",
    params:
        library=library("norm_table.py"),
        include_position0=NORMS["include_position0"],
    threads: COMPUTE_THREADS
    resources:
        mem_mb=lambda wc: store_mem_mb(wc, 1.0),
    log:
        "logs/norms/{model}/{dataset}/{sampling}.log",
    benchmark:
        "results/benchmarks/rules/norm_table/{model}_{dataset}_{sampling}.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/norm_table.py"


rule norm_figure:
    input:
        tables=[study_table("norms", m, NORMS) for m in NORMS["models"]],
    output:
        figure=report("results/figures/norms.pdf", caption="../report/norms.rst", category="Norms"),
        macros="results/macros/norms.tex",
    params:
        library=library("norm_figure.py"),
        models=NORMS["models"],
        dataset=NORMS["dataset"],
        n_texts=NORMS["n_texts"],
        max_tokens=NORMS["max_tokens"],
        include_position0=NORMS["include_position0"],
        names=[display_name(m) for m in NORMS["models"]],
    log:
        "logs/norms/figure.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/norm_figure.py"


PAPER_INPUTS.extend(rules.norm_figure.output)
