"""Rule `outliers`: outlier tokens, massive activations and Study 3 with and without them, per layer of one store."""

from layerwise.outliers.geometry import outlier_study
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log = log_to_file(snakemake.log[0])
p = snakemake.params
store = ActivationStore.open(snakemake.input.store)
rows = store.position_mask(p.include_position0)
twonn = dict(fraction=p.fraction, block_size=p.block_size, n_candidates=p.n_candidates) if p.twonn else None
layers, occurrences, massive = outlier_study(
    {layer: store.layer(layer)[rows] for layer in store.layers}, store.tokens[rows], k=p.k, absolute=p.absolute,
    relative=p.relative, batch_size=p.batch_size, seed=p.seed, twonn_kwargs=twonn, backend=p.backend)
facts = store.manifest["model"]
layers.assign(kind=facts["kind"], n_layers=facts["n_layers"], k=p.k).to_csv(snakemake.output.layers, index=False)
occurrences.to_csv(snakemake.output.occurrences, index=False)
massive.to_csv(snakemake.output.massive, index=False)
log.info("%d layers; %d outlier (layer, token) pairs; %d massive entries", len(layers), len(occurrences), len(massive))
