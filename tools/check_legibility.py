"""Check a compiled paper: figure text below 7 pt as printed, and figures far from their first mention.

Usage: .venv/bin/python tools/check_legibility.py [results/paper/layerwise.pdf]   (exit 1 if any)
"""

import sys

from layerwise.legibility import MIN_POINTS, figure_distances, too_small

pdf = sys.argv[1] if len(sys.argv) > 1 else "results/paper/layerwise.pdf"
small = too_small(pdf)
for t in small:
    print(f"page {t.page} figure {t.figure}: {t.size:.2f} pt < {MIN_POINTS}: {t.text[:40]!r}")
far = {n: p for n, p in figure_distances(pdf).items() if p[1] is None or abs(p[0] - p[1]) > 1}
for n, (caption, mention) in sorted(far.items()):
    print(f"Figure {n}: caption on page {caption}, first mentioned on page {mention}")
print(f"{len(small)} text runs below {MIN_POINTS} pt in {len({(t.page, t.figure) for t in small})} figures; "
      f"{len(far)} figures more than a page from their first mention")
sys.exit(1 if small or far else 0)
