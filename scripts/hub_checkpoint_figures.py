"""Rule `hub_checkpoint_figures`: geometry across published checkpoints (e.g. Pythia stepN revisions)."""

import pandas as pd

from layerwise.plots.checkpoints import layer_mean_by_step, profiles_by_checkpoint
from layerwise.workflow.runlog import log_to_file

log_to_file(snakemake.log[0])
table = pd.concat([pd.read_csv(path).assign(step=step)
                   for path, step in zip(snakemake.input.tables, snakemake.params.steps)], ignore_index=True)
profiles_by_checkpoint(table, "anisotropy", kinds=sorted(table["kind"].unique())).savefig(snakemake.output.anisotropy)
layer_mean_by_step(table, "twonn_id", include_layer0=snakemake.params.layer0_in_averages).savefig(
    snakemake.output.intrinsic_dimension)
