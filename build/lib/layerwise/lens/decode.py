"""The logit lens: decode every layer's residual stream with the model's own head, position by position.

One forward pass records the residual stream at the input of the first block (layer 0) and at the
output of every block (layers 1..n, *before* the final norm), optionally also after each attention
sub-block. The streams are then decoded one layer at a time, so at most a few [positions x vocab]
arrays exist at once (the current layer, the final distribution and the layer-0 distribution), never
[layers x positions x vocab]. The recorded streams themselves cost [layers x positions x d_model],
which is ~vocab/d_model (85x for SmolLM2) smaller.

We record streams with our own forward hooks rather than `output_hidden_states`, because in
transformers 5 `hidden_states[-1]` is by default replaced by the post-final-norm state (only
`config.tie_last_hidden_states = False` restores the pre-norm stream); hooks on the blocks give the
pre-norm stream for every layer on every transformers version and also serve the sub-block streams.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel

from layerwise.activations.hooks import residual_hooks
from layerwise.floats import LOG_FLOOR
from layerwise.lens.adapters import DECODERS, Decoder, LensParts, decode, lens_parts, normalise
from layerwise.lens.kernels import row_stats
from layerwise.lens.labels import FINAL
from layerwise.resources.datasets import Sample, sample_inputs
from layerwise.resources.models import LoadedModel

log = logging.getLogger(__name__)

LENS_COLUMNS: tuple[str, ...] = (
    "text", "decoder", "layer", "depth", "position", "input_token_id", "top1_id", "top1_logit",
    "final_top1_id", "final_top1_rank", "kl_final", "kl_input", "input_token_rank", "next_token_id",
    "next_token_logprob", "next_token_prob", "next_token_rank",
)


@dataclass(frozen=True)
class Stream:
    """One residual stream to decode: its row label, its depth (for ordering) and its states [B, T, d]."""

    label: str
    depth: float
    hidden: torch.Tensor


def token_rank(logits: torch.Tensor, token_ids: torch.Tensor, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Rank (1 = top) of `token_ids` [...] in `logits` [..., vocab], counting ties against the token.

    rank = #{v : logit_v >= logit_token}, as transformer-utils does: a token tied with others for the
    top gets the pessimistic rank, so "rank 1" always means a strict, unique winner. `scratch`, a
    float tensor shaped like `logits`, receives the comparison: on CPU, allocating a fresh
    [positions x vocab] mask per call (and summing booleans) costs ~10x the comparison itself.
    """
    target = logits.gather(-1, token_ids.unsqueeze(-1))
    if scratch is None:
        scratch = torch.empty_like(logits)
    return torch.ge(logits, target, out=scratch).sum(-1).long()  # float32 counts are exact below 2**24


def _log_partition(centred: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """log sum exp over the vocabulary of logits whose row maximum is 0, computed inside `scratch` (terms
    below exp(LOG_FLOOR) are floored: they cannot move a sum >= 1, and would take exp's slow path)."""
    return torch.clamp(centred, min=LOG_FLOOR, out=scratch).exp_().sum(-1).log_()


@contextmanager
def _recording(parts: LensParts, subblocks: bool) -> Iterator[list[Stream]]:
    """Hook the blocks for one forward; yields the list that is filled with the streams in depth order."""
    streams: list[Stream] = []
    attn_out: dict[int, torch.Tensor] = {}

    def record(layer: int, out: torch.Tensor) -> None:
        if layer == 0:
            streams.append(Stream("0", 0.0, out))
        elif subblocks:
            # after attention = residual before the block + what attention wrote into it; this also holds
            # for GPT-NeoX's parallel residual, where no such sum exists inside the block
            added = attn_out.pop(layer)  # on this block's device; the stream before it may be on the last one's
            streams.append(Stream(f"{layer}.attn", layer - 0.5, streams[-1].hidden.to(added.device) + added))
            streams.append(Stream(f"{layer}.mlp", float(layer), out))
        else:
            streams.append(Stream(str(layer), float(layer), out))

    attentions = [getattr(block, parts.attention_name) for block in parts.blocks] if subblocks else None
    with residual_hooks(parts.blocks, record, attentions=attentions,
                        on_attention=attn_out.__setitem__ if subblocks else None):
        yield streams


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _check_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        raise ValueError("input_ids must be a 2-D LongTensor [batch, positions]")
    if attention_mask is None:
        return torch.ones_like(input_ids)
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape "
                         f"{tuple(input_ids.shape)}")
    if not torch.isin(attention_mask, torch.tensor([0, 1], device=attention_mask.device)).all():
        raise ValueError("attention_mask must contain only 0 and 1")
    if (attention_mask.sum(-1) == 0).any():
        raise ValueError("every sequence needs at least one unmasked token")
    return attention_mask.long()


def residual_streams(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                     *, subblocks: bool = False) -> tuple[list[Stream], torch.Tensor]:
    """Run one forward; return the pre-final-norm residual streams and the model's own logits [B, T, V].

    Streams: "0" = input of the first block (= transformers' hidden_states[0]), "1".."n" = block
    outputs, or with `subblocks` "i.attn" (after attention) and "i.mlp" (after MLP = block output).
    Position ids follow the attention mask, so left- and right-padded batches give the same numbers.
    """
    attention_mask = _check_inputs(input_ids, attention_mask)
    parts = lens_parts(model)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad(), _eval_mode(model), _recording(parts, subblocks) as streams:
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    return streams, out.logits


def _references(final_logits: torch.Tensor, input_logits: torch.Tensor,
                scratch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities [B, T, 2, V] of the final and layer-0 distributions and their sums p log p [B, T, 2].

    Built in place (centred logits, log-probabilities, probabilities) so that only these two [T x V]
    slices and the shared scratch exist, not the temporaries of log_softmax / exp / product.
    """
    probs = torch.stack([final_logits, input_logits], dim=-2)
    probs.sub_(probs.amax(-1, keepdim=True))
    neg_entropy = torch.empty(probs.shape[:-1], dtype=probs.dtype, device=probs.device)
    for k in range(probs.shape[-2]):
        logp = probs[..., k, :]
        logp.sub_(_log_partition(logp, scratch).unsqueeze(-1))
        neg_entropy[..., k] = torch.clamp(logp, min=LOG_FLOOR, out=scratch).exp_().mul_(logp).sum(-1)
    return probs.clamp_(min=LOG_FLOOR).exp_(), neg_entropy


def _kl_from(references: tuple[torch.Tensor, torch.Tensor], centred: torch.Tensor, log_partition: torch.Tensor,
             scratch: torch.Tensor) -> torch.Tensor:
    """KL(p || q) [B, T, 2] = sum p log p - sum p z + log sum exp z, for each reference p (sum p = 1).

    z are the layer's logits minus their row maximum (KL is shift-invariant): with raw logits of
    ~30-250 (SmolLM2) float32 cancellation left errors of ~1e-4 nats. The dot products are an
    elementwise product into `scratch` plus torch's pairwise sum, not a batched matmul, whose
    sequential float32 accumulation was ~100x less accurate.
    """
    p, neg_entropy = references
    cross = torch.stack([torch.mul(p[..., k, :], centred, out=scratch).sum(-1) for k in range(p.shape[-2])], -1)
    return (neg_entropy - cross + log_partition.unsqueeze(-1)).clamp(min=0.0)


def _layer_stats_torch(logits: torch.Tensor, final_top1: torch.Tensor, input_ids: torch.Tensor, next_ids: torch.Tensor,
                 references: tuple[torch.Tensor, torch.Tensor], scratch: torch.Tensor) -> dict[str, torch.Tensor]:
    """Statistics of one layer's logits [..., V] with torch ops (any device); float32 logits are centred in
    place (consumed). On CPU, `_layer_stats` computes the same numbers with a fused kernel."""
    logits = logits.float()
    top1_logit, top1_id = logits.max(-1)
    stats = {  # ranks on the raw logits: centring rounds and could merge two nearly equal logits into a tie
        "top1_id": top1_id,
        "top1_logit": top1_logit,
        "final_top1_rank": token_rank(logits, final_top1, scratch),
        "input_token_rank": token_rank(logits, input_ids, scratch),
        "next_token_rank": token_rank(logits, next_ids, scratch),
    }
    centred = logits.sub_(top1_logit.unsqueeze(-1))  # KL and log-probabilities are shift-invariant
    log_partition = _log_partition(centred, scratch)
    kl = _kl_from(references, centred, log_partition, scratch)
    stats.update({
        "kl_final": kl[..., 0],
        "kl_input": kl[..., 1],
        "next_token_logprob": centred.gather(-1, next_ids.unsqueeze(-1)).squeeze(-1) - log_partition,
    })
    return stats


def _layer_stats(logits: torch.Tensor, final_top1: torch.Tensor, input_ids: torch.Tensor, next_ids: torch.Tensor,
                 references: tuple[torch.Tensor, torch.Tensor], scratch: torch.Tensor) -> dict[str, torch.Tensor]:
    """Statistics of one layer's logits [rows, V] (consumed: centred in place), as `_layer_stats_torch`,
    with top-1, ranks and KL cross terms from the fused kernel `row_stats` on CPU."""
    if logits.device.type != "cpu":
        return _layer_stats_torch(logits, final_top1, input_ids, next_ids, references, scratch)
    logits = logits.float().contiguous()
    p, neg_entropy = references
    n = logits.shape[0]
    top1_id, top1_logit = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.float32)
    ranks, cross = torch.empty(n, 3, dtype=torch.long), torch.empty(n, p.shape[-2], dtype=torch.float64)
    targets = torch.stack([final_top1, input_ids, next_ids], -1).contiguous()
    row_stats(logits.numpy(), targets.numpy(), p.contiguous().numpy(), top1_id.numpy(), top1_logit.numpy(),
              ranks.numpy(), cross.numpy())
    centred = logits.sub_(top1_logit.unsqueeze(-1))
    log_partition = _log_partition(centred, scratch)
    kl = (neg_entropy.double() - cross + log_partition.double().unsqueeze(-1)).clamp(min=0.0).float()
    return {
        "top1_id": top1_id, "top1_logit": top1_logit, "final_top1_rank": ranks[:, 0], "input_token_rank": ranks[:, 1],
        "next_token_rank": ranks[:, 2], "kl_final": kl[:, 0], "kl_input": kl[:, 1],
        "next_token_logprob": centred.gather(-1, next_ids.unsqueeze(-1)).squeeze(-1) - log_partition,
    }


def _next_tokens(input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The next real token after each position (0 where there is none) and where it exists."""
    next_ids = torch.zeros_like(input_ids)
    has_next = torch.zeros_like(mask, dtype=torch.bool)
    for b in range(input_ids.shape[0]):
        real = mask[b].nonzero().squeeze(-1)
        next_ids[b, real[:-1]] = input_ids[b, real[1:]]
        has_next[b, real[:-1]] = True
    return next_ids, has_next


CHUNK_ARRAYS = 6  # float32 [rows x vocab] arrays alive per chunk: logits, scratch, 2 references, 2 temporaries


def chunk_rows(vocab: int, available_bytes: int | None = None) -> int:
    """Positions decoded at once: as many as fit `CHUNK_ARRAYS` float32 [rows x vocab] arrays in an eighth of
    the available memory (at least 1).

    Large chunks are faster: every chunk re-reads the whole unembedding matrix (113 MB for SmolLM2) per
    layer, and measured on a 512-token text, chunks of 64 or 28 positions made the lens 1.2x and 1.7x
    slower than one chunk. Chunks only exist to keep memory O(chunk x vocab) on long batches.
    """
    if available_bytes is None:
        import psutil
        available_bytes = psutil.virtual_memory().available
    return max(1, available_bytes // 8 // (CHUNK_ARRAYS * vocab * 4))


def _decode_into(parts: LensParts, hidden: torch.Tensor, decoder: Decoder, out: torch.Tensor) -> torch.Tensor:
    """`decode` written into a preallocated float32 buffer (no fresh [rows x vocab] allocation per layer)."""
    unembed = parts.unembed
    if (isinstance(unembed, torch.nn.Linear) and unembed.bias is None and unembed.weight.dtype == torch.float32
            and parts.project_out is None and parts.softcap is None and unembed.weight.device == out.device
            and hidden.device == out.device):
        normed = normalise(parts, hidden, decoder)
        return torch.matmul(normed.float(), unembed.weight.t(), out=out)
    return out.copy_(decode(parts, hidden, decoder))


def logit_lens(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
               decoder: Decoder = "full", subblocks: bool = False,
               text_names: Sequence[str] | None = None, chunk: int | None = None) -> pd.DataFrame:
    """Per (text, layer, position) lens statistics of a batch, as a tidy table with `LENS_COLUMNS`.

    Layers: "0" (input embedding), "1".."n" (block outputs; "i.attn"/"i.mlp" with `subblocks`) decoded
    with `decoder`, and "final" = the model's own logits (depth n + 1). Columns: the layer's top-1
    token and logit; rank of the model's final top-1 token; KL(final || layer) and KL(layer 0 ||
    layer) in nats; ranks of the current input token and of the true next token and the next
    token's log-probability / probability (missing at each text's last position). Padding
    (attention_mask = 0) is dropped; `position` counts real tokens from 0. Positions are decoded
    `chunk` at a time (default `chunk_rows`); the numbers do not depend on it.
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {DECODERS}")
    mask = _check_inputs(input_ids, attention_mask)
    if text_names is not None and len(text_names) != input_ids.shape[0]:
        raise ValueError(f"{len(text_names)} text names for a batch of {input_ids.shape[0]}")
    if chunk is not None and chunk < 1:
        raise ValueError("chunk must be positive")
    parts = lens_parts(model)
    streams, final_logits = residual_streams(model, input_ids, mask, subblocks=subblocks)
    shape, vocab = input_ids.shape, final_logits.shape[-1]
    final_logits = final_logits.float().reshape(-1, vocab)
    final_top1 = final_logits.argmax(-1)
    next_ids, has_next = _next_tokens(input_ids, mask)
    # on a model sharded across devices (device_map) the head's device may not be the embeddings'
    flat_ids, flat_next = input_ids.reshape(-1).to(final_logits.device), next_ids.reshape(-1).to(final_logits.device)
    hidden = [stream.hidden.reshape(-1, stream.hidden.shape[-1]) for stream in streams]
    rows = min(chunk or chunk_rows(vocab), final_logits.shape[0])

    per_layer: list[list[dict[str, torch.Tensor]]] = [[] for _ in range(len(streams) + 1)]
    with torch.no_grad():
        scratch = torch.empty(rows, vocab, device=final_logits.device)  # reused by every reduction
        buffer = torch.empty_like(scratch)  # each layer's logits
        for start in range(0, final_logits.shape[0], rows):
            part = slice(start, start + rows)
            n = final_logits[part].shape[0]
            ids, nxt, top1, work = flat_ids[part], flat_next[part], final_top1[part], scratch[:n]
            logits = _decode_into(parts, hidden[0][part], decoder, buffer[:n])
            references = _references(final_logits[part], logits, work)
            per_layer[-1].append(_layer_stats(final_logits[part], top1, ids, nxt, references, work))
            for i in range(len(streams)):
                if i > 0:
                    logits = _decode_into(parts, hidden[i][part], decoder, buffer[:n])
                per_layer[i].append(_layer_stats(logits, top1, ids, nxt, references, work))
            del references
        del final_logits
    labels = [(s.label, s.depth) for s in streams] + [(FINAL, float(parts.n_layers + 1))]
    layers = [(label, depth, {k: torch.cat([c[k] for c in chunks]).reshape(shape) for k in chunks[0]})
              for (label, depth), chunks in zip(labels, per_layer)]
    names = list(text_names) if text_names is not None else list(range(input_ids.shape[0]))
    return _to_table(layers, names, decoder, input_ids, mask, final_top1.reshape(shape), next_ids, has_next)


def _with_missing(values: np.ndarray, present: np.ndarray) -> pd.arrays.IntegerArray:
    """Integers with <NA> where `present` is False (the next token after a text's last position)."""
    out = pd.array(values, dtype="Int64")
    out[~present] = pd.NA
    return out


def _to_table(layers: list[tuple[str, float, dict[str, torch.Tensor]]], names: list, decoder: str,
              input_ids: torch.Tensor, mask: torch.Tensor, final_top1: torch.Tensor, next_ids: torch.Tensor,
              has_next: torch.Tensor) -> pd.DataFrame:
    keep = mask.bool().cpu().numpy()
    nxt = has_next.cpu().numpy()[keep]
    per_token = {
        "text": np.repeat(np.asarray(names, dtype=object)[:, None], keep.shape[1], 1)[keep],
        "decoder": decoder,
        "position": (np.cumsum(keep, 1) - 1)[keep],
        "input_token_id": input_ids.cpu().numpy()[keep],
        "final_top1_id": final_top1.cpu().numpy()[keep],
        "next_token_id": _with_missing(next_ids.cpu().numpy()[keep], nxt),
    }
    frames = []
    for label, depth, stats in layers:
        s = {k: v.cpu().numpy()[keep] for k, v in stats.items()}
        logprob = np.where(nxt, s["next_token_logprob"], np.nan)
        frames.append(pd.DataFrame({
            **per_token, "layer": label, "depth": depth, "top1_id": s["top1_id"], "top1_logit": s["top1_logit"],
            "final_top1_rank": s["final_top1_rank"], "kl_final": s["kl_final"], "kl_input": s["kl_input"],
            "input_token_rank": s["input_token_rank"], "next_token_logprob": logprob,
            "next_token_prob": np.exp(logprob), "next_token_rank": _with_missing(s["next_token_rank"], nxt),
        }))
    return pd.concat(frames, ignore_index=True)[list(LENS_COLUMNS)]


def logit_lens_texts(model: PreTrainedModel, tokenizer, texts: Mapping[str, str], *, decoder: Decoder = "full",
                     subblocks: bool = False, max_tokens: int = 512, batch_size: int = 1,
                     add_special_tokens: bool = True) -> pd.DataFrame:
    """`logit_lens` over named texts (truncated to `max_tokens`), batched, with token strings added.

    One text per batch by default: example texts are few and long (up to 512 tokens), where more texts per
    batch gain little; a dataset sample of short texts goes through `logit_lens_sequences`' default batch.
    """
    if max_tokens < 2:
        raise ValueError("max_tokens must be at least 2 (a position and its next token)")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    names = list(texts)
    encoded = [tokenizer(texts[n], add_special_tokens=add_special_tokens, truncation=True,
                         max_length=max_tokens)["input_ids"] for n in names]
    for name, ids in zip(names, encoded):
        if not ids:
            raise ValueError(f"text {name!r} tokenizes to nothing")
    return add_token_text(logit_lens_sequences(model, encoded, names, decoder=decoder, subblocks=subblocks,
                                               batch_size=batch_size), tokenizer)


# Positions per forward pass of `logit_lens_sequences` by default. Every batch re-reads the whole unembedding
# matrix once per layer (113 MB for SmolLM2): measured on 32-token texts (SmolLM2, 2 cores), one text per batch
# took 1.00 s per text, 8 texts 0.52 s, 32 texts 0.47 s, with the same table. Memory stays bounded by the
# position chunks of `logit_lens`, not by the batch.
BATCH_POSITIONS = 1024


def logit_lens_sequences(model: PreTrainedModel, sequences: Sequence[Sequence[int]], names: Sequence, *,
                         decoder: Decoder = "full", subblocks: bool = False, batch_size: int | None = None
                         ) -> pd.DataFrame:
    """`logit_lens` over already tokenised sequences (e.g. a seeded dataset sample), right-padded in batches of
    `batch_size` (default: as many of the longest sequence as fill `BATCH_POSITIONS` positions)."""
    if len(sequences) != len(names):
        raise ValueError(f"{len(sequences)} sequences but {len(names)} names")
    if batch_size is None:
        batch_size = max(1, BATCH_POSITIONS // max((len(ids) for ids in sequences), default=1))
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    tables = []
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start:start + batch_size]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.zeros(len(chunk), width, dtype=torch.long)  # pad id is irrelevant: masked and dropped
        mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(chunk):
            input_ids[row, :len(ids)] = torch.tensor(list(ids))
            mask[row, :len(ids)] = 1
        log.info("logit lens: sequences %d-%d of %d", start + 1, start + len(chunk), len(sequences))
        tables.append(logit_lens(model, input_ids.to(model.device), mask.to(model.device), decoder=decoder,
                                 subblocks=subblocks, text_names=list(names[start:start + batch_size])))
    return pd.concat(tables, ignore_index=True)


def logit_lens_dataset(loaded: LoadedModel, frame: pd.DataFrame, layout: str, *, n_texts: int, max_tokens: int,
                       min_tokens: int, seed: int, decoder: Decoder = "full", subblocks: bool = False
                       ) -> tuple[pd.DataFrame, Sample]:
    """`logit_lens_sequences` over a seeded sample of a dataset table (`resources.datasets.sample_inputs`): the
    lens table and the sample it read (its `report` says what was kept and skipped)."""
    sample = sample_inputs(frame, layout, loaded.tokenizer, n=n_texts, max_tokens=max_tokens, seed=seed,
                           min_tokens=min_tokens)
    log.info("sample: %s", sample.report)
    with torch.inference_mode():
        table = logit_lens_sequences(loaded.model, sample.input_ids, sample.text_ids, decoder=decoder,
                                     subblocks=subblocks)
    return table, sample


def add_token_text(table: pd.DataFrame, tokenizer) -> pd.DataFrame:
    """Add the decoded strings of the token-id columns (`input_token`, `top1_token`, ...) for plotting."""
    columns = {"input_token_id": "input_token", "top1_id": "top1_token", "final_top1_id": "final_top1_token",
               "next_token_id": "next_token"}
    ids = pd.unique(pd.concat([table[c].dropna().astype("int64") for c in columns], ignore_index=True))
    text = {int(i): tokenizer.decode([int(i)]) for i in ids}
    out = table.copy()
    for id_col, str_col in columns.items():
        out[str_col] = table[id_col].map(lambda i: text[int(i)] if pd.notna(i) else None)
    return out
