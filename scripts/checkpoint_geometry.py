"""Rule `checkpoint_geometry`: anisotropy and TwoNN ID per layer of one checkpoint on held-out chunks."""

import pandas as pd

from layerwise.byte_tokenizer import make_byte_tokenizer
from layerwise.training.checkpoint_states import checkpoint_hidden_states
from layerwise.geometry import geometry_table
from layerwise.runlog import log_to_file
from layerwise.training.data import heldout_chunks

log_to_file(snakemake.log[0])
p, wc = snakemake.params, snakemake.wildcards
text = "".join(pd.read_parquet(snakemake.input.table)["text"])
chunks = heldout_chunks(text, make_byte_tokenizer(), p.n_chunks, p.chunk_len, p.val_fraction)
layers, final = checkpoint_hidden_states(snakemake.input.checkpoint, chunks, include_position0=p.include_position0,
                                         device=p.device)
kwargs = dict(batch_size=p.batch_size, seed=p.seed, fraction=p.fraction, block_size=p.block_size,
              n_candidates=p.n_candidates, backend=p.backend)
facts = dict(kind=wc.kind, step=int(wc.step), n_layers=len(layers) - 1)
table = geometry_table(layers, **kwargs)
table.assign(**facts).to_csv(snakemake.output.table, index=False)
# The post-final-norm state is a different object from the residual stream: its own table.
final_table = geometry_table({"final_norm": final}, **kwargs) if final is not None else table.iloc[0:0]
final_table.assign(**facts).to_csv(snakemake.output.final_norm, index=False)
