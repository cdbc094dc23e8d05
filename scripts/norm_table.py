"""Rule `norm_table`: per-layer L2-norm statistics of one activation store."""

import pandas as pd

from layerwise.norms import norm_table, per_text_norms
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log = log_to_file(snakemake.log[0])
store = ActivationStore.open(snakemake.input.store)
rows = store.position_mask(snakemake.params.include_position0)
table = norm_table({layer: store.layer(layer) for layer in store.layers}, rows)
table.insert(0, "include_position0", snakemake.params.include_position0)
table.to_csv(snakemake.output.table, index=False)
# Per text, in our setting and in the post's (position 0 kept, the final norm's output as the last layer): the
# resampling unit of the norm-growth verdicts.
text_index = store.tokens["text_index"].to_numpy()
faithful_layers = dict(store.iter_layers(include_final_norm=True))
pd.concat([per_text_norms({l: store.layer(l) for l in store.layers}, text_index, rows).assign(setting="ours"),
           per_text_norms(faithful_layers, text_index, store.position_mask(True)).assign(setting="faithful")],
          ignore_index=True).to_csv(snakemake.output.per_text, index=False)
log.info("%d layers, %d vectors each", len(store.layers), int(rows.sum()))
