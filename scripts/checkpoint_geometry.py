"""Rule `checkpoint_geometry`: anisotropy and TwoNN ID per layer of all checkpoints of a run (one job: start-up dominated)."""

import pandas as pd

from layerwise.resources.byte_tokenizer import make_byte_tokenizer
from layerwise.training.checkpoint_states import checkpoint_hidden_states
from layerwise.geometry import aggregate_batch_table, batch_table, geometry_table
from layerwise.workflow.runlog import log_to_file
from layerwise.training.data import heldout_chunks

log = log_to_file(snakemake.log[0])
p, wc = snakemake.params, snakemake.wildcards
text = "".join(pd.read_parquet(snakemake.input.table)["text"])
# The same held-out chunks for every checkpoint of the run: built once.
chunks = heldout_chunks(text, make_byte_tokenizer(), p.n_chunks, p.chunk_len, p.val_fraction)
kwargs = dict(batch_size=p.batch_size, seed=p.seed, fraction=p.fraction, block_size=p.block_size,
              n_candidates=p.n_candidates, backend=p.backend)
tables, batches, final_table = [], [], None
for step, checkpoint in zip(p.steps, snakemake.input.checkpoints, strict=True):
    log.info("%s checkpoint step %d: %s", wc.kind, step, checkpoint)
    layers, final = checkpoint_hidden_states(checkpoint, chunks, include_position0=p.include_position0,
                                             device=p.device)
    facts = dict(kind=wc.kind, seed=int(wc.train_seed), step=int(step), n_layers=len(layers) - 1)
    per_batch = batch_table(layers, **kwargs)  # the same seed: the same tokens share a batch at every step
    batches.append(per_batch.assign(**facts))
    tables.append(aggregate_batch_table(per_batch).assign(**facts))
    if step == p.steps[-1]:
        # The post-final-norm state is a different object from the residual stream: its own table. Only the
        # last checkpoint's is read (the figures compare it with that checkpoint's last layer).
        final_table = geometry_table({"final_norm": final}, **kwargs) if final is not None else table.iloc[0:0]
        final_table = final_table.assign(**facts)
    del layers, final
pd.concat(tables, ignore_index=True).to_csv(snakemake.output.table, index=False)
if getattr(snakemake.output, "batches", None):  # absent in a run started before the per-batch output existed
    pd.concat(batches, ignore_index=True).to_csv(snakemake.output.batches, index=False)
final_table.to_csv(snakemake.output.final_norm, index=False)
