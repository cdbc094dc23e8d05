"""Send a rule's logging (and warnings) to its Snakemake `log:` file, and record the job's hardware."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from layerwise.workflow.provenance import job_hardware, record_job


def log_to_file(path: str | Path, level: int = logging.INFO) -> logging.Logger:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=str(path), level=level, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    log = logging.getLogger("layerwise.rule")
    # Every rule script calls this first, so every job says where it ran (the appendix shows it per rule).
    # Snakemake's script preamble defines `snakemake` in the script's namespace, __main__.
    job = getattr(sys.modules["__main__"], "snakemake", None)
    if job is not None:
        record_job(job.rule, dict(job.wildcards.items()), job.input, job.output)
        # Torch's intra-op pool follows the rule's `threads:` (scripts that use torch import it before this), and
        # so does numba's (the lens kernel, UMAP), which reads no OMP_NUM_THREADS and would take every core: two
        # such jobs side by side on 2 cores oversubscribe them.
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(job.threads)
        # Numba re-reads NUMBA_NUM_THREADS at every compilation and refuses a value other than its pool's once the
        # pool runs: the variable is set only for a numba imported after this; an imported one is capped instead.
        if "numba" in sys.modules:
            numba = sys.modules["numba"]
            numba.set_num_threads(min(job.threads, numba.config.NUMBA_NUM_THREADS))
        else:
            os.environ["NUMBA_NUM_THREADS"] = str(job.threads)
    log.info("job ran on %s", job_hardware())
    return log
