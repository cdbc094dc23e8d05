"""Rule `dataset`: find a dataset (local search path, then hub) and normalise it to a table."""

import json

from layerwise.data import load_dataset_table
from layerwise.runlog import log_to_file

log = log_to_file(snakemake.log[0])
table, provenance = load_dataset_table(snakemake.wildcards.dataset, snakemake.params.search_path,
                                       allow_hub=snakemake.params.allow_hub)
log.info("loaded %s", provenance)
table.to_parquet(snakemake.output.table, index=False)
with open(snakemake.output.provenance, "w") as f:
    json.dump(provenance, f, indent=2)
