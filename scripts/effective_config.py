"""Rule `effective_config`: the configuration this run used (defaults filled in, device resolved), for the report."""

import yaml

from layerwise.workflow.runlog import log_to_file

log_to_file(snakemake.log[0])
with open(snakemake.output.config, "w") as handle:
    yaml.safe_dump(snakemake.params.config, handle, sort_keys=False)
