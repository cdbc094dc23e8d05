"""Punctuation removal: the text side of study 1's "is it just punctuation?" control.

Its own module because the dataset variant `<name>.nopunct` applies it before extraction: data code
must not import the probe package (an edit to a probe would then re-extract activations).
"""

from __future__ import annotations

import re
import string
import unicodedata

_ASCII_PUNCTUATION = frozenset(string.punctuation)
_SPACES = re.compile(r"[^\S\n]+")


def is_punctuation(char: str) -> bool:
    """Unicode punctuation (categories P*) plus ASCII symbols like $ < > | that Python counts as punctuation."""
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def strip_punctuation(text: str) -> str:
    """The text without punctuation; runs of spaces left behind collapse to one, line breaks stay."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    kept = "".join(char for char in text if not is_punctuation(char))
    return "\n".join(_SPACES.sub(" ", line).strip() for line in kept.split("\n"))
