"""Run Snakemake so that every missing file the targets depend on is rebuilt, not only the out-of-date ones.

Why: Snakemake rebuilds a file only if something downstream needs updating. A job killed after Snakemake
deleted its old outputs (a `--forcerun`, or a rerun) leaves them missing while everything downstream is still
present and newer, so the next plain run says "Nothing to be done" and the file stays missing. Here the DAG's
`--summary` is read first and every file it reports `missing` (not a removed temp file) is added as a target:
its job runs, and whatever reads it runs after it.

Usage (what `make paper` runs): `python -m layerwise.workflow.complete_run [TARGETS...] SNAKEMAKE_OPTIONS...`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Sequence


def missing_outputs(summary: str) -> list[str]:
    """The files `snakemake --summary` reports as missing that Snakemake would not rebuild by itself (plan "no
    update"; a removed temp file is not missing, and a file whose job runs anyway needs no help)."""
    lines = [line.split("\t") for line in summary.splitlines() if "\t" in line]
    if not lines or lines[0][:1] != ["output_file"]:
        return []
    status, plan = lines[0].index("status"), lines[0].index("plan")
    return [row[0] for row in lines[1:]
            if len(row) > plan and row[status].strip() == "missing" and row[plan].strip() == "no update"]


def split_targets(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(options, targets): targets are the words before the first option (several options take any number of
    values, e.g. `--resources gpu=2 mem_mb=9000`, so a word after an option is that option's)."""
    first = next((i for i, word in enumerate(argv) if word.startswith("-")), len(argv))
    return list(argv[first:]), list(argv[:first])


def workdir(options: Sequence[str]) -> Path:
    for flag in ("--directory", "-d"):
        if flag in options:
            return Path(options[list(options).index(flag) + 1])
    return Path(".")


def main(argv: Sequence[str], snakemake: Sequence[str] = (sys.executable, "-m", "snakemake")) -> int:
    options, targets = split_targets(argv)
    summary = subprocess.run([*snakemake, *targets, *options, "--summary"], capture_output=True, text=True)
    missing = missing_outputs(summary.stdout) if summary.returncode == 0 else []
    if missing:
        print(f"layerwise: {len(missing)} file(s) the targets depend on are missing and will be rebuilt: "
              + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""), file=sys.stderr)
    # Without explicit targets the default one (rule all) must stay requested beside the missing files.
    requested = [*(targets or (["all"] if missing else [])), *missing]
    # Targets first: some options take optional values (-q) and would swallow a target after them.
    done = subprocess.run([*snakemake, *requested, *options])
    if done.returncode and any((workdir(options) / ".snakemake" / "locks").glob("*")):
        print("layerwise: the working directory is locked. If no other run is going on here (a killed run "
              "leaves its lock), run `make unlock`, then `make paper` again.", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
