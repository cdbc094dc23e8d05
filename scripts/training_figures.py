"""Rule `training_figures`: learning curves, geometry per checkpoint, and the paper's numbers."""

import pandas as pd

from layerwise.narrative.training import training_macros
from layerwise.paper import write_macros
from layerwise.plots.checkpoints import layer_mean_by_step, profiles_by_checkpoint
from layerwise.plots.training import plot_learning_curves
from layerwise.runlog import log_to_file
from layerwise.training.summary import training_summary

log_to_file(snakemake.log[0])
log = pd.concat([pd.read_csv(p) for p in snakemake.input.logs], ignore_index=True)
geometry = pd.concat([pd.read_csv(p) for p in snakemake.input.geometry], ignore_index=True)
plot_learning_curves(log, splits=("train", "val")).savefig(snakemake.output.curves)
profiles_by_checkpoint(geometry, "anisotropy").savefig(snakemake.output.anisotropy)
layer_mean_by_step(geometry, "twonn_id").savefig(snakemake.output.intrinsic_dimension)
write_macros(training_macros(training_summary(geometry), log), snakemake.output.macros,
             header="rule training_figures")
