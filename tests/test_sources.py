"""Every Python source of the repository compiles without warnings.

An invalid escape sequence ('\\%' in an f-string, '\\i' in a docstring) keeps its backslash today with a
DeprecationWarning (a SyntaxWarning from Python 3.12), and Python means to make it an error.
"""

from __future__ import annotations

import warnings

import pytest

from tests.helpers import REPO

FOLDERS = ("src", "scripts", "tools", "benchmarks", "examples", "tests")
SOURCES = sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))


def test_there_are_sources_to_check():
    assert len(SOURCES) > 100 and any(p.name == "logistic.py" for p in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_compiles_without_warnings(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile(path.read_text(), str(path), "exec")


def test_an_invalid_escape_is_caught():
    with warnings.catch_warnings(), pytest.raises((DeprecationWarning, SyntaxWarning, SyntaxError)):
        warnings.simplefilter("error")
        compile('x = f"95\\% of draws"\n', "planted.py", "exec")
