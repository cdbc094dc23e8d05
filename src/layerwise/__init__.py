"""layerwise: geometry of transformer hidden states, layer by layer.

Pure functions and small estimators over arrays and models; the Snakemake workflow
(`Snakefile`, `rules/`, `scripts/`) is a thin layer on top and never imported here.
"""

__version__ = "0.1.0"
