"""Check a compiled paper: figure text below 7 pt as printed, and figures far from their first mention.

Usage: .venv/bin/python tools/check_legibility.py [results/paper/layerwise.pdf]   (exit 1 if any)
"""

import sys

from pathlib import Path

from layerwise.workflow.legibility import MIN_POINTS, misplaced_figures, too_small

pdf = sys.argv[1] if len(sys.argv) > 1 else "results/paper/layerwise.pdf"
small = too_small(pdf)
for t in small:
    print(f"page {t.page} figure {t.figure}: {t.size:.2f} pt < {MIN_POINTS}: {t.text[:40]!r}")
far = misplaced_figures(pdf, Path(pdf).parent / "build" / "main.aux")
for problem in far.values():
    print(problem)
print(f"{len(small)} text runs below {MIN_POINTS} pt in {len({(t.page, t.figure) for t in small})} figures; "
      f"{len(far)} figures uncited or beyond a page of the section that cites them")
sys.exit(1 if small or far else 0)
