# The three studies' verdict tables → one sentence for the abstract and the introduction (how many claims of
# each source reproduced). Included after the studies: it reads the CSVs their rules write.

VERDICT_TABLES = {
    "the layer probe (Study 1)": "results/verdicts/probes.csv",
    "the logit lens (Study 2)": "results/verdicts/lens.csv",
    "anisotropy and intrinsic dimension (Study 3)": "results/verdicts/geometry.csv",
}


rule verdict_summary:
    input:
        list(VERDICT_TABLES.values()),
    output:
        macros="results/macros/verdicts.tex",
    params:
        library=library("verdict_summary.py"),
        studies=list(VERDICT_TABLES),
    log:
        "logs/paper/verdict_summary.log",
    threads: 1
    resources:
        mem_mb=500,
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/verdict_summary.py"


PAPER_INPUTS.append(rules.verdict_summary.output.macros)
