# Study 3: anisotropy and TwoNN intrinsic dimension per layer (CuPy on a GPU, NumPy otherwise).

GEOMETRY = config["geometry"]
check_models("geometry", GEOMETRY["models"])


# Figures are drawn on the submit host: cheap, and they need no GPU.
localrules:
    geometry_figures,
    geometry_verdicts,


rule geometry:
    input:
        store="results/activations/{model}/{dataset}/{sampling}",
    output:
        layers="results/geometry/{model}/{dataset}/{sampling}.csv",
        final_norm="results/geometry/{model}/{dataset}/{sampling}.final_norm.csv",
        batches="results/geometry/{model}/{dataset}/{sampling}.batches.csv",
        position0="results/geometry/{model}/{dataset}/{sampling}.position0.csv",
    params:
        library=library("geometry.py"),
        backend=config["backend"],
        seed=config["seed"],
        batch_size=GEOMETRY["batch_size"],
        fraction=GEOMETRY["twonn_fraction"],
        block_size=GEOMETRY["block_size"],
        n_candidates=GEOMETRY["n_candidates"],
        include_position0=GEOMETRY["include_position0"],
        outlier_k=config["outliers"]["k"],
        k_sweep=config["outliers"]["k_sweep"],
        top_m=config["outliers"]["top_m"],
    threads: COMPUTE_THREADS
    resources:
        mem_mb=lambda wc: store_mem_mb(wc, 1.5),
        gpu=1,
    log:
        "logs/geometry/{model}/{dataset}/{sampling}.log",
    benchmark:
        "results/benchmarks/rules/geometry/{model}/{dataset}/{sampling}.tsv"
    conda:
        "../envs/gpu.yaml"
    script:
        "../scripts/geometry.py"


rule geometry_figures:
    input:
        tables=[study_table("geometry", m, GEOMETRY) for m in GEOMETRY["models"]],
        batches=[study_table("geometry", m, GEOMETRY, ext="batches.csv") for m in GEOMETRY["models"]],
    output:
        anisotropy=report("results/figures/anisotropy.pdf", caption="../report/anisotropy.rst", category="Geometry"),
        intrinsic_dimension=report(
            "results/figures/intrinsic_dimension.pdf", caption="../report/intrinsic_dimension.rst", category="Geometry"
        ),
        summary=report("results/geometry/summary.csv", caption="../report/tables.rst", category="Tables",
                       subcategory="Geometry"),
        macros="results/macros/geometry.tex",
    params:
        library=library("geometry_figures.py"),
        names=[display_name(m) for m in GEOMETRY["models"]],
        fraction=GEOMETRY["twonn_fraction"],
        batch_size=GEOMETRY["batch_size"],
    log:
        "logs/geometry/figures.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/geometry_figures.py"


PAPER_INPUTS.extend(
    [rules.geometry_figures.output.anisotropy, rules.geometry_figures.output.intrinsic_dimension,
     rules.geometry_figures.output.macros]
)


# The source's claims (bell-shaped decoder profile, no bell in encoders, anisotropy and ID over training) as
# rules on per-batch numbers → results/verdicts/geometry.csv and the section's opening table.
rule geometry_verdicts:
    input:
        batches=[study_table("geometry", m, GEOMETRY, ext="batches.csv") for m in GEOMETRY["models"]],
        position0=[study_table("geometry", m, GEOMETRY, ext="position0.csv") for m in GEOMETRY["models"]],
        training=training_runs("geometry.batches.csv"),
    output:
        csv=report("results/verdicts/geometry.csv", caption="../report/verdicts.rst", category="Verdicts"),
        macros="results/macros/geometry_verdicts.tex",
    params:
        library=library("geometry_verdicts.py"),
        names=[display_name(m) for m in GEOMETRY["models"]],
        interior=GEOMETRY["shape_interior"],
        margin=GEOMETRY["shape_margin"],
        seed=config["seed"],
        layer0_in_averages=GEOMETRY["layer0_in_averages"],
        training_setting=(f"own {config['training']['n_layers']}-layer {config['training']['arch']}, "
                          f"{config['training']['max_steps']} steps, {len(config['training']['seeds'])} seed"
                          f"{'s' if len(config['training']['seeds']) > 1 else ''} (source: Pythia, Bloom)"),
    log:
        "logs/geometry/verdicts.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/geometry_verdicts.py"


PAPER_INPUTS.append(rules.geometry_verdicts.output.macros)
