"""Rule `probe_transfer`: train on one dataset, test on another; train on the mix, test on each."""

import numpy as np

from layerwise.probes.conditions import split, transfer_scores
from layerwise.probes.features import layer_dataset
from layerwise.runlog import log_to_file
from layerwise.store import ActivationStore

log_to_file(snakemake.log[0])
p = snakemake.params
source = layer_dataset(ActivationStore.open(snakemake.input.source), include_position0=p.include_position0)
target = layer_dataset(ActivationStore.open(snakemake.input.target), include_position0=p.include_position0)
train_a, test_a = split(source, p.test_fraction, p.seed)
train_b, test_b = split(target, p.test_fraction, p.seed)
labels = np.unique(source.y)
transfer_scores(train_a, test_a, train_b, test_b, labels, seed=p.seed, probe_params=p.probe,
                names=tuple(p.names)).to_csv(snakemake.output.scores, index=False)
