"""Train/test split by text: every vector of a text lands on the same side.

Vectors of one text share its content at every layer; splitting vectors rather than texts would let
the probe recognise texts it has seen instead of layers.
"""

from __future__ import annotations

import numpy as np


def split_by_text(text_ids: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) row masks; `round(test_fraction * n_texts)` texts (at least one) go to test."""
    text_ids = np.asarray(text_ids)
    if text_ids.ndim != 1 or text_ids.size == 0:
        raise ValueError(f"text_ids must be a non-empty 1-D array, got shape {text_ids.shape}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    texts = np.unique(text_ids)
    if texts.size < 2:
        raise ValueError(f"need at least two distinct texts to split by text, got {texts.size}")
    n_test = min(max(1, round(test_fraction * texts.size)), texts.size - 1)
    test_texts = np.random.default_rng(seed).permutation(texts)[:n_test]
    test = np.isin(text_ids, test_texts)
    return ~test, test
