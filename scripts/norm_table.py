"""Rule `norm_table`: per-layer L2-norm statistics of one activation store."""

from layerwise.norms import norm_table
from layerwise.runlog import log_to_file
from layerwise.store import ActivationStore

log = log_to_file(snakemake.log[0])
store = ActivationStore.open(snakemake.input.store)
rows = store.position_mask(snakemake.params.include_position0)
table = norm_table({layer: store.layer(layer) for layer in store.layers}, rows)
table.insert(0, "include_position0", snakemake.params.include_position0)
table.to_csv(snakemake.output.table, index=False)
log.info("%d layers, %d vectors each", len(store.layers), int(rows.sum()))
