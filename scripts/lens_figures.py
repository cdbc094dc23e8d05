"""Rule `lens_figures`: dataset-level logit-lens curves (decoders side by side) and the paper's numbers."""

import pandas as pd

from layerwise.narrative.lens import lens_macros
from layerwise.paper import write_macros
from layerwise.plots.lens import plot_lens_curves
from layerwise.runlog import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
summary = pd.concat([pd.read_csv(path, dtype={"layer": str}).assign(model=name)
                     for path, name in zip(snakemake.input.summaries, p.names)], ignore_index=True)
changes = pd.concat([pd.read_csv(path, dtype={"from_layer": str, "to_layer": str}).assign(model=name)
                     for path, name in zip(snakemake.input.changes, p.names)], ignore_index=True)
plot_lens_curves(summary, hue="model", col="decoder", relative_depth=True).savefig(snakemake.output.curves)
write_macros(lens_macros(summary, changes, heatmaps=p.heatmaps, model_names=p.model_names, example=p.example,
                         window=p.window, window_layer_step=p.window_layer_step),
             snakemake.output.macros, header="rule lens_figures")
