"""Send a rule's logging (and warnings) to its Snakemake `log:` file."""

from __future__ import annotations

import logging
from pathlib import Path


def log_to_file(path: str | Path, level: int = logging.INFO) -> logging.Logger:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=str(path), level=level, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    return logging.getLogger("layerwise.rule")
