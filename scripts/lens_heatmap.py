"""Rule `lens_heatmap`: one of the post's heatmaps (value = top-1 logit, ranks or KLs) for one text, either
the full grid (view = grid, for the report) or the paper's window of positions (view = window)."""

import pandas as pd

from layerwise.plots.lens import plot_lens_heatmap, resolve_window
from layerwise.runlog import log_to_file

log = log_to_file(snakemake.log[0])
p, wc = snakemake.params, snakemake.wildcards
table = pd.read_parquet(snakemake.input.table)
n_positions = int(table["position"].max()) + 1
if wc.view == "window":
    positions, layer_step = resolve_window(p.window, n_positions), p.window_layer_step
else:
    positions, layer_step = (0, min(n_positions, p.max_positions)), p.layer_step
log.info("%s of %s: positions %s of %d, every %d-th block", wc.value, wc.text, positions, n_positions, layer_step)
fig = plot_lens_heatmap(table, value=wc.value, layer_step=layer_step, positions=positions)
fig.savefig(snakemake.output.figure)
