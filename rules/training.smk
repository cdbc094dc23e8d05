# Study 3 over training: our own decoder and encoder trained on enwik8, anisotropy and intrinsic
# dimension of every checkpoint on a fixed held-out set (one geometry job per run, looping over its
# checkpoints: start-up dominated a job per checkpoint).

from layerwise.training.checkpoints import hub_revisions, linear_steps, log_spaced_steps

TRAINING = config["training"]
# Log-spaced (the early changes are fast) plus evenly spaced ones, so the tail after an early peak is sampled too.
TRAIN_STEPS = sorted(set(log_spaced_steps(TRAINING["max_steps"], TRAINING["n_checkpoints"]))
                     | set(linear_steps(TRAINING["max_steps"], TRAINING["linear_checkpoints"])))
# Independent runs (initialisation, data order, masking): the over-training claims' interval is over seeds.
TRAIN_SEEDS = TRAINING["seeds"]


wildcard_constraints:
    kind="decoder|encoder",
    train_seed=r"\d+",


# Figures are drawn on the submit host: cheap, and they need no GPU.
localrules:
    training_figures,
    hub_checkpoint_figures,


rule train:
    input:
        table=f"resources/datasets/{TRAINING['dataset']}.parquet",
    output:
        log="results/training/{kind}/seed{train_seed}/log.csv",
        checkpoints=[directory(checkpoint_path("{kind}", s, "{train_seed}")) for s in TRAIN_STEPS],
    params:
        library=library("train.py"),
        cfg=lambda wc: {**{k: v for k, v in TRAINING.items()
                           if k not in ("dataset", "threads", "heldout_chunks", "seeds", "linear_checkpoints")},
                        "seed": int(wc.train_seed)},
        steps=TRAIN_STEPS,
        threads=TRAINING["threads"],
        device=DEVICE,
    threads: TRAINING["threads"]
    priority: 10  # long jobs first: a 2-lane run ends sooner when its longest jobs start early
    resources:
        mem_mb=2000,
        gpu=1,
    log:
        "logs/training/{kind}/seed{train_seed}.log",
    benchmark:
        "results/benchmarks/rules/train/{kind}/seed{train_seed}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule checkpoint_geometry:
    input:
        checkpoints=lambda wc: [checkpoint_path(wc.kind, s, wc.train_seed) for s in TRAIN_STEPS],
        table=f"resources/datasets/{TRAINING['dataset']}.parquet",
    output:
        table="results/training/{kind}/seed{train_seed}/geometry.csv",
        final_norm="results/training/{kind}/seed{train_seed}/geometry.final_norm.csv",
        batches="results/training/{kind}/seed{train_seed}/geometry.batches.csv",
    params:
        library=library("checkpoint_geometry.py"),
        steps=TRAIN_STEPS,
        n_chunks=TRAINING["heldout_chunks"],
        chunk_len=TRAINING["seq_len"],
        val_fraction=TRAINING["val_fraction"],
        seed=config["seed"],
        batch_size=GEOMETRY["batch_size"],
        fraction=GEOMETRY["twonn_fraction"],
        block_size=GEOMETRY["block_size"],
        n_candidates=GEOMETRY["n_candidates"],
        include_position0=GEOMETRY["include_position0"],
        backend=config["backend"],
        device=DEVICE,
    threads: SERIAL_THREADS
    resources:
        mem_mb=2000,
    log:
        "logs/training/{kind}/seed{train_seed}/geometry.log",
    benchmark:
        "results/benchmarks/rules/checkpoint_geometry/{kind}/seed{train_seed}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/checkpoint_geometry.py"


rule training_figures:
    input:
        logs=training_runs("log.csv"),
        geometry=training_runs("geometry.csv"),
        final_norm=training_runs("geometry.final_norm.csv"),
        batches=training_runs("geometry.batches.csv"),
        table=f"resources/datasets/{TRAINING['dataset']}.parquet",
    output:
        curves=report("results/figures/training_curves.pdf", caption="../report/training_curves.rst", category="Training"),
        anisotropy=report(
            "results/figures/training_anisotropy.pdf", caption="../report/training_anisotropy.rst", category="Training"
        ),
        intrinsic_dimension=report(
            "results/figures/training_id.pdf", caption="../report/training_id.rst", category="Training"
        ),
        macros="results/macros/training.tex",
    params:
        library=library("training_figures.py"),
        steps=TRAIN_STEPS,
        arch=TRAINING["arch"],
        encoder_block=TRAINING["encoder_block"],
        tokens_per_step=TRAINING["batch_size"] * TRAINING["seq_len"],
        val_fraction=TRAINING["val_fraction"],
        layer0_in_averages=GEOMETRY["layer0_in_averages"],
    log:
        "logs/training/figures.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/training_figures.py"


PAPER_INPUTS.extend(
    [rules.training_figures.output.curves, rules.training_figures.output.anisotropy,
     rules.training_figures.output.intrinsic_dimension, rules.training_figures.output.macros]
)

# Hub checkpoints (Pythia's stepN, OLMo's stage1-stepN-tokensXB): each is a registry entry `<key>@step<N>` of MODELS
# (rules/common.smk)
# that flows through the ordinary extract → geometry rules. Only with a network; dry-runnable anywhere.
HUB_CHECKPOINTS = {}
for _key, _entry in TRAINING["hub"].items():
    for _step in hub_revisions(_entry):
        HUB_CHECKPOINTS.setdefault(_key, []).append(f"{_key}@step{_step}")
    USED_MODELS.update(HUB_CHECKPOINTS[_key])


rule hub_checkpoint_figures:
    input:
        tables=lambda wc: [study_table("geometry", m, GEOMETRY) for m in HUB_CHECKPOINTS[wc.key]],
    output:
        anisotropy=report("results/figures/hub_checkpoints/{key}_anisotropy.pdf",
                          caption="../report/hub_checkpoints.rst", category="Training", subcategory="{key}"),
        intrinsic_dimension=report("results/figures/hub_checkpoints/{key}_id.pdf",
                                   caption="../report/hub_checkpoints.rst", category="Training", subcategory="{key}"),
    params:
        library=library("hub_checkpoint_figures.py"),
        steps=lambda wc: [int(m.rsplit("@step", 1)[1]) for m in HUB_CHECKPOINTS[wc.key]],
        layer0_in_averages=GEOMETRY["layer0_in_averages"],
    log:
        "logs/training/hub_{key}.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/hub_checkpoint_figures.py"


PAPER_INPUTS.extend(f"results/figures/hub_checkpoints/{k}_anisotropy.pdf" for k in HUB_CHECKPOINTS)
