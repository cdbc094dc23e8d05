"""Rule `probe_stability`: the raw probe over several seeds (new split each) and top-dimension overlap."""

import torch

from layerwise.probes.features import layer_dataset
from layerwise.probes.stability import seed_stability
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)  # the rule's threads, no more
p = snakemake.params
data = layer_dataset(ActivationStore.open(snakemake.input.store), include_position0=p.include_position0)
result = seed_stability(data.X, data.y, data.text_ids, p.seeds, test_fraction=p.test_fraction, top_n=p.top_n,
                        k_frequent=p.mask_k, probe_params=p.probe)
result.runs.to_csv(snakemake.output.runs, index=False)
result.overlap.to_csv(snakemake.output.overlap, index=False)
