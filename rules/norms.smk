# The first figure: L2 norm of each layer's residual stream, per model.

NORMS = config["norms"]
check_models("norms", NORMS["models"])


def norm_table_path(model):
    return f"results/norms/{model}/{NORMS['dataset']}/{sampling(NORMS['n_texts'], NORMS['max_tokens'])}.csv"


rule norm_table:
    input:
        store="results/activations/{model}/{dataset}/{sampling}",
    output:
        table="results/norms/{model}/{dataset}/{sampling}.csv",
    params:
        include_position0=NORMS["include_position0"],
    log:
        "logs/norms/{model}/{dataset}/{sampling}.log",
    script:
        "../scripts/norm_table.py"


rule norm_figure:
    input:
        tables=[norm_table_path(m) for m in NORMS["models"]],
    output:
        figure=report("results/figures/norms.pdf", caption="../report/norms.rst", category="Norms"),
        macros="results/macros/norms.tex",
    params:
        models=NORMS["models"],
        names=[display_name(m) for m in NORMS["models"]],
    log:
        "logs/norms/figure.log",
    script:
        "../scripts/norm_figure.py"


PAPER_INPUTS.extend(rules.norm_figure.output)
