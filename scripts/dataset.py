"""Rule `dataset`: read a registry entry (local file/folder, else the hub at its revision) into a table."""

import json

from layerwise.resources.datasets import apply_variant, load_dataset_table, split_variant
from layerwise.workflow.runlog import log_to_file

log = log_to_file(snakemake.log[0])
base, variant = split_variant(snakemake.wildcards.dataset)
table, provenance = load_dataset_table(base, snakemake.params.search_path, allow_hub=snakemake.params.allow_hub,
                                       registry={base: snakemake.params.entry})
table = apply_variant(table, variant)
provenance["variant"] = variant
log.info("loaded %s", provenance)
table.to_parquet(snakemake.output.table, index=False)
with open(snakemake.output.provenance, "w") as f:
    json.dump(provenance, f, indent=2)
