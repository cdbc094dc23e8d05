"""Rule `lens_verdicts`: the logit-lens post's claims against our numbers (post's decoder `full`) -> the verdict
table (CSV and a LaTeX macro the section puts at its top) and one sentence per claim that did not reproduce."""

from pathlib import Path

import pandas as pd

from layerwise.lens.claims import claim_units, lens_claims
from layerwise.lens.stats import select_positions
from layerwise.narrative.lens import lens_verdict_macros
from layerwise.workflow.macros import write_macros
from layerwise.workflow.runlog import log_to_file
from layerwise.verdicts import verdict_frame

log = log_to_file(snakemake.log[0])
p = snakemake.params
dataset = pd.read_parquet(snakemake.input.dataset)
dataset = select_positions(dataset, include_position0=p.include_position0)  # as the summary uses them
example = pd.read_parquet(snakemake.input.example)
frame = verdict_frame(lens_claims(dataset, example, data_setting=p.data_setting, n_boot=p.n_boot, seed=p.seed))
log.info("verdicts:\n%s", frame[["key", "faithful_estimate", "faithful_low", "faithful_high", "verdict"]])
Path(snakemake.output.csv).parent.mkdir(parents=True, exist_ok=True)
frame.to_csv(snakemake.output.csv, index=False)
write_macros(lens_verdict_macros(frame, units=claim_units(), model_name=p.model_name), snakemake.output.macros,
             header="rule lens_verdicts")
