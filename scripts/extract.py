"""Rule `extract`: sample texts, run the model, write an activation store."""

import json

import pandas as pd
import torch

from layerwise.resources.datasets import sample_inputs
from layerwise.activations.extract import extract_to_store
from layerwise.resources.models import load_model, read_card
from layerwise.workflow.runlog import log_to_file

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)  # the rule's threads, no more (as OMP_NUM_THREADS says)
wc, p = snakemake.wildcards, snakemake.params
loaded = load_model(read_card(snakemake.input.card), device=p.device)
for key, declared in p.declared.items():  # the slicing plan and mem_mb rely on these
    if declared is not None and getattr(loaded.facts, key) != declared:
        raise ValueError(f"model '{wc.model}': {key} is {getattr(loaded.facts, key)!r}, the registry declares {declared!r}")
provenance = json.loads(open(snakemake.input.provenance).read())
sample = sample_inputs(pd.read_parquet(snakemake.input.table), provenance["layout"], loaded.tokenizer,
                       n=int(wc.n), max_tokens=int(wc.length), seed=int(wc.seed), min_tokens=p.min_tokens)
log.info("sample: %s", sample.report)
manifest = extract_to_store(
    loaded, sample, snakemake.output.store, dtype=p.dtype, max_batch_tokens=p.max_batch_tokens,
    pad_to=int(wc.length),  # a fixed width: smaller cells of a decoder are then exact slices of this store
    manifest={"dataset": provenance, "sampling": {"n_texts": int(wc.n), "max_tokens": int(wc.length),
              "seed": int(wc.seed), "min_tokens": p.min_tokens, **sample.report}},
)
log.info("wrote %d tokens at %.0f tokens/s", manifest["n_tokens"], manifest["tokens_per_second"])
