# Study 2: the logit lens, per example text (heatmaps) and across a dataset (curves).

from layerwise.resources.models import registry_encoders
from layerwise.lens.texts import load_texts

LENS = config["lens"]
check_models("lens", LENS["models"])
_LENS_ENCODERS = registry_encoders({m: config["models"][m] for m in LENS["models"]})
if _LENS_ENCODERS:
    raise ValueError(f"config 'lens.models': {_LENS_ENCODERS} are encoders without a causal LM head; the logit "
                     "lens decodes next-token predictions and needs a decoder model")
PAPER_HEATMAP_VALUES = ("top1_logit", "final_top1_rank", "kl_final", "kl_input")
# Models the paper names by a macro of results/macros/provenance.tex (the name with its origin) in captions.
MODEL_NAME_MACROS = {"smollm2-135m": r"\ModelSmolName"}
LENS_TEXTS = {**load_texts(Path(workflow.basedir) / LENS["examples_dir"]), **LENS["texts"]}


# Figures are drawn on the submit host: cheap, and they need no GPU.
localrules:
    lens_heatmap,
    lens_figures,


rule lens_example:
    input:
        card=lambda wc: model_card(wc.model),
    output:
        table="results/lens/{model}/examples/{text}.parquet",
    params:
        library=library("lens_example.py"),
        text=lambda wc: LENS_TEXTS[wc.text],
        decoder=LENS["decoder"],
        subblocks=LENS["subblocks"],
        max_tokens=LENS["example_max_tokens"],
        device=DEVICE,
    threads: SERIAL_THREADS
    resources:
        mem_mb=lambda wc: model_mem_mb(wc, 2000),
        gpu=lambda wc: model_gpus(wc.model),
    log:
        "logs/lens/{model}/example_{text}.log",
    benchmark:
        "results/benchmarks/rules/lens_example/{model}_{text}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/lens_example.py"


HEATMAP_VALUES = sorted({*LENS["heatmap_values"], *PAPER_HEATMAP_VALUES})  # the paper shows the four PAPER ones
# (value, view) of each heatmap of a text, in the order of the rule's outputs: full grids for the report,
# windows for the paper.
HEATMAP_VIEWS = [(value, view) for value in HEATMAP_VALUES for view in ("grid", "window")]
HEATMAP_PATH = "results/figures/lens/{model}/{text}/%s.%s.pdf"
PRINTED_WIDTH = 6.3  # inches: the paper's \linewidth, at which its window heatmaps and curves are placed


# One job per text draws all its heatmaps: each is a second of plotting, and a job per figure spent most of
# its time starting Python (30 jobs in the default run).
rule lens_heatmap:
    input:
        table="results/lens/{model}/examples/{text}.parquet",
    output:
        figures=[report(HEATMAP_PATH % pair, caption="../report/lens_heatmap.rst", category="Logit lens heatmaps",
                        subcategory="{model} {text}") for pair in HEATMAP_VIEWS],
    params:
        library=library("lens_heatmap.py"),
        views=HEATMAP_VIEWS,
        title=lambda wc: f"{display_name(wc.model)}, decoder {LENS['decoder']}",
        width=PRINTED_WIDTH,
        layer_step=LENS["layer_step"],
        max_positions=LENS["heatmap_max_positions"],
        window=lambda wc: LENS["heatmap_windows"].get(wc.text, LENS["heatmap_window"]),
        window_layer_step=LENS["heatmap_window_layer_step"],
    log:
        "logs/lens/{model}/heatmap/{text}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/lens_heatmap.py"


rule lens_dataset:
    input:
        card=lambda wc: model_card(wc.model),
        table="resources/datasets/{dataset}.parquet",
        provenance="resources/datasets/{dataset}.json",
    output:
        table="results/lens/{model}/{dataset}/{sampling}.{decoder}.parquet",
        summary=report("results/lens/{model}/{dataset}/{sampling}.{decoder}.summary.csv",
                       caption="../report/tables.rst", category="Tables", subcategory="Logit lens"),
        changes="results/lens/{model}/{dataset}/{sampling}.{decoder}.changes.csv",
    params:
        library=library("lens_dataset.py"),
        n_texts=LENS["n_texts"],
        max_tokens=LENS["max_tokens"],
        min_tokens=config["extraction"]["min_tokens"],
        seed=config["seed"],
        # block outputs only: the sub-block lens (lens.subblocks) runs on the example texts, where it is cheap;
        # here it would double the job's ~200 s of CPU
        subblocks=False,
        include_position0=LENS["include_position0"],
        device=DEVICE,
    threads: COMPUTE_THREADS
    priority: 10  # long jobs first: a 2-lane run ends sooner when its longest jobs start early
    resources:
        mem_mb=lambda wc: model_mem_mb(wc, 4000),
        gpu=lambda wc: model_gpus(wc.model),
    log:
        "logs/lens/{model}/{dataset}/{sampling}.{decoder}.log",
    benchmark:
        "results/benchmarks/rules/lens_dataset/{model}_{dataset}_{sampling}_{decoder}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/lens_dataset.py"


rule lens_figures:
    input:
        summaries=[
            study_table("lens", m, LENS, ext=f"{d}.summary.csv") for m in LENS["models"] for d in LENS["decoders"]
        ],
        # the sub-block sentence reads the first model's lens of the longest paper text (the GPT-3 abstract)
        subblock_example=f"results/lens/{LENS['models'][0]}/examples/"
                         f"{(LENS['paper_more_examples'] or [LENS['paper_example']])[0]}.parquet",
        changes=[
            study_table("lens", m, LENS, ext=f"{d}.changes.csv") for m in LENS["models"] for d in LENS["decoders"]
        ],
    output:
        curves=report("results/figures/lens_dataset.pdf", caption="../report/lens_dataset.rst", category="Logit lens"),
        macros="results/macros/lens.tex",
    params:
        library=library("lens_figures.py"),
        names=[display_name(m) for m in LENS["models"] for d in LENS["decoders"]],
        example=LENS["paper_example"],
        heatmaps={m: f"lens/{m}/{LENS['paper_example']}/{{value}}.window.pdf" for m in LENS["models"]},
        window=LENS["heatmap_windows"].get(LENS["paper_example"], LENS["heatmap_window"]),
        window_layer_step=LENS["heatmap_window_layer_step"],
        model_names={m: display_name(m) for m in LENS["models"]},
        model_tex={m: MODEL_NAME_MACROS[m] for m in LENS["models"] if m in MODEL_NAME_MACROS},
        decoder=LENS["decoder"],
        more_examples={t: ({m: f"lens/{m}/{t}/{{value}}.window.pdf" for m in LENS["models"]},
                           LENS["heatmap_windows"].get(t, LENS["heatmap_window"]))
                       for t in LENS["paper_more_examples"]},  # unknown names are refused by preflight
        width=PRINTED_WIDTH,
        subblock_text=(LENS["paper_more_examples"] or [LENS["paper_example"]])[0],
        dataset=LENS["dataset"],
        max_tokens=LENS["max_tokens"],
    log:
        "logs/lens/figures.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/lens_figures.py"


LENS_HEATMAPS = [(HEATMAP_PATH % pair).format(model=m, text=t) for m in LENS["models"] for t in LENS_TEXTS
                 for pair in HEATMAP_VIEWS]
PAPER_INPUTS.extend([rules.lens_figures.output.curves, rules.lens_figures.output.macros, *LENS_HEATMAPS])


# The post's claims, each with our number, interval and verdict (the section opens with this table). The post
# decodes with the full final norm (transformer-utils), so the claims read the `full` decoder's tables.
LENS_CLAIMS_MODEL = LENS["models"][0]


rule lens_verdicts:
    input:
        dataset=study_table("lens", LENS_CLAIMS_MODEL, LENS, ext="full.parquet"),
        example=f"results/lens/{LENS_CLAIMS_MODEL}/examples/plasma.parquet",
    output:
        csv=report("results/verdicts/lens.csv", caption="../report/verdicts.rst", category="Verdicts"),
        macros="results/macros/lens_verdicts.tex",
    params:
        library=library("lens_verdicts.py"),
        include_position0=LENS["include_position0"],
        data_setting=(f"{display_name(LENS_CLAIMS_MODEL)}; {LENS['dataset']}, {LENS['n_texts']} texts of "
                      f"{LENS['max_tokens']} tokens"),
        model_name=display_name(LENS_CLAIMS_MODEL),
        n_boot=2000,
        seed=config["seed"],
    log:
        "logs/lens/verdicts.log",
    benchmark:
        "results/benchmarks/rules/lens_verdicts/lens_verdicts.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/lens_verdicts.py"


PAPER_INPUTS.extend([rules.lens_verdicts.output.macros, rules.lens_verdicts.output.csv])


from types import SimpleNamespace

# The long-context run (lens.long_n_texts > 0): whole-paragraph texts, as the post read them, by position bucket.
_LONG = dict(n_texts=LENS["long_n_texts"], max_tokens=LENS["long_max_tokens"], dataset=LENS["dataset"])
if LENS["long_n_texts"]:

    rule lens_long:
        input:
            card=model_card(LENS_CLAIMS_MODEL),
            table=f"resources/datasets/{LENS['dataset']}.parquet",
            provenance=f"resources/datasets/{LENS['dataset']}.json",
        output:
            summary=f"results/lens/{LENS_CLAIMS_MODEL}/{LENS['dataset']}/long_n{LENS['long_n_texts']}_l"
                    f"{LENS['long_max_tokens']}_s{config['seed']}.full.buckets.csv",
            figure="results/figures/lens_long.pdf",
            macros="results/macros/lens_long.tex",
        params:
            library=library("lens_long.py"),
            **_LONG,
            buckets=LENS["long_buckets"],
            seed=config["seed"],
            include_position0=LENS["include_position0"],
            width=PRINTED_WIDTH,
            device=DEVICE,
        threads: COMPUTE_THREADS
        resources:
            mem_mb=lambda wc: model_mem_mb(SimpleNamespace(model=LENS_CLAIMS_MODEL), 4000),
            gpu=model_gpus(LENS_CLAIMS_MODEL),
        log:
            "logs/lens/long.log",
        benchmark:
            "results/benchmarks/rules/lens_long/lens_long.tsv"
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/lens_long.py"

    PAPER_INPUTS.extend([rules.lens_long.output.figure, rules.lens_long.output.macros])

else:

    rule lens_long_off:  # no library digest: it writes two empty macros, whatever the plotting code does
        output:
            macros="results/macros/lens_long.tex",
        params:
            **_LONG,
        log:
            "logs/lens/long.log",
        script:
            "../scripts/lens_long.py"

    PAPER_INPUTS.append(rules.lens_long_off.output.macros)


# A LayerNorm family for the decoder question: Study 3's own GPT-2-architecture decoder (last checkpoint), read
# with full, norm_only and the raw stream on held-out chunks of its training corpus.
rule lens_trained:
    input:
        checkpoint=checkpoint_path("decoder", TRAIN_STEPS[-1], TRAIN_SEEDS[0]),
        table=f"resources/datasets/{TRAINING['dataset']}.parquet",
    output:
        summary="results/lens/trained-decoder/summary.csv",
        overlap="results/lens/trained-decoder/top1_overlap.csv",
        macros="results/macros/lens_trained.tex",
    params:
        library=library("lens_trained.py"),
        decoders=["full", "norm_only", "none"],
        n_chunks=TRAINING["heldout_chunks"],
        chunk_len=TRAINING["seq_len"],
        val_fraction=TRAINING["val_fraction"],
        seed=config["seed"],
        name=(f"our own byte-level GPT-2-architecture decoder of Study 3 (width {TRAINING['width']}, "
              f"{TRAIN_STEPS[-1]} steps on {TRAINING['dataset']}, seed {TRAIN_SEEDS[0]})"),
    threads: SERIAL_THREADS
    resources:
        mem_mb=2000,
    log:
        "logs/lens/trained.log",
    benchmark:
        "results/benchmarks/rules/lens_trained/lens_trained.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/lens_trained.py"


PAPER_INPUTS.append(rules.lens_trained.output.macros)
