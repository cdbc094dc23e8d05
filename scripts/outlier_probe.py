"""Rule `outlier_probe`: the layer probe with and without outlier tokens, and whether its top dims are massive."""

from layerwise.outliers.probes import probe_without_outliers
from layerwise.probes.features import layer_dataset
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log = log_to_file(snakemake.log[0])
p = snakemake.params
data = layer_dataset(ActivationStore.open(snakemake.input.store), include_position0=p.include_position0)
scores, dims = probe_without_outliers(data.X, data.y, data.text_ids, k=p.k, test_fraction=p.test_fraction,
                                      seed=p.seed, probe_params=p.probe, mask_k=p.mask_k, top_n=p.top_n,
                                      absolute=p.absolute, relative=p.relative)
scores.to_csv(snakemake.output.scores, index=False)
dims.to_csv(snakemake.output.dims, index=False)
log.info("probe with/without outliers: %s", scores.to_dict("records"))
