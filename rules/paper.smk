# Figures and generated macros → the PDF (latexmk). Local: cheap, and needs the TeX install.


localrules:
    paper,


rule paper:
    input:
        tex="paper/main.tex",
        sections=sorted(str(p) for p in Path("paper/sections").glob("*.tex")),
        bib="paper/references.bib",
        generated=PAPER_INPUTS,
    output:
        pdf=PAPER_PDF,
        macros="results/paper/macros.tex",
    log:
        "logs/paper/latexmk.log",
    conda:
        "../envs/latex.yaml"
    script:
        "../scripts/paper.py"
