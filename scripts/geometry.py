"""Rule `geometry`: anisotropy and TwoNN ID of every layer of one activation store, per batch and averaged."""

import numpy as np
import pandas as pd

from layerwise.geometry import aggregate_batch_table, batch_table, geometry_table
from layerwise.outliers.detect import norm_ratios
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import FINAL_NORM, ActivationStore

log = log_to_file(snakemake.log[0])
p = snakemake.params
store = ActivationStore.open(snakemake.input.store)
rows = store.position_mask(p.include_position0)
kwargs = dict(batch_size=p.batch_size, seed=p.seed, fraction=p.fraction, block_size=p.block_size,
              n_candidates=p.n_candidates, backend=p.backend)
facts = store.manifest["model"]
special = bool(store.manifest.get("position0_is_special", False))
# A run started before the per-batch outputs existed (its rule has no `batches`/`position0`) still finishes.
outlier_k = getattr(p, "outlier_k", None)
batches_out = getattr(snakemake.output, "batches", None)
position0_out = getattr(snakemake.output, "position0", None)
sweep = dict(k_sweep=getattr(p, "k_sweep", ()), top_m=getattr(p, "top_m", ()))  # outlier sensitivity
per_batch = batch_table({layer: store.layer(layer)[rows] for layer in store.layers}, outlier_k=outlier_k,
                        **sweep, **kwargs).assign(position0=p.include_position0)
table = aggregate_batch_table(per_batch)
if not p.include_position0 and batches_out:
    # The source's setting: it excluded nothing, so position 0 is kept (anisotropy only: the cheap variant).
    every = store.position_mask(True)
    kept = batch_table({layer: store.layer(layer)[every] for layer in store.layers}, with_twonn=False,
                       **kwargs).assign(position0=True)
    per_batch = pd.concat([per_batch, kept], ignore_index=True)
if batches_out:
    per_batch.assign(kind=facts["kind"], n_layers=facts["n_layers"], position0_is_special=special).to_csv(
        batches_out, index=False)
table = table.assign(kind=facts["kind"], n_layers=facts["n_layers"], include_position0=p.include_position0)
table.to_csv(snakemake.output.layers, index=False)
# Position 0 as the data say: is it a special token (manifest), and how many of its vectors are outliers
# (norm > k x the layer's median norm over all positions)?
first = store.tokens["position"].to_numpy() == 0
records = []
for layer in store.layers if position0_out else []:
    ratio = norm_ratios(store.layer(layer))[first]
    records.append({"layer": layer, "n_position0": int(first.sum()), "n_outliers": int((ratio > outlier_k).sum()),
                    "median_norm_ratio": float(np.median(ratio)), "position0_is_special": special})
if position0_out:
    pd.DataFrame(records).to_csv(position0_out, index=False)
# The post-final-norm state is a different object from the residual stream: its own table.
final = geometry_table({FINAL_NORM: store.layer(FINAL_NORM)[rows]}, **kwargs) if store.manifest["has_final_norm"] \
    else table.iloc[0:0]
final.to_csv(snakemake.output.final_norm, index=False)
log.info("%d layers × %d vectors", len(store.layers), int(rows.sum()))
