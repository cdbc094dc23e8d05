# layerwise: the geometry of transformer hidden states, layer by layer.
# One command: `make paper` (or `snakemake --cores all`). Data flows one way:
# config → resources (data, models) → activation stores → tables → figures + macros → paper.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml", set_default=True)


include: "rules/common.smk"
include: "rules/resources.smk"
include: "rules/extract.smk"
include: "rules/norms.smk"
include: "rules/paper.smk"


rule all:
    input:
        PAPER_PDF,
    default_target: True
