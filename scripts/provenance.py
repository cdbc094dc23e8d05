"""Rule `provenance`: the reproducibility appendix (config hash, revisions, versions, hardware, wall time)."""

import json
from pathlib import Path

import pandas as pd

from layerwise.workflow.macros import latex_table, write_macros
from layerwise.workflow.provenance import (config_hash, critical_path, hardware, job_table, main_model_names,
                                           model_dtypes, model_revisions, package_versions, rule_wall_times)
from layerwise.workflow.runlog import log_to_file

log_to_file(snakemake.log[0])
cards = [json.loads(Path(p).read_text()) for p in snakemake.input.cards]
model_names = main_model_names(cards, snakemake.params.config["models"])
# Datasets join the revisions table in the same shape: hub id and resolved commit, or the local file.
cards += [{"key": d["dataset"], "source": d["origin"], "model_id": d.get("hub_id") or Path(d["path"]).name,
           "revision": d.get("revision", "local"), "commit": d.get("commit")}
          for d in (json.loads(Path(p).read_text()) for p in snakemake.input.datasets)]
hw = hardware()
times = rule_wall_times(snakemake.params.benchmark_root)
jobs = job_table(snakemake.params.job_root, snakemake.params.benchmark_root)
path_seconds, path_rules = critical_path(snakemake.params.job_root)
write_macros({
    "ConfigHash": config_hash(snakemake.params.config)[:16],
    "HardwareSummary": f"{hw['cpu_count']} CPU cores ({hw['processor']}), {hw['memory_gib']} GiB RAM, GPU: {hw['gpu']}",
    "TotalRuleHours": times["seconds"].sum() / 3600 if len(times) else 0.0,
    "CriticalPathHours": path_seconds / 3600,
    "CriticalPathRules": ", ".join(path_rules) or "none recorded",
    **model_names,
}, snakemake.output.macros, header="rule provenance")

versions = [{"package": k, "version": v} for k, v in package_versions().items()]
Path(snakemake.output.tables).write_text("\n".join([
    latex_table(model_revisions(cards, model_dtypes(snakemake.params.config["models"], snakemake.params.config["device"])),
                "Models and datasets, the exact revisions used, and the dtype each model ran in.", "tab:revisions",
                wrap={"id": "0.5\\linewidth"}),
    latex_table(pd.DataFrame(versions), "Library versions of this run.", "tab:versions"),
    latex_table(times, "Wall time (s) and peak memory (MB) per rule, from Snakemake \\texttt{benchmark:} files.",
                "tab:walltime", size="footnotesize"),
    latex_table(jobs, "Where each rule's jobs ran: hosts, CPU cores available to a job x CPU model, GPUs "
                "(name, memory, driver), summed wall time (s; from \\texttt{benchmark:} files where the rule "
                "has them, else from the job's own record) and peak memory (MB).", "tab:jobs",
                wrap={"cpu": "0.3\\linewidth", "gpu": "0.08\\linewidth"}, size="scriptsize"),
]))
