# Study 1: which layer is this vector from? Probes, controls, ablations, transfer, stability, reductions.

PROBES = config["probes"]
check_models("probes", PROBES["models"])
PROBE_SAMPLING = sampling(PROBES["n_texts"], PROBES["max_tokens"])
# The post's own experiments (and the shuffled-label control of them) run at its size, `n_texts`; the additions
# beyond it at `variant_n_texts` (a slice of the same decoder store), each beside a raw probe and a transfer
# run at that size, so every comparison is made at one N (see the schema).
PROBE_VARIANT_N = variant_n_texts(PROBES)
PROBE_VARIANT_SAMPLING = sampling(PROBE_VARIANT_N, PROBES["max_tokens"])
PROBE_VARIANTS = dict(PROBES, n_texts=PROBE_VARIANT_N)
# Beside the raw probe (rule `probe`): the post's ablations and the post's own setting (post_faithful:
# position 0 kept, last class = state after the final norm), and the label control...
MAIN_CONDITIONS = ["normalised", "random_scalar", "shuffled_labels", "post_faithful"]
# ... and what the post only proposed (a tree) or did not do.
VARIANT_CONDITIONS = ["random_per_dimension", "random_covariance", "tree", "with_position0"]
PROBE_CONDITIONS = MAIN_CONDITIONS + VARIANT_CONDITIONS
# post_faithful is fitted by rule `probe_faithful`, with the post's ablations in the post's setting on it
FITTED_BY_CONDITION = [c for c in PROBE_CONDITIONS if c != "post_faithful"]
NOPUNCT = f"{PROBES['dataset']}.nopunct"
TRANSFER_DATASETS = {"raw": (PROBES["dataset"], PROBES["transfer_dataset"]),
                     "nopunct": (NOPUNCT, f"{PROBES['transfer_dataset']}.nopunct")}


include: "probes_inputs.smk"  # this study's path helpers (functions apart from rules, as snakemake --lint asks)


wildcard_constraints:
    condition="|".join(FITTED_BY_CONDITION),
    punct="raw|nopunct",


PROBE_COMMON = dict(
    seed=config["seed"],
    test_fraction=PROBES["test_fraction"],
    probe=dict(PROBES["probe"], device=DEVICE),  # the torch probe follows the run's device
    tree=PROBES["tree"],
    include_position0=PROBES["include_position0"],
)
# The fits the verdict table reads (raw probes, unit norm, the post-faithful pair) run to the gradient
# tolerance: their epoch cap is `headline_max_epochs`; every other fit keeps probe.max_epochs and reports
# whether it converged (a dagger in the table).
HEADLINE_PROBE = dict(PROBE_COMMON["probe"], max_epochs=max(PROBES["headline_max_epochs"],
                                                            PROBE_COMMON["probe"].get("max_epochs", 100)))
HEADLINE_COMMON = dict(PROBE_COMMON, probe=HEADLINE_PROBE)
HEADLINE_CONDITIONS = ("normalised",)


# The probe fits are BLAS-bound: each takes `threads` cores (capped by --cores) and runs its torch ops on
# exactly that many threads, so on 2 cores two fits never oversubscribe them or hold two training matrices.
PROBE_THREADS = COMPUTE_THREADS


# Figures are drawn on the submit host: cheap, and they need no GPU.
localrules:
    probe_figures,
    probe_verdicts,


rule probe:
    input:
        store="results/activations/{model}/{dataset}/{sampling}",
    output:
        scores="results/probes/{model}/{dataset}/{sampling}/raw/scores.csv",
        confusion="results/probes/{model}/{dataset}/{sampling}/raw/confusion.csv",
        history="results/probes/{model}/{dataset}/{sampling}/raw/history.csv",
        attribution="results/probes/{model}/{dataset}/{sampling}/raw/attribution.parquet",
        top="results/probes/{model}/{dataset}/{sampling}/raw/top.csv",
        cumulative="results/probes/{model}/{dataset}/{sampling}/raw/cumulative.csv",
        dims_for_share="results/probes/{model}/{dataset}/{sampling}/raw/dims_for_share.csv",
        masks="results/probes/{model}/{dataset}/{sampling}/raw/masks.csv",
        predictions="results/probes/{model}/{dataset}/{sampling}/raw/predictions.parquet",
        texts="results/probes/{model}/{dataset}/{sampling}/raw/texts.csv",
        model="results/probes/{model}/{dataset}/{sampling}/raw/probe.npz",
        random_masks="results/probes/{model}/{dataset}/{sampling}/raw_random_masks.csv",
    params:
        library=library("probe.py"),
        **HEADLINE_COMMON,
        mask_k=PROBES["mask_k"],
        top_n=PROBES["top_n"],
        random_mask_draws=PROBES["random_mask_draws"],
        # the masked re-fit (an addition: the post masked at test only) costs a second fit: it runs in the
        # additions' cell only, which the summary table reads
        retrain_masked=lambda wc: wc.dataset == PROBES["dataset"] and wc.sampling == PROBE_VARIANT_SAMPLING,
    threads: PROBE_THREADS
    priority: 15  # the next-longest jobs (the N=1000 raw probes): after the post-faithful fits, before the rest
    resources:
        mem_mb=lambda wc: store_mem_mb(wc, 3.5),
        gpu=1,
    log:
        "logs/probes/{model}/{dataset}/{sampling}/raw.log",
    benchmark:
        "results/benchmarks/rules/probe/{model}_{dataset}_{sampling}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/probe.py"


rule probe_condition:
    input:
        unpack(probe_condition_inputs),
    output:
        scores="results/probes/{model}/{dataset}/{sampling}/{condition}/scores.csv",
        history="results/probes/{model}/{dataset}/{sampling}/{condition}/history.csv",
    params:
        library=library("probe_condition.py"),
        **{k: v for k, v in PROBE_COMMON.items() if k != "probe"},
        probe=lambda wc: HEADLINE_PROBE if wc.condition in HEADLINE_CONDITIONS else PROBE_COMMON["probe"],
        shuffle_permutations=PROBES["shuffle_permutations"],
    threads: lambda wc: SERIAL_THREADS if wc.condition == "tree" else PROBE_THREADS
    resources:
        mem_mb=lambda wc: store_mem_mb(wc, 3.5),
        gpu=1,
    log:
        "logs/probes/{model}/{dataset}/{sampling}/{condition}.log",
    benchmark:
        "results/benchmarks/rules/probe_condition/{model}_{dataset}_{sampling}_{condition}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/probe_condition.py"


# The normalised probe also saves its fit, for the scalar random control.
use rule probe_condition as probe_normalised with:
    output:
        scores="results/probes/{model}/{dataset}/{sampling}/{condition}/scores.csv",
        history="results/probes/{model}/{dataset}/{sampling}/{condition}/history.csv",
        model="results/probes/{model}/{dataset}/{sampling}/{condition}/probe.npz",
        texts="results/probes/{model}/{dataset}/{sampling}/{condition}/texts.csv",
    wildcard_constraints:
        condition="normalised",
    priority: 10


ruleorder: probe_normalised > probe_condition


rule probe_faithful:
    input:
        store="results/activations/{model}/{dataset}/{sampling}",
        target=lambda wc: store_dir(wc.model, PROBES["transfer_dataset"], PROBES["n_texts"], PROBES["max_tokens"]),
    output:
        scores="results/probes/{model}/{dataset}/{sampling}/post_faithful/scores.csv",
        history="results/probes/{model}/{dataset}/{sampling}/post_faithful/history.csv",
        ablations="results/probes/{model}/{dataset}/{sampling}/post_faithful/ablations.csv",
        texts="results/probes/{model}/{dataset}/{sampling}/post_faithful/texts.csv",
        random_masks="results/probes/{model}/{dataset}/{sampling}/post_faithful/random_masks.csv",
        attribution="results/probes/{model}/{dataset}/{sampling}/post_faithful/attribution.parquet",
        top="results/probes/{model}/{dataset}/{sampling}/post_faithful/top.csv",
        dims_for_share="results/probes/{model}/{dataset}/{sampling}/post_faithful/dims_for_share.csv",
    params:
        library=library("probe_faithful.py"),
        **HEADLINE_COMMON,
        mask_k=PROBES["mask_k"],
        top_n=PROBES["top_n"],
        random_mask_draws=PROBES["random_mask_draws"],
    threads: PROBE_THREADS
    # the longest job of the run (SmolLM2: ~15 min, whitened L-BFGS to tolerance at N=1000): measured, at the
    # other probes' priority it started 24 minutes into a timed make paper, 17 after its store existed
    priority: 19
    resources:
        mem_mb=lambda wc: store_mem_mb(wc, 4.0),
        gpu=1,
    log:
        "logs/probes/{model}/{dataset}/{sampling}/post_faithful.log",
    benchmark:
        "results/benchmarks/rules/probe_faithful/{model}_{dataset}_{sampling}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/probe_faithful.py"


rule probe_transfer:
    input:
        source=lambda wc: store_dir(wc.model, TRANSFER_DATASETS[wc.punct][0], wc.n, PROBES["max_tokens"]),
        reference=lambda wc: saved_probe(wc.model, TRANSFER_DATASETS[wc.punct][0],
                                         sampling(wc.n, PROBES["max_tokens"])),
        target=lambda wc: store_dir(wc.model, TRANSFER_DATASETS[wc.punct][1], wc.n, PROBES["max_tokens"]),
    output:
        scores="results/probes/{model}/transfer_{punct}_n{n}.csv",
        texts="results/probes/{model}/transfer_{punct}_n{n}.texts.csv",
    params:
        library=library("probe_transfer.py"),
        **PROBE_COMMON,
        names=(PROBES["dataset"], PROBES["transfer_dataset"]),
        # the A+B probe is the post's proposal, not its experiment: fitted at the additions' size only
        mix=lambda wc: int(wc.n) == PROBES["variant_n_texts"],
    threads: PROBE_THREADS
    priority: 10  # long jobs first: a 2-lane run ends sooner when its longest jobs start early
    resources:
        # both stores held once (A+B standardised in place): 4.8 GiB at N=1000, the base process + 0.9 copies
        mem_mb=lambda wc: analysis_mem_mb(n_texts=2 * int(wc.n), max_tokens=PROBES['max_tokens'], copies=2.5, **declared_sizes(MODELS[wc.model])),
        gpu=1,
    log:
        "logs/probes/{model}/transfer_{punct}_n{n}.log",
    benchmark:
        "results/benchmarks/rules/probe_transfer/{model}_{punct}_n{n}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/probe_transfer.py"


rule probe_stability:
    input:
        store=lambda wc: store_dir(wc.model, PROBES["dataset"], PROBE_VARIANT_N, PROBES["max_tokens"]),
    output:
        runs="results/probes/{model}/stability_runs.csv",
        overlap="results/probes/{model}/stability_overlap.csv",
    params:
        library=library("probe_stability.py"),
        **PROBE_COMMON,
        seeds=PROBES["stability_seeds"],
        mask_k=PROBES["mask_k"],
        top_n=PROBES["top_n"],
    threads: PROBE_THREADS
    resources:
        mem_mb=lambda wc: analysis_mem_mb(n_texts=PROBE_VARIANT_N, max_tokens=PROBES['max_tokens'], copies=3.5, **declared_sizes(MODELS[wc.model])),
        gpu=1,
    log:
        "logs/probes/{model}/stability.log",
    benchmark:
        "results/benchmarks/rules/probe_stability/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/probe_stability.py"


rule probe_reductions:
    input:
        store=lambda wc: store_dir(wc.model, PROBES["dataset"], PROBES["n_texts"], PROBES["max_tokens"]),
    output:
        table="results/probes/{model}/reductions.parquet",
        figure=report("results/figures/probes/{model}_reductions.png", caption="../report/probe_reductions.rst",
                      category="Probes"),
    params:
        library=library("probe_reductions.py"),
        seed=config["seed"],
        methods=PROBES["reductions"]["methods"],
        n_per_layer=PROBES["reductions"]["n_per_layer"],
        include_position0=PROBES["include_position0"],
    threads: PROBE_THREADS
    priority: 10  # long jobs first: a 2-lane run ends sooner when its longest jobs start early
    resources:
        mem_mb=lambda wc: analysis_mem_mb(n_texts=PROBES['n_texts'], max_tokens=PROBES['max_tokens'], copies=1.0, **declared_sizes(MODELS[wc.model])),
    log:
        "logs/probes/{model}/reductions.log",
    benchmark:
        "results/benchmarks/rules/probe_reductions/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/probe_reductions.py"


# What the verdict table of the first model reads: the post-faithful ablations, the raw probe's scores, per-text
# predictions and attributions, the conditions, the grid cells' predictions, the seed-stability overlap.
VERDICT_MODEL = PROBES["models"][0]
VERDICT_FAITHFUL = f"{probe_dir(VERDICT_MODEL)}/post_faithful"
VERDICT_RAW = f"{probe_dir(VERDICT_MODEL)}/raw"
VERDICT_INPUTS = {
    "ablations": f"{VERDICT_FAITHFUL}/ablations.csv", "texts": f"{VERDICT_FAITHFUL}/texts.csv",
    "random_masks": f"{VERDICT_FAITHFUL}/random_masks.csv",
    "random_masks_ours": f"{probe_dir(VERDICT_MODEL)}/raw_random_masks.csv",
    "faithful_attribution": f"{VERDICT_FAITHFUL}/attribution.parquet",
    "faithful_dims": f"{VERDICT_FAITHFUL}/dims_for_share.csv", "raw_scores": f"{VERDICT_RAW}/scores.csv",
    "raw_predictions": f"{VERDICT_RAW}/predictions.parquet", "raw_attribution": f"{VERDICT_RAW}/attribution.parquet",
    "raw_dims": f"{VERDICT_RAW}/dims_for_share.csv",
    "conditions": [f"{probe_dir(VERDICT_MODEL)}/{c}/scores.csv" for c in MAIN_CONDITIONS],
    "overlap": f"results/probes/{VERDICT_MODEL}/stability_overlap.csv",
    "grid": [f"{probe_dir(VERDICT_MODEL, sampling_=sampling(n, l))}/raw/predictions.parquet"
             for n in PROBES["grid"]["n_texts"] for l in PROBES["grid"]["max_tokens"]],
    "summary": "results/probes/summary.csv",
    # our setting's per-text accuracies: raw and masked at test, unit norm, the transfer
    "raw_texts": f"{VERDICT_RAW}/texts.csv", "normalised_texts": f"{probe_dir(VERDICT_MODEL)}/normalised/texts.csv",
    "transfer_texts": f"results/probes/{VERDICT_MODEL}/transfer_raw_n{PROBES['n_texts']}.texts.csv",
}
if VERDICT_MODEL in NORMS["models"]:  # the post's Fig. 2 claims, on the norms study's texts
    VERDICT_INPUTS["norms"] = study_table("norms", VERDICT_MODEL, NORMS, ext="per_text.csv")


# The post's claims, one verdict each, judged on the first model (the decoder): a table generated from the
# numbers, never typed (layerwise.probes.claims maps the numbers to claims, layerwise.verdicts judges them).
rule probe_verdicts:
    input:
        **VERDICT_INPUTS,
    output:
        verdicts=report("results/verdicts/probes.csv", caption="../report/verdicts.rst", category="Verdicts"),
        evidence="results/verdicts/probes_evidence.csv",
        macros="results/macros/probe_verdicts.tex",
    params:
        library=library("probe_verdicts.py"),
        display=display_name(VERDICT_MODEL),  # also the summary's model column
        max_epochs=PROBE_COMMON["probe"].get("max_epochs", 100),
        headline_max_epochs=HEADLINE_PROBE["max_epochs"],
        grid=[(n, l) for n in PROBES["grid"]["n_texts"] for l in PROBES["grid"]["max_tokens"]],
        top_n=PROBES["top_n"],
        seed=config["seed"],
    log:
        "logs/probes/verdicts.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/probe_verdicts.py"


rule probe_figures:
    input:
        unpack(lambda wc: {k: v for m in PROBES["models"] for k, v in
                           [(f"{m}__{key}", val) for key, val in probe_inputs(m).items()]}),
        main=[f"{probe_dir(m)}/raw/{f}" for m in PROBES["models"] for f in
              ("confusion.csv", "top.csv", "cumulative.csv", "dims_for_share.csv", "masks.csv", "attribution.parquet")],
    output:
        conditions=report("results/figures/probe_conditions.pdf", caption="../report/probe_conditions.rst",
                          category="Probes"),
        curves=report("results/figures/probe_curves.pdf", caption="../report/probe_curves.rst", category="Probes"),
        confusion=report("results/figures/probe_confusion.pdf", caption="../report/probe_confusion.rst", category="Probes"),
        attribution=report("results/figures/probe_attribution.pdf", caption="../report/probe_attribution.rst", category="Probes"),
        cumulative=report("results/figures/probe_cumulative.pdf", caption="../report/probe_cumulative.rst", category="Probes"),
        grid=report("results/figures/probe_grid.pdf", caption="../report/probe_grid.rst", category="Probes"),
        table=report("results/probes/summary.csv", caption="../report/tables.rst", category="Tables",
                     subcategory="Probes"),
        macros="results/macros/probes.tex",
    params:
        library=library("probe_figures.py"),
        models=PROBES["models"],
        names=[display_name(m) for m in PROBES["models"]],
        main_dirs=[probe_dir(m) for m in PROBES["models"]],
        grid=[(n, l) for n in PROBES["grid"]["n_texts"] for l in PROBES["grid"]["max_tokens"]],
        mask_k=PROBES["mask_k"],
        shuffle_permutations=PROBES["shuffle_permutations"],
        stability_seeds=PROBES["stability_seeds"],
        n_texts=PROBES["n_texts"],
        variant_n_texts=PROBE_VARIANT_N,
        max_tokens=PROBES["max_tokens"],
    log:
        "logs/probes/figures.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/probe_figures.py"


PAPER_INPUTS.extend(
    [*rules.probe_figures.output[:6], rules.probe_figures.output.macros, rules.probe_verdicts.output.macros,
     *[f"results/figures/probes/{m}_reductions.png" for m in PROBES["models"]]]
)
