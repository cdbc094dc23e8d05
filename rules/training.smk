# Study 3 over training: our own decoder and encoder trained on enwik8, anisotropy and intrinsic
# dimension of every checkpoint on a fixed held-out set (one geometry job per run, looping over its
# checkpoints: start-up dominated a job per checkpoint).

from layerwise.training.checkpoints import log_spaced_steps, pythia_checkpoint_steps, pythia_revision

TRAINING = config["training"]
TRAIN_KINDS = ["decoder", "encoder"]
TRAIN_STEPS = log_spaced_steps(TRAINING["max_steps"], TRAINING["n_checkpoints"])


wildcard_constraints:
    kind="decoder|encoder",


# Figures are drawn on the submit host: cheap, and they need no GPU.
localrules:
    training_figures,
    hub_checkpoint_figures,


rule train:
    input:
        table=f"resources/datasets/{TRAINING['dataset']}.parquet",
    output:
        log="results/training/{kind}/log.csv",
        checkpoints=[directory(checkpoint_path("{kind}", s)) for s in TRAIN_STEPS],
    params:
        library=library("train.py"),
        cfg={k: v for k, v in TRAINING.items() if k not in ("dataset", "threads", "heldout_chunks")},
        steps=TRAIN_STEPS,
        threads=TRAINING["threads"],
        device=DEVICE,
    threads: TRAINING["threads"]
    resources:
        mem_mb=2000,
        gpu=1,
    log:
        "logs/training/{kind}.log",
    benchmark:
        "results/benchmarks/rules/train/{kind}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule checkpoint_geometry:
    input:
        checkpoints=lambda wc: [checkpoint_path(wc.kind, s) for s in TRAIN_STEPS],
        table=f"resources/datasets/{TRAINING['dataset']}.parquet",
    output:
        table="results/training/{kind}/geometry.csv",
        final_norm="results/training/{kind}/geometry.final_norm.csv",
        batches="results/training/{kind}/geometry.batches.csv",
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
        "logs/training/{kind}/geometry.log",
    benchmark:
        "results/benchmarks/rules/checkpoint_geometry/{kind}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/checkpoint_geometry.py"


rule training_figures:
    input:
        logs=expand("results/training/{kind}/log.csv", kind=TRAIN_KINDS),
        geometry=expand("results/training/{kind}/geometry.csv", kind=TRAIN_KINDS),
        final_norm=expand("results/training/{kind}/geometry.final_norm.csv", kind=TRAIN_KINDS),
        batches=expand("results/training/{kind}/geometry.batches.csv", kind=TRAIN_KINDS),
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

# Hub checkpoints (e.g. Pythia revisions stepN): each becomes a registry entry `<key>@step<N>` that
# flows through the ordinary extract → geometry rules. Only with a network; dry-runnable anywhere.
HUB_CHECKPOINTS = {}
for _key, _entry in TRAINING["hub"].items():
    for _step in pythia_checkpoint_steps(_entry["n_revisions"]):
        HUB_CHECKPOINTS.setdefault(_key, []).append(f"{_key}@step{_step}")
        config["models"][f"{_key}@step{_step}"] = {"source": "hf", "id": _entry["id"],
                                                   "revision": pythia_revision(_step), "display": _key}
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
