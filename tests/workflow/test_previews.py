"""PNG previews of figure PDFs for the HTML report."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from layerwise.workflow.previews import preview_name, render_preview


def test_preview_names_flatten_the_figure_path():
    assert preview_name("results/figures/norms.pdf") == "norms.png"
    assert preview_name("results/figures/lens/m/plasma/kl.window.pdf") == "lens__m__plasma__kl.window.png"
    with pytest.raises(ValueError, match="not a PDF"):
        preview_name("results/figures/a.png")


def test_a_rendered_preview_shows_the_figure_not_a_blank_page(tmp_path):
    """A black square on white, 2 x 1 inches: the PNG has the page's aspect and its dark pixels where drawn."""
    from PIL import Image
    fig = Figure(figsize=(2, 1))
    ax = fig.add_axes([0, 0, 0.5, 1])
    ax.set_axis_off()
    ax.add_patch(__import__("matplotlib.patches", fromlist=["Rectangle"]).Rectangle((0, 0), 1, 1, color="black"))
    fig.savefig(tmp_path / "f.pdf")
    width, height = render_preview(tmp_path / "f.pdf", tmp_path / "f.png", dpi=100)
    assert (width, height) == (200, 100)
    pixels = np.asarray(Image.open(tmp_path / "f.png").convert("L"), dtype=float)
    assert pixels[:, :90].mean() < 20 and pixels[:, 110:].mean() > 235  # left half black, right half white
