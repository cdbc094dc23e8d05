"""Figure text is measured where it is printed: planted figures at known font sizes and placements."""

import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from layerwise.workflow.legibility import MIN_POINTS, figure_distances, figure_texts, too_small  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex (make test installs it)")


def _figure(path: Path, width_in: float, fontsize: float) -> None:
    fig, ax = plt.subplots(figsize=(width_in, 0.6 * width_in))
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("layer", fontsize=fontsize)
    ax.set_ylabel("accuracy", fontsize=fontsize)
    ax.tick_params(labelsize=fontsize)
    fig.savefig(path)
    plt.close(fig)


def _compile(tmp_path: Path, body: str) -> Path:
    tex = tmp_path / "doc.tex"
    tex.write_text("\\documentclass{article}\\usepackage{graphicx}\\begin{document}\n" + body + "\n\\end{document}\n")
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path, check=True,
                   capture_output=True)
    return tmp_path / "doc.pdf"


def test_printed_size_is_font_size_times_placement_scale(tmp_path):
    _figure(tmp_path / "f.pdf", 4.0, 10)
    pdf = _compile(tmp_path, "\\includegraphics[width=2in]{f.pdf}")  # placed at half its size
    sizes = {round(t.size, 1) for t in figure_texts(pdf)}
    assert sizes == {5.0}


def test_a_planted_4pt_figure_fails_and_an_8pt_one_passes(tmp_path):
    _figure(tmp_path / "small.pdf", 3.0, 4)
    _figure(tmp_path / "fine.pdf", 3.0, 8)
    pdf = _compile(tmp_path, "\\includegraphics[width=3in]{small.pdf}\\par\\includegraphics[width=3in]{fine.pdf}")
    bad = too_small(pdf)
    assert bad and all(round(t.size) == 4 for t in bad)
    assert {t.figure for t in bad} != {t.figure for t in figure_texts(pdf)}  # the 8-pt figure is not flagged
    assert min(t.size for t in figure_texts(pdf) if t.figure not in {b.figure for b in bad}) >= MIN_POINTS


def test_a_wide_figure_shrunk_to_the_column_fails(tmp_path):
    _figure(tmp_path / "wide.pdf", 12.0, 8)  # 8 pt designed, placed at 4 in: 2.7 pt printed
    pdf = _compile(tmp_path, "\\includegraphics[width=4in]{wide.pdf}")
    assert too_small(pdf)


def test_caption_and_first_mention_pages(tmp_path):
    _figure(tmp_path / "f.pdf", 3.0, 8)
    body = ("As Figure~\\ref{fig:a} shows, text.\\clearpage\n"
            "\\begin{figure}[h]\\includegraphics{f.pdf}\\caption{A figure.}\\label{fig:a}\\end{figure}\n"
            "\\begin{figure}[h]\\includegraphics{f.pdf}\\caption{Never cited.}\\label{fig:b}\\end{figure}")
    _compile(tmp_path, body)  # twice: the first run writes the labels
    pdf = _compile(tmp_path, body)
    assert figure_distances(pdf) == {1: (2, 1), 2: (2, None)}


def test_a_figure_that_drifts_past_its_section_is_misplaced(tmp_path):
    from layerwise.workflow.legibility import misplaced_figures

    _figure(tmp_path / "f.pdf", 3.0, 8)
    filler = "\\newpage\n".join(["Text of this page.\n"] * 3)  # \\newpage flushes no float (\\clearpage would)
    body = ("\\section{One}As Figure~\\ref{fig:a} and Figure~\\ref{fig:b} show.\n"
            "\\begin{figure}[h]\\includegraphics{f.pdf}\\caption{Near.}\\label{fig:a}\\end{figure}\n"
            "\\begin{figure}[p]\\includegraphics{f.pdf}\\caption{Far.}\\label{fig:b}\\end{figure}\n"
            f"\\newpage\\section{{Two}}{filler}\\newpage\\section{{Three}}{filler}")
    for _ in range(2):  # the second run reads the labels
        pdf = _compile(tmp_path, body)
    problems = misplaced_figures(pdf, tmp_path / "doc.aux")
    assert set(problems) == {2} and "section 1 that first cites it" in problems[2]
