"""Rule `train`: train our own decoder or encoder on enwik8, saving log-spaced checkpoints."""

import dataclasses
from pathlib import Path

import pandas as pd
import torch

from layerwise.workflow.runlog import log_to_file
from layerwise.training.runs import TrainingConfig, train

log = log_to_file(snakemake.log[0])
# One thread per run is several times faster than two on a small model (measured in bench_training).
torch.set_num_threads(snakemake.params.threads)
fields = {f.name for f in dataclasses.fields(TrainingConfig)}
cfg = TrainingConfig(**{k: v for k, v in snakemake.params.cfg.items() if k in fields})
text = "".join(pd.read_parquet(snakemake.input.table)["text"])
out_dir = Path(snakemake.output.checkpoints[0]).parent
table = train(snakemake.wildcards.kind, text, cfg, out_dir, checkpoint_steps=snakemake.params.steps)
table.to_csv(snakemake.output.log, index=False)
