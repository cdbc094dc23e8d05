"""Rule `slice_store`: a causal decoder's smaller cell (first n texts, first l tokens), cut from its largest store."""

import json

import pandas as pd

from layerwise.resources.datasets import sample_inputs
from transformers import AutoConfig, AutoTokenizer

from layerwise.resources.models import hf_load_kwargs, model_kind, read_card
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore, slice_store

log = log_to_file(snakemake.log[0])
p = snakemake.params
model, dataset, sampling = snakemake.wildcards.cell.split("/")
n, length, seed = (int(part[1:]) for part in sampling.split("_"))
card = read_card(snakemake.input.card)
kw = hf_load_kwargs(card)  # config and tokenizer only: no weights
kind = model_kind(AutoConfig.from_pretrained(card["folder"], trust_remote_code=False, **kw), card.get("spec", {}).get("kind"))
tokenizer = AutoTokenizer.from_pretrained(card["folder"], trust_remote_code=False, **kw)
source = ActivationStore.open(snakemake.input.source, verify="size")
if kind != "decoder" or source.manifest["model"]["kind"] != "decoder":
    raise ValueError(f"{model} is a {kind}: its states depend on later tokens, so it cannot be sliced")
provenance = json.loads(open(snakemake.input.provenance).read())
sample = sample_inputs(pd.read_parquet(snakemake.input.table), provenance["layout"], tokenizer,
                       n=n, max_tokens=length, seed=seed, min_tokens=p.min_tokens)
tokens = source.tokens
kept = tokens[(tokens["text_index"] < n) & (tokens["position"] < length)]
if kept["token_id"].tolist() != [t for ids in sample.input_ids for t in ids] or \
        kept.drop_duplicates("text_index")["text_id"].tolist() != list(sample.text_ids):
    raise ValueError(f"{snakemake.input.source}: its first {n} texts × {length} tokens are not the sample a direct "
                     f"extraction would take (tokenizer adds trailing tokens?); extract this cell instead")
manifest = slice_store(source, snakemake.output.store, n_texts=n, max_tokens=length, chunk_rows=p.chunk_rows,
                       manifest={"dataset": provenance, "sampling": {"n_texts": n, "max_tokens": length, "seed": seed,
                                                                     "min_tokens": p.min_tokens, **sample.report}})
log.info("sliced %d of %d vectors from %s", manifest["n_tokens"], source.manifest["n_tokens"], source.root)
