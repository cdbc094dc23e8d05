"""Rule `lens_example`: the logit lens on one example text (every layer, every position)."""

import torch

from layerwise.lens.decode import logit_lens_texts
from layerwise.resources.models import load_model, read_card
from layerwise.workflow.runlog import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
loaded = load_model(read_card(snakemake.input.card), lm_head=True, device=p.device)
with torch.inference_mode():
    table = logit_lens_texts(loaded.model, loaded.tokenizer, {snakemake.wildcards.text: p.text},
                             decoder=p.decoder, subblocks=p.subblocks, max_tokens=p.max_tokens)
table.to_parquet(snakemake.output.table, index=False)
