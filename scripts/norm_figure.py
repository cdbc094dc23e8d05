"""Rule `norm_figure`: the norm-per-layer figure and its numbers for the paper."""

import pandas as pd

from layerwise.norms import norm_growth
from layerwise.paper import macro_name, write_macros
from layerwise.plots.norms import norm_profile
from layerwise.runlog import log_to_file

log_to_file(snakemake.log[0])
tables = []
macros = {}
for key, name, path in zip(snakemake.params.models, snakemake.params.names, snakemake.input.tables):
    table = pd.read_csv(path).assign(model=name)
    tables.append(table)
    macros[macro_name("norm growth", key)] = norm_growth(table)
    mean = table[table["stat"] == "mean"]
    macros[macro_name("norm layer zero", key)] = float(mean[mean["layer"] == 0]["value"].iloc[0])
    macros[macro_name("norm last layer", key)] = float(mean[mean["layer"] == mean["layer"].max()]["value"].iloc[0])
fig = norm_profile(pd.concat(tables))
fig.savefig(snakemake.output.figure)
write_macros(macros, snakemake.output.macros, header="rule norm_figure")
