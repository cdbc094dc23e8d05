"""The bibliography names each source as the source itself and its index (../shared/papers/README.md) do."""

import re

import pytest

from tests.helpers import REPO, SHARED

BIB = (REPO / "paper" / "references.bib").read_text()
INDEX = SHARED / "papers" / "README.md"
# Which bibliography key cites which source file.
KEYS = {"000": "huang2024layers", "001": "nostalgebraist2020logitlens", "002": "razzhigaev2024shape"}


def entry(key: str) -> str:
    match = re.search(r"@\w+\{" + key + r",(.*?)\n\}", BIB, flags=re.S)
    assert match, f"no bibliography entry {key}"
    return match.group(1)


def index_rows() -> dict[str, str]:
    rows = {}
    for line in INDEX.read_text().splitlines():
        m = re.match(r"\|\s*`(\d{3})_[0-9a-f]+\.txt`\s*\|[^|]*\|\s*(.*?)\s*\|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


@pytest.mark.skipif(not INDEX.exists(), reason="../shared/papers not beside the repository")
@pytest.mark.parametrize("number, key", sorted(KEYS.items()))
def test_authors_of_each_source_are_in_its_entry(number, key):
    source = index_rows()[number]
    authors = source.split(",")[0] if "et al." in source else source.split('"')[0]
    surnames = [a.strip().split()[-1] for a in re.split(r",|\band\b", authors.replace("et al.", "")) if a.strip()]
    author_field = re.search(r"author\s*=\s*\{(.*?)\},?\n", entry(key)).group(1)
    for surname in surnames:
        assert surname in author_field, (key, surname, author_field)


def test_study_one_authors_in_full():
    """The post's four authors (its byline), first names included: an earlier entry had others."""
    author_field = re.search(r"author\s*=\s*\{(.*?)\},?\n", entry("huang2024layers")).group(1)
    assert author_field == "Huang, Ruixuan and Wu, Tianming and Li, Meng and Zhan, Yi"
