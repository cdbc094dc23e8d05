"""Rule `lens_dataset`: the logit lens over a seeded sample of a dataset, and its per-layer summary."""

import json

import pandas as pd
import torch

from layerwise.data import sample_inputs
from layerwise.lens import logit_lens_sequences
from layerwise.lens_stats import summarize_lens
from layerwise.models import load_model, read_card
from layerwise.runlog import log_to_file

log = log_to_file(snakemake.log[0])
p, wc = snakemake.params, snakemake.wildcards
loaded = load_model(read_card(snakemake.input.card), lm_head=True, device=p.device)
layout = json.load(open(snakemake.input.provenance))["layout"]
sample = sample_inputs(pd.read_parquet(snakemake.input.table), layout, loaded.tokenizer, n=p.n_texts,
                       max_tokens=p.max_tokens, seed=p.seed, min_tokens=p.min_tokens)
log.info("sample: %s", sample.report)
with torch.inference_mode():
    table = logit_lens_sequences(loaded.model, sample.input_ids, sample.text_ids, decoder=wc.decoder,
                                 subblocks=p.subblocks)
table.to_parquet(snakemake.output.table, index=False)
summary = summarize_lens(table.assign(model=wc.model, decoder=wc.decoder),
                         by=("model", "decoder", "layer", "depth"), seed=p.seed)
summary.assign(n_layers=loaded.facts.n_layers).to_csv(snakemake.output.summary, index=False)
