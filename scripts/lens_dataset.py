"""Rule `lens_dataset`: the logit lens over a seeded sample of a dataset, its per-layer summary and the
input-discarding jump (input row -> layer 1) of KL(final || .) and KL(input || .)."""

import json

import pandas as pd

from layerwise.lens.decode import logit_lens_dataset
from layerwise.lens.adapters import final_norm_kind
from layerwise.lens.stats import layer_change, select_positions, summarize_lens
from layerwise.resources.models import load_model, read_card
from layerwise.workflow.runlog import log_to_file

log = log_to_file(snakemake.log[0])
p, wc = snakemake.params, snakemake.wildcards
loaded = load_model(read_card(snakemake.input.card), lm_head=True, device=p.device)
layout = json.load(open(snakemake.input.provenance))["layout"]
table, _ = logit_lens_dataset(loaded, pd.read_parquet(snakemake.input.table), layout, n_texts=p.n_texts,
                              max_tokens=p.max_tokens, min_tokens=p.min_tokens, seed=p.seed, decoder=wc.decoder,
                              subblocks=p.subblocks)
table.to_parquet(snakemake.output.table, index=False)
used = select_positions(table, include_position0=p.include_position0).assign(model=wc.model, decoder=wc.decoder)
summary = summarize_lens(used, by=("model", "decoder", "layer", "depth"), seed=p.seed)
summary.assign(n_layers=loaded.facts.n_layers, include_position0=p.include_position0,
               final_norm=final_norm_kind(loaded.model)).to_csv(
    snakemake.output.summary, index=False)
first_block = "1.mlp" if p.subblocks else "1"  # the post's layer 1: block 1's output (after its MLP)
changes = layer_change(used, from_layer="0", to_layer=first_block, by=("model", "decoder"), seed=p.seed)
changes.assign(include_position0=p.include_position0).to_csv(snakemake.output.changes, index=False)
