"""Rule `probe_faithful`: the post-faithful probe and the post's ablations on it (layerwise.probes.faithful)."""

import numpy as np
import torch

from layerwise.probes.faithful import faithful_ablations
from layerwise.probes.features import split_layer_dataset
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)  # the rule's threads, no more
p, out = snakemake.params, snakemake.output
# the post's setting: position 0 kept, the last class the state after the final norm (HF hidden_states[-1])
setting = dict(include_position0=True, final_norm_last=True)
store = ActivationStore.open(snakemake.input.store)
load = lambda: split_layer_dataset(store, p.test_fraction, p.seed, **setting)  # noqa: E731
_, target_test = split_layer_dataset(ActivationStore.open(snakemake.input.target), p.test_fraction, p.seed, **setting)
labels = np.unique(target_test.y)
tables = faithful_ablations(load, target_test, labels, seed=p.seed, probe_params=p.probe, mask_k=p.mask_k,
                            top_n=p.top_n, random_draws=p.random_mask_draws)
tables["scores"][tables["scores"]["condition"] == "post_faithful"].to_csv(out.scores, index=False)
tables["scores"].to_csv(out.ablations, index=False)
tables["attribution"].to_parquet(out.attribution, index=False)
for name in ("texts", "history", "random_masks", "top", "dims_for_share"):
    tables[name].to_csv(getattr(out, name), index=False)
log.info("post-faithful ablations: %s", tables["scores"].to_dict("records"))
