"""Summarise a `mutmut run` (mutmut 3) for `make mutants`: killed / survived per module, then each survivor's diff.

Reads the per-module result files mutmut leaves in mutants/ (`<module>.py.meta`, exit code per mutant) and
mutmut's own exit-code → status table, so the counts are mutmut's, not re-derived here.

    .venv-mutants/bin/python tools/mutants_report.py > results/mutants.txt
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from mutmut.stats import status_by_exit_code

STATUSES = ("killed", "survived", "timeout", "no tests", "suspicious", "segfault", "not checked")


def statuses(mutants_dir: Path) -> dict[str, dict[str, str]]:
    """{module path: {mutant name: status}} from every `.meta` file under `mutants_dir`."""
    table = {}
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        module = str(meta.relative_to(mutants_dir)).removesuffix(".meta")
        table[module] = {name: status_by_exit_code[code] for name, code in codes.items()}
    return table


def main() -> None:
    table = statuses(Path("mutants"))
    if not table:
        sys.exit("no mutmut results in mutants/: run `make mutants` first")
    print(f"# mutmut {version('mutmut')}, {datetime.date.today().isoformat()}: mutants per module by status")
    print(f"{'module':<44}" + "".join(f"{s:>12}" for s in STATUSES))
    totals: Counter = Counter()
    for module, by_name in table.items():
        counts = Counter(by_name.values())
        totals.update(counts)
        print(f"{module:<44}" + "".join(f"{counts.get(s, 0):>12}" for s in STATUSES))
    print(f"{'all':<44}" + "".join(f"{totals.get(s, 0):>12}" for s in STATUSES))
    survivors = [name for by_name in table.values() for name, status in by_name.items()
                 if status not in ("killed", "not checked")]
    print(f"\n# {len(survivors)} mutants no test killed (status other than killed), each with its diff\n")
    for name in survivors:
        shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], capture_output=True, text=True)
        print(shown.stdout.rstrip() or f"# {name}: (mutmut show failed: {shown.stderr.strip()})")
        print()


if __name__ == "__main__":
    main()
