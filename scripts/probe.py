"""Rule `probe`: the reference layer probe (raw vectors) and everything read off it."""

import numpy as np
import pandas as pd
import torch

from layerwise.probes.claims import per_text
from layerwise.probes.conditions import raw_probe_analyses, run_condition, scores
from layerwise.probes.masks import masked_predictions, random_mask_baseline
from layerwise.probes.features import split_layer_dataset
from layerwise.probes.saved import save_probe
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)  # the rule's threads, no more
p, out = snakemake.params, snakemake.output
train, test = split_layer_dataset(ActivationStore.open(snakemake.input.store), p.test_fraction, p.seed,
                                  include_position0=p.include_position0)
labels = np.unique(np.concatenate([train.y, test.y]))
run = run_condition("raw", train, test, seed=p.seed, probe_params=p.probe, tree_params=p.tree, overwrite=True)
table = scores(run, labels, condition="raw")
table.to_csv(out.scores, index=False)
save_probe(out.model, run)  # reused by the transfer and the per-dimension random control, not fitted again
# Per-vector test predictions with their text: the cross-study view resamples texts for probe recall.
pd.DataFrame({"text_id": test.text_ids, "true_layer": run.y_test, "predicted_layer": run.y_pred}).to_parquet(
    out.predictions, index=False)
tables = raw_probe_analyses(run, labels, mask_k=p.mask_k, top_n=p.top_n, retrain_masked=p.retrain_masked)
tables.pop("attribution").to_parquet(out.attribution, index=False)
for name, result in tables.items():
    result.to_csv(getattr(out, name), index=False)
# Per test text, raw and with the frequent dims masked at test: the verdicts' bootstrap unit.
dims = [int(d) for d in str(tables["masks"]["dims"].iloc[0]).split(",") if d]
pd.concat([per_text(test.text_ids, run.y_test == run.y_pred).assign(condition="raw"),
           per_text(test.text_ids, run.y_test == masked_predictions(run, dims)).assign(condition="masked_at_test")],
          ignore_index=True).to_csv(out.texts, index=False)
log.info("raw probe: %s", table.to_dict("records"))
# The baseline of the top-dims masking: the same masking with random dimensions (seeded draws).
random_mask_baseline(run, p.mask_k, p.random_mask_draws, p.seed).to_csv(out.random_masks, index=False)
