"""Rule `figure_previews`: a PNG of every figure of the paper, for the HTML report (layerwise.workflow.previews)."""

from pathlib import Path

from layerwise.workflow.previews import preview_name, render_preview
from layerwise.workflow.runlog import log_to_file

log = log_to_file(snakemake.log[0])
out = Path(snakemake.output.previews)
out.mkdir(parents=True, exist_ok=True)
for pdf in snakemake.input.figures:
    size = render_preview(pdf, out / preview_name(pdf), dpi=snakemake.params.dpi)
    log.info("%s -> %s (%d x %d px)", pdf, preview_name(pdf), *size)
