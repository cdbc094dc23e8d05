# layerwise: the geometry of transformer hidden states, layer by layer.
# One command: `make paper` (or `snakemake --cores all`). Data flows one way:
# config → resources (data, models) → activation stores → tables → figures + macros → paper.

import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


# The library is importable by rule files and (via PYTHONPATH) by scripts in any env (venv or conda).
SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=SRC)  # set (not read): conda envs find the library without installing it
# Figures (matplotlib) and the PDF carry this fixed date instead of "now": the same results give
# byte-identical files, so a re-run shows what changed. Set SOURCE_DATE_EPOCH yourself to override.
os.environ.setdefault("SOURCE_DATE_EPOCH", "0")


configfile: "config.yaml"


try:
    validate(config, "schemas/config.schema.yaml", set_default=True)
except WorkflowError:
    # jsonschema's message prints the whole schema and config: name the key, the problem, the nearest key.
    from layerwise.workflow.config_errors import config_problems

    _problems = config_problems(config, os.path.join(workflow.basedir, "schemas/config.schema.yaml"),
                                [*workflow.configfiles] or ["config.yaml"])
    raise WorkflowError("\n".join(_problems) or "invalid config") from None


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/resources.smk"
include: "rules/extract.smk"
include: "rules/norms.smk"
include: "rules/probes.smk"
include: "rules/geometry.smk"
include: "rules/training.smk"
include: "rules/lens.smk"
include: "rules/outliers.smk"
include: "rules/crossstudy.smk"
include: "rules/verdicts.smk"
include: "rules/paper.smk"


check_hub_cache_before_jobs(USED_MODELS)  # offline: every hub revision any study uses is cached, or fail now


rule all:
    input:
        PAPER_PDF,
        REPORT_INPUTS,
    default_target: True
