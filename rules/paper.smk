# Figures and generated macros → the PDF (latexmk). Local: cheap, and needs the TeX install.

from layerwise.workflow.preflight import preflight

# Included last: every study has named its models by now. Missing local models or data fail here, not in the queue.
preflight(REGISTRY_CONFIG, USED_MODELS, cache=Path(".snakemake/layerwise/corpus_sizes.json"), lens_texts=LENS_TEXTS)


localrules:
    provenance,
    paper,
    verify,
    figure_previews,
    effective_config,


rule provenance:
    input:
        cards=[model_card(m) for m in sorted(USED_MODELS)],
        datasets=[f"resources/datasets/{d}.json" for d in sorted(USED_DATASETS)],
        generated=list(PAPER_INPUTS),
    output:
        macros="results/macros/provenance.tex",
        tables="results/paper/provenance_tables.tex",
    params:
        library=library("provenance.py"),
        config=dict(REGISTRY_CONFIG, device=DEVICE),  # the device as resolved: `auto` and `cpu` are one run here
        benchmark_root="results/benchmarks/rules",
        job_root="results/benchmarks/jobs",
    log:
        "logs/paper/provenance.log",
    benchmark:
        "results/benchmarks/rules/provenance/provenance.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/provenance.py"


# The LaTeX sources ship with the workflow: found beside the Snakefile whatever the working directory.
PAPER_SOURCES = Path(workflow.basedir) / "paper"


rule paper:
    input:
        tex=str(PAPER_SOURCES / "main.tex"),
        sections=sorted(str(p) for p in (PAPER_SOURCES / "sections").glob("*.tex")),
        bib=str(PAPER_SOURCES / "references.bib"),
        generated=PAPER_INPUTS,
        provenance=rules.provenance.output,
    output:
        pdf=report(PAPER_PDF, caption="../report/paper.rst", category="Paper"),
        macros="results/paper/macros.tex",
    params:
        library=library("paper.py"),
    log:
        "logs/paper/latexmk.log",
    benchmark:
        "results/benchmarks/rules/paper/paper.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../envs/latex.yaml"
    script:
        "../scripts/paper.py"


rule verify:
    input:
        macros="results/paper/macros.tex",
        expected="paper/expected_values.yaml",
    output:
        report="results/verify.txt",
    params:
        library=library("verify.py"),
    log:
        "logs/paper/verify.log",
    benchmark:
        "results/benchmarks/rules/verify/verify.tsv"
    threads: 1
    resources:
        mem_mb=500,
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/verify.py"


# The HTML report (`make report`): a PNG of every figure (a browser without a PDF plugin shows a PDF item blank)
# and the configuration as run. Part of the default target, so the report never lacks them.
FIGURE_PDFS = sorted({str(p) for p in PAPER_INPUTS if str(p).startswith("results/figures/") and str(p).endswith(".pdf")})


rule figure_previews:
    input:
        figures=FIGURE_PDFS,
    output:
        previews=report(directory("results/report/previews"), patterns=["{name}.png"],
                        caption="../report/previews.rst", category="Figure previews"),
    params:
        library=library("figure_previews.py"),
        dpi=110,
    log:
        "logs/paper/figure_previews.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/figure_previews.py"


rule effective_config:
    output:
        config=report("results/config.effective.yaml", caption="../report/effective_config.rst", category="Run"),
    params:
        library=library("effective_config.py"),
        config=dict(config, device=DEVICE),
    log:
        "logs/paper/effective_config.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/effective_config.py"


REPORT_INPUTS = [rules.figure_previews.output.previews, rules.effective_config.output.config]
