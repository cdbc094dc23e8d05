"""Rule `geometry`: anisotropy and TwoNN ID of every layer of one activation store."""

from layerwise.geometry import geometry_table
from layerwise.runlog import log_to_file
from layerwise.store import FINAL_NORM, ActivationStore

log = log_to_file(snakemake.log[0])
p = snakemake.params
store = ActivationStore.open(snakemake.input.store)
rows = store.position_mask(p.include_position0)
kwargs = dict(batch_size=p.batch_size, seed=p.seed, fraction=p.fraction, block_size=p.block_size,
              n_candidates=p.n_candidates, backend=p.backend)
table = geometry_table({layer: store.layer(layer)[rows] for layer in store.layers}, **kwargs)
facts = store.manifest["model"]
table = table.assign(kind=facts["kind"], n_layers=facts["n_layers"], include_position0=p.include_position0)
table.to_csv(snakemake.output.layers, index=False)
# The post-final-norm state is a different object from the residual stream: its own table.
final = geometry_table({FINAL_NORM: store.layer(FINAL_NORM)[rows]}, **kwargs) if store.manifest["has_final_norm"] \
    else table.iloc[0:0]
final.to_csv(snakemake.output.final_norm, index=False)
log.info("%d layers × %d vectors", len(store.layers), int(rows.sum()))
