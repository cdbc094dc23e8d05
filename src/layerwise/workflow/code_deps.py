"""Which library modules a rule's script runs, and one digest of their source.

Snakemake re-runs a rule when its script changes, but it cannot see the library the script imports:
an edit to `layerwise/geometry/neighbours.py` would leave every anisotropy number stale. Rules therefore pass
`library_digest(script)` as a parameter. Editing a module re-runs exactly the rules whose scripts
import it (directly or through other library modules); the digest is over content, not mtimes, so a
checkout that rewrites a file unchanged re-runs nothing.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "layerwise"


def imported_names(source: str) -> set[str]:
    """Dotted names a module imports (`from a.b import c` yields `a.b` and `a.b.c`: c may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@functools.lru_cache(maxsize=None)
def _source_imports(source: str) -> frozenset[str]:
    """`imported_names`, parsed once per distinct source text: the workflow asks for the digests of ~40 scripts
    as it parses, which share most of the library, and parsing each module again per script took ~10 s of
    every Snakemake call. Keyed on the text itself, so an edited file is never served stale."""
    return frozenset(imported_names(source))


def module_file(name: str, src_root: Path) -> Path | None:
    """`layerwise.plots.lens` → `src/layerwise/plots/lens.py` (or the package's `__init__.py`)."""
    base = src_root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def library_modules(script: Path | str, src_root: Path | str, package: str = PACKAGE) -> list[Path]:
    """Every file of `package` that running `script` imports, transitively, with the `__init__.py`
    of each package on the way (Python executes those too)."""
    src_root = Path(src_root)
    seen: set[Path] = set()
    queue = [Path(script)]
    while queue:
        for name in sorted(_source_imports(queue.pop().read_text())):
            if name != package and not name.startswith(package + "."):
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                path = module_file(".".join(parts[:depth]), src_root)
                if path is not None and path not in seen:
                    seen.add(path)
                    queue.append(path)
    return sorted(seen)


def library_digest(script: Path | str, src_root: Path | str, package: str = PACKAGE) -> str:
    """sha256 over the relative paths and contents of `library_modules(script)`."""
    src_root = Path(src_root)
    digest = hashlib.sha256()
    for path in library_modules(script, src_root, package):
        digest.update(path.relative_to(src_root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
