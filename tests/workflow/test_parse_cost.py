"""What every Snakemake call pays before its first job: parsing the workflow.

A dry run, a `make paper` start, every test's run and every SLURM job (each re-parses the Snakefile) build the
DAG first. The rules read registry entries and configs only, so parsing must not import torch or transformers
(together ~10 s of imports on this machine, more than the rest of a dry run of the tiny config).
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO
from tests.helpers.workflow_runs import OFFLINE, SNAKEMAKE_OPTIONS, tiny_config

# Runs Snakemake's command line in this process and reports, at exit, which heavy modules it imported.
REPORT_HEAVY = ("import atexit, sys\n"
                "atexit.register(lambda: print('heavy:', sorted(m for m in ('torch', 'transformers', 'sklearn')"
                " if m in sys.modules)))\n"
                "from snakemake.cli import main\n"
                "main()\n")


def test_a_dry_run_of_the_tiny_config_imports_neither_torch_nor_transformers(tmp_path, shared_data):
    configfile = tiny_config(tmp_path, shared_data)
    done = subprocess.run([sys.executable, "-c", REPORT_HEAVY, *SNAKEMAKE_OPTIONS, "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(tmp_path), "--configfile", str(configfile), "-n", "--cores", "1"],
                          capture_output=True, text=True, env=OFFLINE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Job stats" in done.stdout + done.stderr  # it did build the whole DAG
    assert done.stdout.strip().splitlines()[-1] == "heavy: []"
