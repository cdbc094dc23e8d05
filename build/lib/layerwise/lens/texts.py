"""Example texts for per-example logit-lens heatmaps: one UTF-8 `.txt` file per text, named by its stem.

The repository ships `data/lens_examples/`: the post's own "plasma" copying sentence (verbatim), the GPT-3
abstract the post reads (arXiv 2005.14165, verbatim) and a stand-in for an example the post shows only as an
image (an extreme repetition); `SOURCES.md` there names the source of each. Users point the same loader at their own folder.
"""

from __future__ import annotations

from pathlib import Path


def load_texts(directory: str | Path) -> dict[str, str]:
    """Return {file stem: text} for every `*.txt` in `directory`, sorted by name, trailing newlines removed."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"text directory {directory} does not exist")
    texts = {path.stem: path.read_text(encoding="utf-8").rstrip("\n") for path in sorted(directory.glob("*.txt"))}
    if not texts:
        raise ValueError(f"no .txt files in {directory}")
    empty = [name for name, text in texts.items() if not text.strip()]
    if empty:
        raise ValueError(f"empty texts in {directory}: {empty}")
    return texts
