"""Rule `lens_heatmap`: one of the post's heatmaps (value = top-1 logit, ranks or KLs) for one text."""

import pandas as pd

from layerwise.plots.lens import plot_lens_heatmap
from layerwise.runlog import log_to_file

log_to_file(snakemake.log[0])
table = pd.read_parquet(snakemake.input.table)
positions = (0, min(int(table["position"].max()) + 1, snakemake.params.max_positions))
fig = plot_lens_heatmap(table, value=snakemake.wildcards.value, layer_step=snakemake.params.layer_step,
                        positions=positions)
fig.savefig(snakemake.output.figure)
