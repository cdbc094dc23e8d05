"""Rule `probe_transfer`: train on one dataset, test on another; train on the mix, test on each.

The probe trained on A alone is rule `probe`'s raw fit of the same store and split, loaded (not fitted again).
With `punct=nopunct` both datasets have their punctuation stripped before extraction (the post's proposed
explanation of the IMDB → AG News drop, tested on both sides).
"""

import numpy as np
import pandas as pd
import torch

from layerwise.probes.claims import per_text
from layerwise.probes.conditions import transfer_scores
from layerwise.probes.features import split_layer_datasets
from layerwise.probes.saved import load_probe
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)  # the rule's threads, no more
p = snakemake.params
# both training splits in one matrix (A's rows first), which the A+B probe then standardises in place
train, (train_a, _), (test_a, test_b) = split_layer_datasets(
    [ActivationStore.open(snakemake.input.source), ActivationStore.open(snakemake.input.target)], p.test_fraction,
    p.seed, include_position0=p.include_position0)
labels = np.unique(np.concatenate([train_a.y, test_a.y]))
reference = load_probe(snakemake.input.reference)
# Per test text, the A-trained probe on each dataset (the verdicts' bootstrap unit): scored before the A+B fit.
texts = pd.concat([per_text(t.text_ids, reference.predict(t.X) == t.y).assign(train=p.names[0], test=name)
                   for name, t in zip(p.names, (test_a, test_b))], ignore_index=True)
texts.to_csv(snakemake.output.texts, index=False)
table = transfer_scores(train, test_a, test_b, labels, n_a=train_a.y.size, seed=p.seed, probe_params=p.probe,
                        names=tuple(p.names), reference=reference, mix=p.mix)
table.to_csv(snakemake.output.scores, index=False)
log.info("transfer (%s): %s", snakemake.wildcards.punct, table.to_dict("records"))
