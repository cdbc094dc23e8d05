"""Rule `geometry_figures`: anisotropy and ID profiles (relative depth), summary and paper numbers."""

import pandas as pd

from layerwise.narrative.geometry import geometry_macros
from layerwise.workflow.macros import write_macros
from layerwise.plots.geometry import (plot_anisotropy_batches, plot_anisotropy_profiles, plot_intrinsic_dimension_batches,
                                      plot_intrinsic_dimension_profiles, summarise_profiles)
from layerwise.workflow.runlog import log_to_file

log_to_file(snakemake.log[0])
table = pd.concat([pd.read_csv(path).assign(model=name)
                   for path, name in zip(snakemake.input.tables, snakemake.params.names)], ignore_index=True)
if getattr(snakemake.input, "batches", None):
    batches = pd.concat([pd.read_csv(path).assign(model=name)
                         for path, name in zip(snakemake.input.batches, snakemake.params.names)], ignore_index=True)
    plot_anisotropy_batches(batches).savefig(snakemake.output.anisotropy)
    plot_intrinsic_dimension_batches(batches).savefig(snakemake.output.intrinsic_dimension)
else:  # a run started before the per-batch tables existed: the mean profiles
    plot_anisotropy_profiles(table).savefig(snakemake.output.anisotropy)
    plot_intrinsic_dimension_profiles(table).savefig(snakemake.output.intrinsic_dimension)
summary = summarise_profiles(table)
summary.to_csv(snakemake.output.summary, index=False)
write_macros(geometry_macros(table, summary, fraction=snakemake.params.fraction, batch_size=snakemake.params.batch_size),
             snakemake.output.macros, header="rule geometry_figures")
