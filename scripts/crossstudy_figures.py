"""Rule `crossstudy_figures`: the cross-study figure, the tables over models and the section's macros."""

import pandas as pd
from matplotlib.figure import Figure

from layerwise.narrative.crossstudy import crossstudy_macros
from layerwise.workflow.macros import write_macros
from layerwise.plots.crossstudy import plot_crossstudy
from layerwise.workflow.runlog import log_to_file

log = log_to_file(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
layers = pd.concat([pd.read_csv(f) for f in inp.layers], ignore_index=True) if inp.layers else pd.DataFrame()
correlations = pd.concat([pd.read_csv(f) for f in inp.correlations], ignore_index=True) if inp.correlations \
    else pd.DataFrame()
sources = pd.concat([pd.read_csv(f) for f in inp.sources], ignore_index=True) if inp.sources else pd.DataFrame()
names = dict(zip(layers["model"].drop_duplicates(), p.names)) if len(layers) else {}
layers.to_csv(out.layers, index=False)
correlations.to_csv(out.correlations, index=False)
figure = plot_crossstudy(layers.assign(model=layers["model"].map(names))) if len(layers) else Figure(figsize=(1, 1))
figure.savefig(out.figure)
write_macros(crossstudy_macros(layers, correlations, sources, names, n_boot=p.n_boot, confidence=p.confidence),
             out.macros, header="rule crossstudy_figures")
log.info("%d models, %d layer rows, %d correlations", len(names), len(layers), len(correlations))
