"""Rule `verify`: compare the paper's generated numbers with paper/expected_values.yaml."""

import yaml

from layerwise.workflow.runlog import log_to_file
from layerwise.workflow.verify import check_values, read_macros

log = log_to_file(snakemake.log[0])
expected = yaml.safe_load(open(snakemake.input.expected))
checks = check_values(read_macros(snakemake.input.macros), expected)
report = "\n".join(c.message for c in checks)
log.info("\n%s", report)
failed = [c for c in checks if not c.ok]
if failed:
    raise SystemExit(f"{len(failed)} of {len(checks)} key numbers moved or are missing:\n"
                     + "\n".join(c.message for c in failed))
open(snakemake.output.report, "w").write(report + f"\nall {len(checks)} key numbers as expected\n")
