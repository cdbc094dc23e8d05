"""Is every figure readable where it is printed? Font sizes and placement measured in the compiled PDF.

Why the compiled PDF and not the figure files: a figure's fonts are scaled by the width LaTeX gives it
(`\\includegraphics[width=0.48\\linewidth]` of a 10-inch figure shrinks 8 pt to 2.5 pt). In the paper's PDF each
included figure is a form XObject; pdfminer lays it out as an `LTFigure` whose characters carry their printed
size (the font size times every transformation above it), which is what a reader sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MIN_POINTS = 7.0
# A glyph's printed size is rounded in the PDF's matrices; 0.05 pt is far below any real difference.
_SLACK = 0.05


@dataclass(frozen=True)
class FigureText:
    """One run of characters of one size inside an included figure."""

    page: int  # 1-based
    figure: str  # the XObject's name in the PDF
    text: str
    size: float  # printed height in pt


def figure_texts(pdf: Path | str) -> list[FigureText]:
    """Every character inside an included figure, grouped into runs of equal size, page by page."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTFigure

    runs: list[FigureText] = []

    def walk(item, page: int, figure: str | None) -> None:
        if isinstance(item, LTFigure):
            figure = figure or item.name
        if isinstance(item, LTChar):
            if figure is not None and item.get_text().strip():
                size = round(_printed_size(item), 2)
                last = runs[-1] if runs else None
                if last and last.page == page and last.figure == figure and last.size == size:
                    runs[-1] = FigureText(page, figure, last.text + item.get_text(), size)
                else:
                    runs.append(FigureText(page, figure, item.get_text(), size))
            return
        for child in getattr(item, "__iter__", lambda: iter(()))():
            walk(child, page, figure)

    # all_texts: also lay out text inside figures (off by default in pdfminer).
    for number, page_layout in enumerate(extract_pages(str(pdf), laparams=LAParams(all_texts=True)), start=1):
        for item in page_layout:
            walk(item, number, None)
    return runs


def _printed_size(char) -> float:
    """The glyph's printed font size. pdfminer's `size` is the box height, which for a glyph turned by 90°
    (a y-axis label) is its advance width instead: take the box side across the writing direction."""
    a, b, _c, _d, _e, _f = char.matrix
    return float(char.width if abs(b) > abs(a) else char.height)


def too_small(pdf: Path | str, min_points: float = MIN_POINTS) -> list[FigureText]:
    """The figure text runs printed below `min_points`."""
    return [t for t in figure_texts(pdf) if t.size < min_points - _SLACK]


def page_texts(pdf: Path | str) -> list[str]:
    """The running text of each page (figures' inner text left out), for locating captions and references."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer

    pages = []
    for page_layout in extract_pages(str(pdf), laparams=LAParams()):
        pages.append("\n".join(el.get_text() for el in page_layout if isinstance(el, LTTextContainer)))
    return pages


_CAPTION = re.compile(r"Figure\s+(\d+):")
# Our figures are cited as "Figure N" (\\ref); "Fig. N" is kept for the sources' own figures ("the post's Fig. 6").
_MENTION = r"Figures?\s+(?:\d+\s*(?:,|and|–|-)\s*)*{n}(?!\d)(?!:)"


def figure_distances(pdf: Path | str) -> dict[int, tuple[int, int | None]]:
    """For each figure number: (page of its caption, page of its first mention in the text, None if never)."""
    pages = page_texts(pdf)
    captions: dict[int, int] = {}
    for i, text in enumerate(pages, start=1):
        for m in _CAPTION.finditer(text):
            captions.setdefault(int(m.group(1)), i)
    out: dict[int, tuple[int, int | None]] = {}
    for n, caption_page in captions.items():
        mention = re.compile(_MENTION.format(n=n))
        first = next((i for i, text in enumerate(pages, start=1) if mention.search(text)), None)
        out[n] = (caption_page, first)
    return out


_SECTION = re.compile(r"\\contentsline \{section\}\{\\numberline \{([^}]*)\}(.*?)\}\{(\d+)\}")


def section_pages(aux: Path | str) -> list[tuple[str, int]]:
    """(section number, first page) of each section, in order, from LaTeX's .aux file."""
    return [(m.group(1), int(m.group(3))) for m in _SECTION.finditer(Path(aux).read_text(errors="replace"))]


def misplaced_figures(pdf: Path | str, aux: Path | str) -> dict[int, str]:
    """Figures not within a page of the section that discusses them (the section of their first mention in
    the text), or never cited: figure number → what is wrong. A section runs from its first page to the
    first page of the next one."""
    sections = section_pages(aux)
    problems = {}
    for n, (caption, mention) in figure_distances(pdf).items():
        if mention is None:
            problems[n] = f"Figure {n} (page {caption}) is never cited as 'Figure {n}'"
            continue
        starts = [(name, page) for name, page in sections if page <= mention]
        if not starts:
            continue
        index = len(starts) - 1
        first = starts[-1][1]
        last = sections[index + 1][1] if index + 1 < len(sections) else 10**9
        if not first - 1 <= caption <= last + 1:
            problems[n] = (f"Figure {n} is on page {caption}, section {starts[-1][0]} that first cites it runs over "
                           f"pages {first}-{last}")
    return problems
