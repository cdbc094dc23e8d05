# Beyond the three sources: every layer of a model seen by all three studies at once, on the Study 1 store.

CROSS = config["crossstudy"]
# Follows the studies: every probed model (its store is shared by all store-based columns); Study 2 and
# Study 3 columns join where those studies ran the model.
CROSS_MODELS = PROBES["models"] if CROSS["enabled"] else []
CROSS_DECODER = CROSS["lens_decoder"] or LENS["decoder"]
if CROSS_MODELS and CROSS_DECODER not in LENS["decoders"] and LENS["models"]:
    raise ValueError(f"config 'crossstudy.lens_decoder': {CROSS_DECODER!r} is not one of lens.decoders {LENS['decoders']}")


include: "crossstudy_inputs.smk"  # the input function (functions apart from rules, as snakemake --lint asks)


localrules:
    crossstudy_figures,


rule crossstudy_model:
    input:
        unpack(crossstudy_inputs),
    output:
        layers="results/crossstudy/{model}/layers.csv",
        correlations="results/crossstudy/{model}/correlations.csv",
        sources="results/crossstudy/{model}/sources.csv",
    params:
        library=library("crossstudy_model.py"),
        seed=config["seed"],
        n_boot=CROSS["n_bootstrap"],
        confidence=CROSS["confidence"],
        max_units=CROSS["max_units"],
        pairs=CROSS["pairs"],
        include_position0=PROBES["include_position0"],
        fraction=GEOMETRY["twonn_fraction"],
        block_size=GEOMETRY["block_size"],
        n_candidates=GEOMETRY["n_candidates"],
        backend=config["backend"],
        store_data=f"{PROBES['dataset']}: {PROBE_VARIANT_N} texts, at most {PROBES['max_tokens']} tokens (Study 1 store)",
        probe_data=f"Study 1 raw probe at N={PROBE_VARIANT_N}, test texts of the same store",
        lens_data=f"{LENS['dataset']}: {LENS['n_texts']} texts, at most {LENS['max_tokens']} tokens "
                  f"(Study 2 sample, {CROSS_DECODER} decoder)",
    threads: COMPUTE_THREADS
    resources:
        mem_mb=lambda wc: analysis_mem_mb(n_texts=PROBE_VARIANT_N, max_tokens=PROBES['max_tokens'], copies=2.5, **declared_sizes(MODELS[wc.model])),
    log:
        "logs/crossstudy/{model}.log",
    benchmark:
        "results/benchmarks/rules/crossstudy_model/{model}.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/crossstudy_model.py"


rule crossstudy_figures:
    input:
        layers=[f"results/crossstudy/{m}/layers.csv" for m in CROSS_MODELS],
        correlations=[f"results/crossstudy/{m}/correlations.csv" for m in CROSS_MODELS],
        sources=[f"results/crossstudy/{m}/sources.csv" for m in CROSS_MODELS],
    output:
        figure=report("results/figures/crossstudy.pdf", caption="../report/crossstudy.rst", category="Cross-study"),
        layers=report("results/crossstudy/layers.csv", caption="../report/tables.rst", category="Tables",
                      subcategory="Cross-study"),
        correlations="results/crossstudy/correlations.csv",
        macros="results/macros/crossstudy.tex",
    params:
        library=library("crossstudy_figures.py"),
        names=[display_name(m) for m in CROSS_MODELS],
        n_boot=CROSS["n_bootstrap"],
        confidence=CROSS["confidence"],
    log:
        "logs/crossstudy/figures.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/crossstudy_figures.py"


# Always built: with the view switched off (or no probed model) the macros say so and the figure is empty.
PAPER_INPUTS.extend([rules.crossstudy_figures.output.figure, rules.crossstudy_figures.output.macros])
