"""Rule `verdict_summary`: the studies' verdict CSVs → \\VerdictSummary (how many claims got each verdict)."""

import pandas as pd

from layerwise.workflow.macros import write_macros
from layerwise.workflow.runlog import log_to_file
from layerwise.verdicts import summary_sentence

log_to_file(snakemake.log[0])
frames = {study: pd.read_csv(path) for study, path in zip(snakemake.params.studies, snakemake.input)}
write_macros({"VerdictSummary": summary_sentence(frames)}, snakemake.output.macros, header="rule verdict_summary")
