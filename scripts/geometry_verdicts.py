"""Rule `geometry_verdicts`: Study 3's source claims against the per-batch tables → verdict CSV, table and sentences."""

from pathlib import Path

import pandas as pd

from layerwise.geometry.claims import geometry_claims, sweep_evidence
from layerwise.narrative.geometry import verdict_macros
from layerwise.workflow.macros import write_macros
from layerwise.workflow.runlog import log_to_file
from layerwise.verdicts import verdict_frame

log = log_to_file(snakemake.log[0])
p = snakemake.params
batches = pd.concat([pd.read_csv(path).assign(model=name) for path, name in zip(snakemake.input.batches, p.names)],
                    ignore_index=True)
position0 = {name: pd.read_csv(path) for path, name in zip(snakemake.input.position0, p.names)}
# every training run (kind x seed): the over-training claims' interval is over seeds
training = (pd.concat([pd.read_csv(path) for path in snakemake.input.training], ignore_index=True)
            if snakemake.input.get("training") else None)
claims = geometry_claims(batches, training, interior=tuple(p.interior), margin=p.margin, seed=p.seed,
                         layer0_in_averages=p.layer0_in_averages, training_setting=p.training_setting)
frame = verdict_frame(claims)
Path(snakemake.output.csv).parent.mkdir(parents=True, exist_ok=True)
frame.to_csv(snakemake.output.csv, index=False)
sweep = sweep_evidence(batches, interior=tuple(p.interior), seed=p.seed)
write_macros(verdict_macros(frame, batches, position0, margin=p.margin, interior=tuple(p.interior), sweep=sweep,
                            training=training),
             snakemake.output.macros, header="rule geometry_verdicts")
log.info("%d claims: %s", len(frame), dict(zip(frame["key"], frame["verdict"])))
