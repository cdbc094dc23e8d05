"""PNG previews of the figure PDFs for the HTML report: a browser without a PDF plugin shows a PDF item as a blank
pane, so every figure also gets a picture."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


def preview_name(pdf: str | Path, root: str = "results/figures") -> str:
    """The preview's file name: the figure's path below ``root`` with folders joined by "__", as .png
    (``results/figures/lens/m/plasma/kl.window.pdf`` → ``lens__m__plasma__kl.window.png``)."""
    path = PurePosixPath(Path(pdf).as_posix())
    relative = path.relative_to(root) if path.is_relative_to(root) else PurePosixPath(path.name)
    if relative.suffix != ".pdf":
        raise ValueError(f"{pdf}: not a PDF figure")
    return "__".join(relative.with_suffix(".png").parts)


def render_preview(pdf: str | Path, png: str | Path, *, dpi: float = 110.0) -> tuple[int, int]:
    """Render the first page of ``pdf`` to ``png`` at ``dpi``; returns the image's (width, height) in pixels."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        image = document[0].render(scale=dpi / 72.0).to_pil()
    finally:
        document.close()
    image.save(png)
    return image.size
