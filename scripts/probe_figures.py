"""Rule `probe_figures`: study 1's figures, its results table and the paper's numbers."""

import pandas as pd

from layerwise.narrative.probes import probe_macros, reduction_figures
from layerwise.workflow.macros import write_macros
from layerwise.plots.probes import (plot_accuracy_grid, plot_condition_accuracy, plot_confusion,
                                    plot_cumulative_contributions, plot_top_attributions, plot_training_curves)
from layerwise.probes.attribution import top_with_weight_sign
from layerwise.probes.summary import condition_table, label_sizes
from layerwise.workflow.runlog import log_to_file

log_to_file(snakemake.log[0])
p, inp, out = snakemake.params, snakemake.input, snakemake.output
tables, histories, grids = [], [], []
for key, name, main in zip(p.models, p.names, p.main_dirs):
    get = lambda part: inp[f"{key}__{part}"]  # noqa: E731
    tables.append(condition_table(
        raw=pd.read_csv(get("raw")), conditions=[pd.read_csv(f) for f in get("conditions")],
        masks=pd.read_csv(f"{main}/raw/masks.csv"), transfer=pd.read_csv(get("transfer")),
        variant_raw=pd.read_csv(get("variant_raw")), variant_masks=pd.read_csv(get("variant_masks")),
        variant_conditions=[pd.read_csv(f) for f in get("variant_conditions")],
        nopunct=pd.read_csv(get("nopunct")), variant_transfer=pd.read_csv(get("variant_transfer")),
        transfer_nopunct=pd.read_csv(get("transfer_nopunct")), stability=pd.read_csv(get("stability")),
        n_texts=p.n_texts, variant_n_texts=p.variant_n_texts).assign(model=name))
    for path, variant in zip(get("histories"), ("raw", "normalised")):
        histories.append(pd.read_csv(path).assign(variant=f"{name}: {variant}"))
    for path, (n, length) in zip(get("grid"), p.grid):
        grids.append(pd.read_csv(path).assign(model=name, n_texts=n, context_length=length))
summary = pd.concat(tables, ignore_index=True)
summary.to_csv(out.table, index=False)
accuracies = summary[(summary["condition"] != "stability") & ~summary["condition"].str.startswith("transfer gap")]
plot_condition_accuracy(label_sizes(accuracies, p.n_texts)).savefig(out.conditions)
plot_training_curves(pd.concat(histories, ignore_index=True)).savefig(out.curves)
first = p.main_dirs[0]
plot_confusion(pd.read_csv(f"{first}/raw/confusion.csv")).savefig(out.confusion)
# the post's Fig. 7: top dimensions by |w_j x_j| share, coloured by the sign of the probe weight
top_n = int(pd.read_csv(f"{first}/raw/top.csv")["rank"].max())  # the probe rule's top_n
top = top_with_weight_sign(pd.read_parquet(f"{first}/raw/attribution.parquet"), top_n)
plot_top_attributions(top, sign_of="weight").savefig(out.attribution)
plot_cumulative_contributions(pd.read_csv(f"{first}/raw/cumulative.csv")).savefig(out.cumulative)
plot_accuracy_grid(pd.concat(grids, ignore_index=True)).savefig(out.grid)
dims = [pd.read_csv(f"{main}/raw/dims_for_share.csv").assign(model=name) for main, name in zip(p.main_dirs, p.names)]
macros = probe_macros(summary, pd.concat(dims, ignore_index=True), first_model=p.names[0], mask_k=p.mask_k,
                          n_texts=p.n_texts, variant_n_texts=p.variant_n_texts, max_tokens=p.max_tokens,
                          permutations=p.shuffle_permutations, seeds=len(p.stability_seeds))
macros["ProbeReductionFigures"] = reduction_figures(dict(zip(p.models, p.names)))
write_macros(macros, out.macros, header="rule probe_figures")
