"""Rule `lens_heatmap`: the post's heatmaps (value = top-1 logit, ranks or KLs) of one text, each both as the
full grid (view = grid, for the report) and as the paper's window of positions (view = window)."""

import matplotlib.pyplot as plt
import pandas as pd

from layerwise.plots.lens import plot_lens_heatmap, resolve_window
from layerwise.workflow.runlog import log_to_file

log = log_to_file(snakemake.log[0])
p, wc = snakemake.params, snakemake.wildcards
table = pd.read_parquet(snakemake.input.table)
n_positions = int(table["position"].max()) + 1
for (value, view), path in zip(p.views, snakemake.output.figures, strict=True):
    if view == "window":  # the paper's: drawn at its printed width
        positions, layer_step, width = resolve_window(p.window, n_positions), p.window_layer_step, p.width
    else:
        positions, layer_step, width = (0, min(n_positions, p.max_positions)), p.layer_step, None
    log.info("%s of %s: positions %s of %d, every %d-th block -> %s", value, wc.text, positions, n_positions,
             layer_step, path)
    fig = plot_lens_heatmap(table, value=value, layer_step=layer_step, positions=positions, width=width,
                            title=f"{wc.text}: {p.title}", block_outputs_only=view == "window")
    fig.savefig(path)
    plt.close(fig)
