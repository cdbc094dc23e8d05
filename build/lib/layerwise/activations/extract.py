"""Batched forward passes → an ActivationStore with every layer's residual stream.

Layer 0 is the first block's input (`hidden_states[0]`: input embeddings, plus positions for GPT-2);
layers 1..n are block outputs *before* the final norm. The post-final-norm last state is stored
separately as `final_norm`. All come from forward hooks on the blocks and the final norm, not from
`hidden_states`, whose last entry is pre- or post-norm depending on the transformers version.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import queue
import threading
import time
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from layerwise.resources.datasets import Sample
from layerwise.resources.models import LoadedModel, base_model, final_norm, transformer_blocks
from layerwise.activations.hooks import residual_hooks
from layerwise.activations.store import FINAL_NORM, StoreWriter

log = logging.getLogger(__name__)
FLOAT16_MAX = float(np.finfo(np.float16).max)


def length_batches(lengths: list[int], max_batch_tokens: int) -> list[list[int]]:
    """Group sequence indices of similar length so padding stays small; each batch ≤ the token budget."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches, current, longest = [], [], 0
    for i in order:
        new_longest = max(longest, lengths[i])
        if current and new_longest * (len(current) + 1) > max_batch_tokens:
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def pad_batch(sequences: list[list[int]], pad_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded `input_ids` and `attention_mask`: real tokens keep positions 0..len-1.

    `width` (≥ the longest sequence) fixes the padded length; by default it is the longest sequence.
    """
    width = max([len(s) for s in sequences] + ([width] if width is not None else []))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    return ids, mask


@torch.inference_mode()
def record_states(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  sink: Callable[[int, torch.Tensor], None]) -> int:
    """Run the base model once, handing every stored state to `sink(k, state)` the moment it exists;
    return how many there were (n_layers + 1, plus one for the final norm's output if there is one).

    State 0 is the first block's input (the embeddings, plus positions for GPT-2: what transformers
    records as `hidden_states[0]`), state k the output of block k, before any final norm, and state
    n+1 the final norm's output (`activations.hooks.residual_hooks`, shared with the logit lens).
    """
    blocks, norm = transformer_blocks(loaded.model, loaded.facts.n_layers), final_norm(loaded.model)
    count = 0

    def take(k: int, state: torch.Tensor) -> None:
        nonlocal count
        sink(k, state)
        count += 1

    with residual_hooks(blocks, take, final_norm=norm):
        base_model(loaded.model)(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    expected = len(blocks) + 1 + (norm is not None)
    if count != expected:
        raise RuntimeError(f"{loaded.facts.key}: the forward pass gave {count} states, expected {expected}")
    return count


def forward_hidden_states(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor
                          ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Run the base model once; return ([layer0 … layer n] pre-norm, post-final-norm or None)."""
    states: list[torch.Tensor] = []
    record_states(loaded, input_ids, attention_mask, lambda _k, state: states.append(state))
    n_layers = loaded.facts.n_layers
    return states[:n_layers + 1], (states[n_layers + 1] if len(states) > n_layers + 1 else None)


def extract_to_store(loaded: LoadedModel, sample: Sample, out_dir, *, dtype: str = "float16",
                     max_batch_tokens: int = 4096, pad_to: int | None = None,
                     manifest: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Write every layer's vectors for every (text, position) of `sample`; return the manifest.

    `pad_to` pads every batch to that many positions, so that a text's states are computed in the
    same shapes whichever texts share its batch: CPU kernels sum in an order that depends on the
    sequence length (softmax, attention × values), which moves float32 results by ~1e-7. With a
    fixed width, a causal decoder's first l positions of the first n texts are bit for bit the same
    in a store of N ≥ n texts × L ≥ l tokens as in one of exactly n × l extracted at the same width,
    which is what lets smaller cells be sliced instead of recomputed (`store.slice_store`).

    The forward pass is the only work on the critical path: hooks cast each state, in torch, into a
    reused buffer of the store dtype as the forward makes it (`record_states`), so no float32 state
    outlives its next block, and the files are written from that buffer between forwards, or by a
    writer thread while the next batch runs when a core is spare (`spare_core`); the checksums are
    computed in parallel at the end.
    """
    facts = loaded.facts
    lengths = [len(s) for s in sample.input_ids]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n_tokens = int(offsets[-1])
    has_final_norm = final_norm(loaded.model) is not None
    layers: list[int | str] = list(range(facts.n_layers + 1)) + ([FINAL_NORM] if has_final_norm else [])
    writer = StoreWriter(out_dir, layers, n_tokens, facts.width, dtype)
    pad_id = loaded.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = 0
    max_abs = 0.0
    start = time.perf_counter()
    # disable=None: a bar on a terminal only; in a log file (stderr not a TTY) its redraws would pile up on one line.
    bar = tqdm(total=n_tokens, unit="tok", unit_scale=True, disable=None if progress else True,
               desc=f"extract {facts.key}")
    try:
        with BatchWriter(writer, overlap=spare_core()) as sink:
            widths = lengths if pad_to is None else [max(n, pad_to) for n in lengths]
            for batch in length_batches(widths, max_batch_tokens):
                ids, mask = pad_batch([sample.input_ids[i] for i in batch], pad_id, pad_to)
                block = sink.take((len(layers), *ids.shape, facts.width), writer.dtype)
                record_states(loaded, ids.to(loaded.device), mask.to(loaded.device),
                              lambda k, state: block[k].copy_(state))  # cast as the forward goes
                max_abs = max(max_abs, finish_block(block, mask, facts.key))
                sink.put(block.numpy(), [(int(offsets[i]), lengths[i]) for i in batch])  # row b = batch[b]
                bar.update(sum(lengths[i] for i in batch))
    except BaseException:
        writer.close()  # the partial files stay, without a manifest: never read as a store
        raise
    bar.close()
    seconds = time.perf_counter() - start
    tokens = token_table(sample, loaded.tokenizer)
    record = dict(manifest or {})
    record.update(
        model=facts.to_dict(), n_texts=len(lengths), has_final_norm=has_final_norm,
        layers="0 = input embeddings (hidden_states[0]); 1..n = block outputs before the final norm",
        final_norm_state="final_norm.npy = output of the final norm (last_hidden_state)" if has_final_norm
        else "none: post-LN encoder, the last layer is already normalised",
        pre_norm_last_layer="forward hooks on the blocks and the final norm; output_hidden_states unused",
        positions_stored="all (position 0 included); analyses choose via include_position0",
        position0_is_special=_first_token_is_special(sample, loaded.tokenizer),
        padded_width=pad_to or "longest text of each batch",
        max_abs_activation=max_abs, extraction_seconds=seconds, tokens_per_second=n_tokens / max(seconds, 1e-9),
        device=str(loaded.device), torch_threads=torch.get_num_threads(),  # >1 on CPU: not bitwise reproducible
        versions=library_versions(),
    )
    return writer.finish(tokens, record)


def finish_block(block: torch.Tensor, mask: torch.Tensor, key: str = "model") -> float:
    """Zero the padding rows of a filled `block` (`[states, batch, positions, width]`, the store dtype)
    and return the largest |activation| of the real tokens as stored. A float16 overflow (inf) raises
    an OverflowError; NaN, or inf from the model itself, a FloatingPointError.

    Two large torch ops over the whole block, not one per layer: each op of torch's thread pool has a
    fixed synchronisation cost, large on a busy machine; the writer picks the real rows.
    """
    with torch.inference_mode():
        padding = ~mask.bool()
        if padding.any():  # pad tokens are neither stored nor counted
            block[:, padding] = 0
        low, high = torch.aminmax(block)
    max_abs = max(float(high), -float(low))
    if np.isnan(max_abs) or (np.isinf(max_abs) and block.dtype != torch.float16):
        raise FloatingPointError(f"{key}: the forward pass gave non-finite activations ({max_abs})")
    if np.isinf(max_abs):  # a finite float32 state beyond 65504 cast to float16 is inf
        raise OverflowError(f"{key}: activations exceed {FLOAT16_MAX:.0f}, beyond float16; use dtype float32")
    return max_abs


_TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}


def spare_core() -> bool:
    """True when torch's threads leave a core this process may use: only then can a writer thread
    overlap the forward. On a fully used machine it would take its core from one of torch's threads
    in the middle of a parallel op, and every op waits for the slowest thread (measured on 2 cores,
    2 threads: 0.86 of a bare forward with the thread, 0.87 without, with a spread twice as large)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return torch.get_num_threads() < cores


class BatchWriter:
    """Copies batches into the store, either inline or on a writer thread of its own while the next
    forward runs (`overlap`), and lends out the buffers the batches are cast into.

    The buffers are reused across batches: a fresh block per batch costs its page faults and zeroing
    again (~0.2 s per 8k tokens of SmolLM2). Inline, one buffer; with the thread, two, one filled by
    the forward while the other is written. `take` waits for a free one, so memory stays one or two
    store-dtype batches above the bare forward. An error in the thread is raised in the caller at the
    next `take`/`put` or on exit.
    """

    def __init__(self, writer: StoreWriter, overlap: bool):
        self.writer = writer
        self.free: queue.Queue = queue.Queue()
        for _ in range(2 if overlap else 1):
            self.free.put(torch.empty(0))  # flat; grown to the largest batch by `take`
        self.lent: torch.Tensor | None = None
        self.queue: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="store-writer", daemon=True) if overlap else None

    def __enter__(self) -> "BatchWriter":
        if self.thread is not None:
            self.thread.start()
        return self

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
        """The buffer as a `shape` tensor of `dtype`, to fill and hand back (as an array) with `put`."""
        self._raise()
        flat = self.free.get()
        size, torch_dtype = math.prod(shape), _TORCH_DTYPES[np.dtype(dtype).name]
        if flat.numel() < size or flat.dtype != torch_dtype:
            flat = torch.empty(size, dtype=torch_dtype)
        self.lent = flat
        return flat[:size].view(shape)

    def put(self, block: np.ndarray, segments: list[tuple[int, int]]) -> None:
        """Write `block` (the array of what `take` lent) and free the buffer after."""
        self._raise()
        if self.thread is None:
            self._write(self.lent, block, segments)
        else:
            self.queue.put((self.lent, block, segments))

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        if exc_type is None:
            self._raise()

    def _write(self, buffer: torch.Tensor, block: np.ndarray, segments: list[tuple[int, int]]) -> None:
        try:
            if self.error is None:
                self.writer.write_block(block, segments)
        except BaseException as error:  # re-raised in the caller's thread
            self.error = error
        finally:
            self.free.put(buffer)

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            self._write(*item)

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def token_table(sample: Sample, tokenizer) -> pd.DataFrame:
    """One row per stored vector, in store order: which text, which position, which token."""
    rows = {"text_index": [], "text_id": [], "position": [], "token_id": [], "token": []}
    for k, (ids, text_id) in enumerate(zip(sample.input_ids, sample.text_ids)):
        rows["text_index"] += [k] * len(ids)
        rows["text_id"] += [text_id] * len(ids)
        rows["position"] += list(range(len(ids)))
        rows["token_id"] += list(ids)
        rows["token"] += tokenizer.convert_ids_to_tokens(list(ids))
    return pd.DataFrame(rows).astype({"text_index": "int32", "text_id": "int64", "position": "int32",
                                      "token_id": "int32"})


def _first_token_is_special(sample: Sample, tokenizer) -> bool:
    special = set(tokenizer.all_special_ids)
    return all(ids[0] in special for ids in sample.input_ids)


def library_versions() -> dict[str, str]:
    import numpy
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": numpy.__version__}
