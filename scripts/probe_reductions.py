"""Rule `probe_reductions`: PCA / t-SNE / UMAP of all layers' vectors, the post's three inputs: raw (its Fig. 4),
without layer 0 (Fig. 2), unit-norm without layer 0 (Fig. 3). (A unit-norm map with layer 0, which the post has
not, cost a quarter of the rule's time.)"""

import pandas as pd

from layerwise.plots.probes import plot_reductions
from layerwise.probes.controls import normalise_rows
from layerwise.probes.features import layer_dataset
from layerwise.probes.reductions import reduction_table
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log_to_file(snakemake.log[0])
p = snakemake.params
data = layer_dataset(ActivationStore.open(snakemake.input.store), include_position0=p.include_position0)
no0 = data.y > 0
# Only each variant's subsample is copied and normalised (not three copies of every vector).
variants = {"raw": {}, "no_layer0": dict(keep=no0), "normalised_no_layer0": dict(keep=no0, transform=normalise_rows)}
table = pd.concat([reduction_table(data.X, data.y, p.methods, n_per_layer=p.n_per_layer, seed=p.seed, variant=name,
                                   **subset) for name, subset in variants.items()], ignore_index=True)
table.to_parquet(snakemake.output.table, index=False)
plot_reductions(table).savefig(snakemake.output.figure, dpi=150)
