"""Rule `crossstudy_model`: one model's per-layer cross-study table and rank correlations with text-bootstrap intervals."""

import numpy as np
import pandas as pd

from layerwise.crossstudy.view import (correlation_table, group_rows, join_layers, layer_intervals, multiplicities,
                                       ratio_replicates, resampling_units, store_quantities, text_codes)
from layerwise.crossstudy.readers import (geometry_reference, lens_per_text, norms_reference,
                                          probe_recall_from_confusion, probe_recall_per_text)
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log = log_to_file(snakemake.log[0])
p, inp, wc = snakemake.params, snakemake.input, snakemake.wildcards
store = ActivationStore.open(inp.store)
n_layers, kind = store.manifest["model"]["n_layers"], store.manifest["model"]["kind"]
rows = store.position_mask(p.include_position0)
codes, texts = text_codes(store.tokens["text_index"].to_numpy()[rows])
units = resampling_units(len(texts), p.max_units, np.random.default_rng([p.seed, 2]))
n_units = int(units.max()) + 1
# One seeded draw of unit multiplicities per independent sample of texts: the store's, and the lens study's.
store_weights = multiplicities(n_units, p.n_boot, np.random.default_rng([p.seed, 0]))
points, reps = store_quantities([store.layer(layer)[rows] for layer in store.layers], units[codes], store_weights,
                                fraction=p.fraction, block_size=p.block_size, n_candidates=p.n_candidates,
                                backend=p.backend)
sources = {q: dict(data=p.store_data, n_texts=len(texts), interval="texts resampled")
           for q in ("anisotropy", "mean_norm")}
sources["twonn_id"] = dict(data=p.store_data, n_texts=len(texts),
                           interval="texts resampled, neighbours fixed from the full pool")
if n_units < len(texts):
    for source in sources.values():
        source["interval"] += f" (in {n_units} random groups of texts)"
log.info("store %s: %d layers, %d vectors per layer, %d texts in %d resampling units", inp.store, n_layers + 1,
         len(codes), len(texts), n_units)

if "predictions" in inp.keys():
    sums, counts = probe_recall_per_text(inp.predictions, texts, n_layers)
    n_test = int((counts.sum(1) > 0).sum())
    points["probe_recall"], reps["probe_recall"] = ratio_replicates(group_rows(sums, units),
                                                                    group_rows(counts, units), store_weights)
    sources["probe_recall"] = dict(data=p.probe_data, n_texts=n_test, interval="test texts resampled")
else:
    recall = probe_recall_from_confusion(inp.confusion).sort_values("layer")
    if len(recall) != n_layers + 1:
        raise ValueError(f"{inp.confusion}: {len(recall)} layers, the store has {n_layers + 1}")
    points["probe_recall"], reps["probe_recall"] = recall["probe_recall"].to_numpy(), None
    sources["probe_recall"] = dict(data=p.probe_data, n_texts=np.nan,
                                   interval="none (the probe rule stores no per-text test predictions)")

if "lens" in inp.keys():
    lens_texts, lens = lens_per_text(inp.lens, p.include_position0)
    lens_weights = multiplicities(len(lens_texts), p.n_boot, np.random.default_rng([p.seed, 1]))
    for name, (sums, counts) in lens.items():
        points[name], reps[name] = ratio_replicates(sums, counts, lens_weights)
        sources[name] = dict(data=p.lens_data, n_texts=len(lens_texts), interval="texts resampled")

columns = {q: layer_intervals(q, points[q], reps[q], p.confidence) for q in points}
if "geometry" in inp.keys():
    columns["geometry study"] = geometry_reference(inp.geometry)
if "norms" in inp.keys():
    columns["norm study"] = norms_reference(inp.norms)
table = join_layers(wc.model, n_layers, columns)
table.insert(1, "kind", kind)
table.insert(2, "n_layers", n_layers)
table.to_csv(snakemake.output.layers, index=False)
correlation_table(wc.model, points, reps, p.pairs, p.confidence).assign(kind=kind).to_csv(
    snakemake.output.correlations, index=False)
pd.DataFrame([{"model": wc.model, "quantity": q, **s} for q, s in sources.items()]).to_csv(
    snakemake.output.sources, index=False)
log.info("%d quantities, %d resamples", len(points), p.n_boot)
