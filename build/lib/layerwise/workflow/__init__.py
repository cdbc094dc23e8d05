"""The plumbing between the library and the Snakemake workflow: nothing here computes a paper number.

Modules:
    code_deps      which library modules a rule's script imports, and one digest of their source (a rule parameter)
    config_errors  a config's problems named by key, file and line, instead of jsonschema's dump
    preflight      refuse a run before its first job: missing datasets or models, too short corpora, unknown texts
    cost           what a config costs before running it: forward tokens, FLOPs, probe fits, hours
    runlog         a rule's logging into its log file, torch's threads set to the rule's, the job's hardware recorded
    provenance     hardware, wall times, critical path, model revisions and config hash for the appendix
    macros         numbers → LaTeX macros and tables, so that no number in the paper is typed by hand
    verify         the paper's key numbers checked against an expected-values file
    legibility     font sizes and placement of every figure as printed in the compiled PDF
    complete_run   `python -m layerwise.workflow.complete_run`: Snakemake, with every missing file rebuilt

Nothing is imported here.
"""
