"""Byte-level language-modelling data from one raw text: split, windows, batches and MLM masks.

Both the decoder and the encoder are fed by these functions with the same seeds, so they see
exactly the same windows in the same order; only the objective (next byte vs masked byte) differs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IGNORE_INDEX = -100  # label value that cross-entropy skips (Hugging Face / PyTorch convention)


def encode_text(text: str | bytes, tokenizer: Any) -> np.ndarray:
    """Token ids of ``text`` with the byte tokenizer: one id per UTF-8 byte (int64, 1-D).

    Uses the Rust backend directly: it takes the whole text at once without the
    ``model_max_length`` warning of ``tokenizer(text)``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"text bytes are not valid UTF-8: {err}") from None
    if not isinstance(text, str):
        raise TypeError(f"text must be str or bytes, got {type(text).__name__}")
    return np.asarray(tokenizer.backend_tokenizer.encode(text).ids, dtype=np.int64)


def split_ids(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous split: the last ``val_fraction`` of the stream is held out.

    Contiguous rather than random windows so no held-out byte ever appears inside a training
    window (random overlapping windows would leak).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = len(ids) - int(round(len(ids) * val_fraction))
    return ids[:cut], ids[cut:]


def evenly_spaced_windows(ids: np.ndarray, n_windows: int, seq_len: int) -> np.ndarray:
    """``n_windows`` non-overlapping windows of ``seq_len`` ids spread evenly over ``ids``.

    Returns shape (n_windows, seq_len). No randomness: the same stream always gives the same
    evaluation set.
    """
    if n_windows < 1 or seq_len < 1:
        raise ValueError(f"n_windows and seq_len must be >= 1, got {n_windows}, {seq_len}")
    stride = (len(ids) - seq_len) // (n_windows - 1) if n_windows > 1 else 0
    if len(ids) < seq_len or (n_windows > 1 and stride < seq_len):
        raise ValueError(f"held-out stream of {len(ids)} tokens is too short for {n_windows} "
                         f"non-overlapping windows of {seq_len} tokens")
    starts = np.arange(n_windows) * stride
    return ids[starts[:, None] + np.arange(seq_len)]


def random_windows(ids: np.ndarray, batch_size: int, seq_len: int,
                   rng: np.random.Generator) -> np.ndarray:
    """A batch of windows at uniformly random offsets of ``ids``; shape (batch_size, seq_len)."""
    if len(ids) < seq_len:
        raise ValueError(f"stream of {len(ids)} tokens is shorter than seq_len={seq_len}")
    starts = rng.integers(0, len(ids) - seq_len + 1, size=batch_size)
    return ids[starts[:, None] + np.arange(seq_len)]


def causal_targets(inputs: np.ndarray) -> np.ndarray:
    """Next-token targets aligned with ``inputs``: position t predicts byte t+1; the last is ignored."""
    targets = np.full_like(inputs, IGNORE_INDEX)
    targets[:, :-1] = inputs[:, 1:]
    return targets


def mask_tokens(inputs: np.ndarray, rng: np.random.Generator, mask_id: int,
                replacement_ids: np.ndarray, mask_prob: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """BERT masking: pick ``mask_prob`` of positions; of those 80% -> ``mask_id``, 10% -> a random
    id from ``replacement_ids``, 10% unchanged. Returns (corrupted inputs, targets); targets are
    the original ids at picked positions and ``IGNORE_INDEX`` elsewhere.

    The 10% random / 10% kept cases stop the encoder from learning that only ``<mask>``
    positions matter, so its representations of ordinary tokens stay informative.
    """
    if not 0.0 < mask_prob < 1.0:
        raise ValueError(f"mask_prob must be in (0, 1), got {mask_prob}")
    picked = rng.random(inputs.shape) < mask_prob
    action = rng.random(inputs.shape)
    targets = np.where(picked, inputs, IGNORE_INDEX)
    corrupted = inputs.copy()
    corrupted[picked & (action < 0.8)] = mask_id
    randomise = picked & (action >= 0.8) & (action < 0.9)
    corrupted[randomise] = rng.choice(replacement_ids, size=int(randomise.sum()))
    return corrupted, targets


def heldout_chunks(text: str | bytes, tokenizer: Any, n_chunks: int, chunk_len: int,
                   val_fraction: float = 0.1) -> np.ndarray:
    """Fixed token-id chunks from the held-out tail of ``text``, for analysing every checkpoint.

    Same split as training (:func:`split_ids`), so no chunk byte was ever trained on; evenly
    spaced and deterministic, so every checkpoint is measured on identical inputs. Decode with
    ``tokenizer.batch_decode`` if strings are needed.
    """
    _, val = split_ids(encode_text(text, tokenizer), val_fraction)
    return evenly_spaced_windows(val, n_chunks, chunk_len)
