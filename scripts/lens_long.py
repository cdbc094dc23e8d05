"""Rule `lens_long`: the logit lens (decoder full) over long texts, as the post read whole paragraphs: per
position bucket, the dataset summary, a figure and a sentence."""

import json

import pandas as pd

from layerwise.lens.decode import logit_lens_dataset
from layerwise.lens.stats import position_buckets, select_positions, summarize_lens
from layerwise.resources.models import load_model, read_card
from layerwise.narrative.lens import long_context_macros
from layerwise.workflow.macros import write_macros
from layerwise.plots.lens import plot_lens_curves
from layerwise.workflow.runlog import log_to_file

log = log_to_file(snakemake.log[0])
p = snakemake.params
if p.n_texts == 0:  # lens.long_n_texts: 0, the run is off: the section's macros are empty
    write_macros(long_context_macros(None, dataset=p.dataset, n_texts=0, max_tokens=p.max_tokens, figure=None),
                 snakemake.output.macros, header="rule lens_long_off")
    raise SystemExit(0)
loaded = load_model(read_card(snakemake.input.card), lm_head=True, device=p.device)
layout = json.load(open(snakemake.input.provenance))["layout"]
# every text at full length: shorter ones are skipped, longer ones cut
table, _ = logit_lens_dataset(loaded, pd.read_parquet(snakemake.input.table), layout, n_texts=p.n_texts,
                              max_tokens=p.max_tokens, min_tokens=p.max_tokens, seed=p.seed, decoder="full")
used = select_positions(table, include_position0=p.include_position0)
used = used.assign(bucket=position_buckets(used["position"], p.buckets)).dropna(subset=["bucket"])
summary = summarize_lens(used, by=("bucket", "layer", "depth"), seed=p.seed)
summary.assign(n_layers=loaded.facts.n_layers).to_csv(snakemake.output.summary, index=False)
fig = plot_lens_curves(summary.assign(decoder="full"), metrics=("kl_final", "agreement", "log10_input_rank"),
                       hue="bucket", col="decoder", relative_depth=False, skip_input=True, width=p.width,
                       row_height=1.4, col_titles={"full": "decoder full (the post's), by position"})
fig.savefig(snakemake.output.figure)
write_macros(long_context_macros(summary, dataset=p.dataset, n_texts=p.n_texts, max_tokens=p.max_tokens,
                                 figure="lens_long.pdf"), snakemake.output.macros, header="rule lens_long")
