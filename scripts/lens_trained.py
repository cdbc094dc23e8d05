"""Rule `lens_trained`: the logit lens of Study 3's own GPT-2-architecture decoder (LayerNorm, like the post's
GPT-2) on held-out enwik8 chunks, with the decoders full, norm_only and none: does the decoder choice change the
reading on a LayerNorm family?"""

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForCausalLM

from layerwise.resources.byte_tokenizer import make_byte_tokenizer
from layerwise.lens.decode import logit_lens_sequences
from layerwise.lens.stats import select_positions, summarize_lens, top1_overlap
from layerwise.narrative.lens import trained_decoder_macros
from layerwise.workflow.macros import write_macros
from layerwise.workflow.runlog import log_to_file
from layerwise.training.data import heldout_chunks

log = log_to_file(snakemake.log[0])
p = snakemake.params
text = "".join(pd.read_parquet(snakemake.input.table)["text"])
chunks = heldout_chunks(text, make_byte_tokenizer(), p.n_chunks, p.chunk_len, p.val_fraction)  # never trained on
model = AutoModelForCausalLM.from_pretrained(snakemake.input.checkpoint).eval()
names = list(range(len(chunks)))
tables = {}
with torch.inference_mode():
    for decoder in p.decoders:
        tables[decoder] = logit_lens_sequences(model, [list(map(int, c)) for c in np.asarray(chunks)], names,
                                               decoder=decoder)
        log.info("decoder %s: %d rows", decoder, len(tables[decoder]))
used = pd.concat([select_positions(t, include_position0=False) for t in tables.values()], ignore_index=True)
summary = summarize_lens(used, by=("decoder", "layer", "depth"), seed=p.seed)
pairs = [(a, b) for a, b in (("norm_only", "none"), ("full", "norm_only")) if a in tables and b in tables]
overlap = top1_overlap({d: select_positions(t, include_position0=False) for d, t in tables.items()}, pairs)
summary.to_csv(snakemake.output.summary, index=False)
overlap.to_csv(snakemake.output.overlap, index=False)
write_macros(trained_decoder_macros(summary, overlap, name=p.name, n_chunks=len(chunks), chunk_len=p.chunk_len),
             snakemake.output.macros, header="rule lens_trained")
