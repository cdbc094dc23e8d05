"""Library edits re-run the rules that use them: which modules a script imports, and the digest over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerwise.workflow.code_deps import imported_names, library_digest, library_modules

from tests.helpers import REPO


@pytest.fixture()
def package(tmp_path: Path) -> tuple[Path, Path]:
    """src/pkg with a chain a → b, an unrelated c, a subpackage; a script using a and sub.d."""
    src = tmp_path / "src"
    files = {
        "pkg/__init__.py": '"""pkg"""\n',
        "pkg/a.py": "from pkg.b import helper\n",
        "pkg/b.py": "import numpy as np\n\ndef helper():\n    return np.zeros(1)\n",
        "pkg/c.py": "VALUE = 1\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/d.py": "def g():\n    from pkg import c_is_not_a_module  # a name, not a module\n",
    }
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    script = tmp_path / "script.py"
    script.write_text("import json\nimport pkg.a\nfrom pkg.sub import d\n")
    return script, src


def test_imported_names_include_from_import_targets():
    names = imported_names("import os\nfrom a.b import c, d\nfrom . import rel\n")
    assert names == {"os", "a.b", "a.b.c", "a.b.d"}


def test_modules_are_the_transitive_closure_with_package_inits(package):
    script, src = package
    found = {p.relative_to(src).as_posix() for p in library_modules(script, src, package="pkg")}
    assert found == {"pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/sub/__init__.py", "pkg/sub/d.py"}


def test_digest_follows_content_of_used_modules_only(package):
    script, src = package
    before = library_digest(script, src, package="pkg")
    (src / "pkg/c.py").write_text("VALUE = 2\n")  # not imported by the script
    assert library_digest(script, src, package="pkg") == before
    (src / "pkg/b.py").write_text((src / "pkg/b.py").read_text())  # rewritten, same bytes (a checkout)
    assert library_digest(script, src, package="pkg") == before
    (src / "pkg/b.py").write_text("def helper():\n    return 0\n")  # imported through a
    changed = library_digest(script, src, package="pkg")
    assert changed != before


def test_extraction_does_not_depend_on_analysis_code():
    """Editing a probe, a plot or a paper sentence must never re-extract activations."""
    modules = {p.relative_to(REPO / "src" / "layerwise").as_posix()
               for p in library_modules(REPO / "scripts" / "extract.py", REPO / "src")}
    assert {"activations/extract.py", "activations/store.py", "resources/models.py", "resources/datasets.py"} <= modules
    assert not [m for m in modules if m.startswith(("probes/", "plots/", "narrative/", "lens", "geometry"))], modules


def test_a_figure_depends_on_its_own_plot_and_narrative_modules():
    modules = {p.relative_to(REPO / "src" / "layerwise").as_posix()
               for p in library_modules(REPO / "scripts" / "geometry_figures.py", REPO / "src")}
    assert {"plots/geometry.py", "narrative/geometry.py"} <= modules
    assert not modules & {"plots/lens.py", "plots/probes.py", "narrative/lens.py", "narrative/probes.py",
                          "activations/extract.py", "probes/training.py"}, modules
