"""Rule `training_figures`: learning curves, geometry per checkpoint, and the paper's numbers."""

import pandas as pd

from layerwise.narrative.training import training_macros
from layerwise.workflow.macros import write_macros
from layerwise.plots.checkpoints import layer_mean_by_step, profiles_by_checkpoint
from layerwise.plots.training import plot_learning_curves
from layerwise.workflow.runlog import log_to_file
from layerwise.training.summary import seed_means, training_summary

log_to_file(snakemake.log[0])
p = snakemake.params
log = pd.concat([pd.read_csv(path) for path in snakemake.input.logs], ignore_index=True)
# Several seeds per kind: the lines are the seed means, the error bars span seeds x held-out batches.
geometry = seed_means(pd.concat([pd.read_csv(path) for path in snakemake.input.geometry], ignore_index=True))
final_norm = seed_means(pd.concat([pd.read_csv(path) for path in snakemake.input.final_norm], ignore_index=True))
train_bytes = len("".join(pd.read_parquet(snakemake.input.table)["text"]).encode()) * (1 - p.val_fraction)
passes = log["step"].max() * p.tokens_per_step / train_bytes
# Per-batch tables (absent in a run whose rule predates them): error bars over batches.
batch_paths = getattr(snakemake.input, "batches", None)
batches = pd.concat([pd.read_csv(path) for path in batch_paths], ignore_index=True) if batch_paths else None
plot_learning_curves(log, splits=("train", "val")).savefig(snakemake.output.curves)
profiles_by_checkpoint(geometry, "anisotropy", batches=batches).savefig(snakemake.output.anisotropy)
layer_mean_by_step(geometry, "twonn_id", include_layer0=p.layer0_in_averages, batches=batches).savefig(
    snakemake.output.intrinsic_dimension)
summary = training_summary(geometry, include_layer0=p.layer0_in_averages)
write_macros(training_macros(summary, log, geometry=geometry, final_norm=final_norm, arch=p.arch,
                             encoder_block=p.encoder_block, layer0_in_averages=p.layer0_in_averages,
                             passes=passes),
             snakemake.output.macros, header="rule training_figures")
