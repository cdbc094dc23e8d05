"""Rule `probe_condition`: one control or ablation (normalised, random, shuffled labels, tree, position 0)."""

import numpy as np
import pandas as pd

from layerwise.probes.conditions import run_condition, scores, split
from layerwise.probes.features import layer_dataset
from layerwise.runlog import log_to_file
from layerwise.store import ActivationStore

log = log_to_file(snakemake.log[0])
p, condition = snakemake.params, snakemake.wildcards.condition
# "with_position0" is the raw probe on data that keeps position 0 (the attention sink).
include0 = True if condition == "with_position0" else p.include_position0
data = layer_dataset(ActivationStore.open(snakemake.input.store), include_position0=include0)
train, test = split(data, p.test_fraction, p.seed)
labels = np.unique(data.y)
run = run_condition("raw" if condition == "with_position0" else condition, train, test, seed=p.seed,
                    probe_params=p.probe, tree_params=p.tree)
scores(run, labels, condition=condition).to_csv(snakemake.output.scores, index=False)
history = getattr(run.estimator, "history_", pd.DataFrame(columns=["epoch", "split", "metric", "value"]))
history.to_csv(snakemake.output.history, index=False)
