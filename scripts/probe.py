"""Rule `probe`: the reference layer probe (raw vectors) and everything read off it."""

import numpy as np

from layerwise.probes.conditions import raw_probe_analyses, run_condition, scores, split
from layerwise.probes.features import layer_dataset
from layerwise.runlog import log_to_file
from layerwise.store import ActivationStore

log = log_to_file(snakemake.log[0])
p, out = snakemake.params, snakemake.output
data = layer_dataset(ActivationStore.open(snakemake.input.store), include_position0=p.include_position0)
train, test = split(data, p.test_fraction, p.seed)
labels = np.unique(data.y)
run = run_condition("raw", train, test, seed=p.seed, probe_params=p.probe, tree_params=p.tree)
scores(run, labels, condition="raw").to_csv(out.scores, index=False)
tables = raw_probe_analyses(run, test, labels, seed=p.seed, mask_k=p.mask_k, top_n=p.top_n)
tables.pop("attribution").to_parquet(out.attribution, index=False)
for name, table in tables.items():
    table.to_csv(getattr(out, name), index=False)
log.info("raw probe: %s", scores(run, labels).to_dict("records"))
