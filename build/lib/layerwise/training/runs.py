"""Train a small decoder (causal LM) and a matched encoder (masked LM) from scratch, with checkpoints.

By default (``encoder_block="matched"``) the pair differs only in the attention mask and the
objective: the encoder *is* the decoder's architecture (same block, norm placement, final norm,
width, depth, heads, feed-forward size, positions, initialisation seed), run with a bidirectional
mask and trained on masked-LM; both see the same byte tokenizer, data stream (identical windows in
identical order), optimiser, schedule and budget. That is the controlled encoder-vs-decoder
comparison that pretrained model families (different data, sizes and blocks) cannot give.
``encoder_block="bert"`` keeps the earlier pair, a post-LN BERT encoder against a pre-LN decoder:
not matched (normalisation differs too), named as such wherever it is used.

Losses are in nats per predicted byte; ``bits_per_byte`` = loss / ln 2 (the "bpc" of enwik8).
The encoder's figure is the masked-LM loss on masked positions only: it predicts a byte from
both sides with 85% of the context intact, a different and easier task than predicting the
next byte from the past, so its absolute value is not comparable to the decoder's; only the
trend over training is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F
from transformers import (
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

from layerwise.resources.byte_tokenizer import make_byte_tokenizer
from layerwise.training.checkpoints import log_spaced_steps, remove_stale_temporaries, save_checkpoint
from layerwise.training.data import (
    IGNORE_INDEX,
    causal_targets,
    encode_text,
    evenly_spaced_windows,
    mask_tokens,
    random_windows,
    split_ids,
)

logger = logging.getLogger(__name__)

Kind = Literal["decoder", "encoder"]
KINDS: tuple[str, ...] = ("decoder", "encoder")
DECODER_ARCHS: tuple[str, ...] = ("gpt2", "llama", "gpt_neox")
ENCODER_ARCH = "bert"
ENCODER_BLOCKS: tuple[str, ...] = ("matched", "bert")
_ROTARY_ARCHS = ("llama", "gpt_neox")

# Independent random streams per seed, so e.g. changing the masking never shifts the data order.
_DATA_STREAM, _TRAIN_MASK_STREAM, _VAL_MASK_STREAM = 0, 1, 2

LOG_COLUMNS = ["kind", "arch", "seed", "step", "split", "loss", "bits_per_byte",
               "tokens_seen", "elapsed_s"]


@dataclass(frozen=True)
class TrainingConfig:
    """Model size, data and optimisation budget shared by the decoder and the encoder.

    Defaults (1.6M training bytes per model) train both models in ~5 CPU-minutes in total and
    move validation bits-per-byte from ~8 (uniform over 261 tokens) to ~3.1 for the decoder and
    ~4.6 for the encoder (below the 5.3-bit unigram entropy, so it uses context).
    """

    arch: str = "gpt2"              # decoder architecture: gpt2 | llama | gpt_neox (encoder is BERT)
    n_layers: int = 4
    width: int = 128                # hidden size d_model
    n_heads: int = 4
    ffn_mult: int = 4               # feed-forward size = ffn_mult * width
    seq_len: int = 64               # 64 beat 128 at equal tokens and time for both models
    batch_size: int = 32
    max_steps: int = 800
    lr: float = 2e-3                # peak AdamW learning rate
    warmup_steps: int = 50          # linear warmup, then cosine decay to min_lr_ratio * lr
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1       # on matrices only (not biases, norms)
    grad_clip: float = 1.0          # max global grad norm
    n_checkpoints: int = 12         # log-spaced, including step 0 and max_steps
    eval_every: int = 100           # validation also runs at every checkpoint step
    eval_batches: int = 4           # fixed validation set = eval_batches * batch_size windows
    val_fraction: float = 0.1       # contiguous held-out tail of the text
    mask_prob: float = 0.15         # encoder only
    encoder_block: str = "matched"  # matched: the decoder's block, bidirectional | bert: post-LN BERT
    seed: int = 0

    def __post_init__(self) -> None:
        if self.encoder_block not in ENCODER_BLOCKS:
            raise ValueError(f"unknown encoder_block {self.encoder_block!r}; expected one of {ENCODER_BLOCKS}")
        if self.arch not in DECODER_ARCHS:
            raise ValueError(f"unknown decoder arch {self.arch!r}; expected one of {DECODER_ARCHS}")
        for name in ("n_layers", "width", "n_heads", "ffn_mult", "seq_len", "batch_size",
                     "max_steps", "eval_every", "eval_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.width % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} does not divide width={self.width}")
        if self.arch in _ROTARY_ARCHS and (self.width // self.n_heads) % 2:
            raise ValueError(f"{self.arch} uses rotary embeddings and needs an even head size; "
                             f"width/n_heads = {self.width // self.n_heads}")
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(f"warmup_steps must be in [0, max_steps], got {self.warmup_steps}")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"need lr > 0 and min_lr_ratio in [0, 1], got {self.lr}, {self.min_lr_ratio}")
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError("weight_decay must be >= 0 and grad_clip > 0")
        if self.n_checkpoints < 2:
            raise ValueError(f"n_checkpoints must be >= 2 (step 0 and max_steps), got {self.n_checkpoints}")
        if not 0 < self.val_fraction < 1 or not 0 < self.mask_prob < 1:
            raise ValueError("val_fraction and mask_prob must be in (0, 1)")

    def checkpoint_steps(self) -> list[int]:
        """Default checkpoint steps: ``n_checkpoints`` log-spaced steps from 0 to ``max_steps``."""
        return log_spaced_steps(self.max_steps, self.n_checkpoints)


def build_model(kind: Kind, cfg: TrainingConfig, tokenizer: Any) -> PreTrainedModel:
    """Freshly initialised model of ``kind``; the weights depend only on ``cfg`` and ``cfg.seed``.

    Dropout is off (as in Pythia): it would add a second random stream and slows short runs.
    The global torch RNG is forked, so the caller's random state is left untouched.
    """
    _check_kind(kind)
    common = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  tie_word_embeddings=True)
    ffn = cfg.ffn_mult * cfg.width
    if kind == "encoder" and cfg.encoder_block == "bert":
        config = BertConfig(hidden_size=cfg.width, num_hidden_layers=cfg.n_layers,
                            num_attention_heads=cfg.n_heads, intermediate_size=ffn,
                            max_position_embeddings=cfg.seq_len, type_vocab_size=1,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **common)
        model_cls: type[PreTrainedModel] = BertForMaskedLM
    elif cfg.arch == "gpt2":
        config = GPT2Config(n_embd=cfg.width, n_layer=cfg.n_layers, n_head=cfg.n_heads,
                            n_inner=ffn, n_positions=cfg.seq_len, resid_pdrop=0.0,
                            embd_pdrop=0.0, attn_pdrop=0.0, **common)
        model_cls = GPT2LMHeadModel
    elif cfg.arch == "llama":
        config = LlamaConfig(hidden_size=cfg.width, num_hidden_layers=cfg.n_layers,
                             num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
                             intermediate_size=ffn, max_position_embeddings=cfg.seq_len,
                             attention_dropout=0.0, **common)
        model_cls = LlamaForCausalLM
    else:
        config = GPTNeoXConfig(hidden_size=cfg.width, num_hidden_layers=cfg.n_layers,
                               num_attention_heads=cfg.n_heads, intermediate_size=ffn,
                               max_position_embeddings=cfg.seq_len, hidden_dropout=0.0,
                               attention_dropout=0.0, **common)
        model_cls = GPTNeoXForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return model_cls(config)


def lr_multiplier(step: int, cfg: TrainingConfig) -> float:
    """Learning-rate factor for update ``step`` (0-based): linear warmup, then cosine to ``min_lr_ratio``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, cfg: TrainingConfig) -> tuple[torch.optim.Optimizer,
                                                                          torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (betas 0.9/0.95) with weight decay on matrices only, plus the warmup+cosine schedule."""
    params = list(model.parameters())  # shared (tied) tensors appear once
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, cfg))
    return optimizer, scheduler


def is_bidirectional(kind: str, encoder_block: str) -> bool:
    """Whether ``kind`` runs a decoder block with the causal mask lifted (the matched encoder)."""
    return kind == "encoder" and encoder_block == "matched"


def attention_mask(input_ids: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """Mask for ``input_ids`` (no padding): all ones (the model's own mask, causal for a decoder),
    or an additive 4-D mask of zeros, which Hugging Face decoders use as given: every position
    attends to every other."""
    if not bidirectional:
        return torch.ones_like(input_ids)
    batch, length = input_ids.shape
    return torch.zeros(batch, 1, length, length)


def checkpoint_metadata(kind: str, cfg: TrainingConfig, step: int) -> dict[str, Any]:
    """What ``training_state.json`` records: enough to run a checkpoint as it was trained."""
    return {"kind": kind, "tokens_seen": step * cfg.batch_size * cfg.seq_len,
            "attention": "bidirectional" if kind == "encoder" else "causal",
            "objective": "masked_lm" if kind == "encoder" else "causal_lm",
            "config": dataclasses.asdict(cfg)}


def loss_sums(model: PreTrainedModel, inputs: torch.Tensor, targets: torch.Tensor,
              bidirectional: bool = False) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy (nats) over non-ignored targets, and their count.

    Sums rather than means so averages over batches with different numbers of masked
    positions are exact.
    """
    logits = model(input_ids=inputs, attention_mask=attention_mask(inputs, bidirectional)).logits
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                            ignore_index=IGNORE_INDEX, reduction="sum")
    return total, int((targets != IGNORE_INDEX).sum())


def train(kind: Kind, text: str | bytes, cfg: TrainingConfig, out_dir: str | Path,
          checkpoint_steps: Sequence[int] | None = None) -> pd.DataFrame:
    """Train one model of ``kind`` on ``text`` and save checkpoints to ``out_dir/step{N}``.

    ``checkpoint_steps`` defaults to ``cfg.checkpoint_steps()``; a checkpoint at step N holds the
    weights after N optimiser updates (step 0 = the seeded initialisation). Returns the tidy log
    with columns :data:`LOG_COLUMNS`: a ``val`` row at step 0, every ``eval_every`` steps and every
    checkpoint step, and a ``train`` row (mean over the updates since the previous row) at each
    of those steps after 0.
    """
    _check_kind(kind)
    steps = cfg.checkpoint_steps() if checkpoint_steps is None else sorted(set(checkpoint_steps))
    if any(not 0 <= s <= cfg.max_steps for s in steps):
        raise ValueError(f"checkpoint steps must lie in [0, max_steps={cfg.max_steps}], got {steps}")
    for stale in remove_stale_temporaries(out_dir):
        logger.info("removed %s, left by an interrupted run", stale)
    tokenizer = make_byte_tokenizer()
    train_ids, val_ids = _check_split(encode_text(text, tokenizer), cfg)
    val_batches = _validation_batches(kind, val_ids, cfg, tokenizer)
    batches = training_batches(kind, train_ids, cfg, tokenizer)
    model = build_model(kind, cfg, tokenizer)
    optimizer, scheduler = make_optimizer(model, cfg)
    arch = ENCODER_ARCH if kind == "encoder" and cfg.encoder_block == "bert" else cfg.arch
    bidirectional = is_bidirectional(kind, cfg.encoder_block)
    log_steps = set(range(0, cfg.max_steps + 1, cfg.eval_every)) | set(steps) | {cfg.max_steps}
    rows: list[dict[str, Any]] = []
    run_nats, run_count = 0.0, 0
    start = time.perf_counter()

    def log(step: int, split: str, nats: float, count: int) -> None:
        loss = nats / max(count, 1)
        rows.append(dict(kind=kind, arch=arch, seed=cfg.seed, step=step, split=split, loss=loss,
                         bits_per_byte=loss / math.log(2),
                         tokens_seen=step * cfg.batch_size * cfg.seq_len,
                         elapsed_s=time.perf_counter() - start))
        logger.info("%s step %d %s loss %.4f (%.3f bits/byte)", kind, step, split, loss,
                    loss / math.log(2))

    with _deterministic_algorithms():
        for step in range(cfg.max_steps + 1):
            if step in log_steps:
                if step > 0:
                    log(step, "train", run_nats, run_count)
                    run_nats, run_count = 0.0, 0
                log(step, "val", *_evaluate(model, val_batches, bidirectional))
            if step in steps:
                save_checkpoint(model, tokenizer, out_dir, step, checkpoint_metadata(kind, cfg, step))
            if step == cfg.max_steps:
                break
            inputs, targets = next(batches)
            model.train()
            nats, count = loss_sums(model, inputs, targets, bidirectional)
            (nats / max(count, 1)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            run_nats += float(nats.detach())
            run_count += count
    return pd.DataFrame(rows, columns=LOG_COLUMNS)


def training_batches(kind: Kind, train_ids: np.ndarray, cfg: TrainingConfig,
                     tokenizer: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless seeded stream of (inputs, targets) batches; both kinds draw the same windows.

    The window offsets come from their own random stream, so the encoder's extra masking
    draws never shift which windows it sees relative to the decoder.
    """
    _check_kind(kind)
    data_rng = np.random.default_rng([cfg.seed, _DATA_STREAM])
    mask_rng = np.random.default_rng([cfg.seed, _TRAIN_MASK_STREAM])
    replacement_ids = _replacement_ids(tokenizer)
    while True:
        windows = random_windows(train_ids, cfg.batch_size, cfg.seq_len, data_rng)
        yield _objective(kind, windows, mask_rng, tokenizer, replacement_ids, cfg)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _check_split(ids: np.ndarray, cfg: TrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    train_ids, val_ids = split_ids(ids, cfg.val_fraction)
    if len(train_ids) < cfg.batch_size * cfg.seq_len:
        raise ValueError(f"text too short: the training part has {len(train_ids)} bytes, fewer than "
                         f"one batch of batch_size*seq_len = {cfg.batch_size * cfg.seq_len}")
    return train_ids, val_ids


def _replacement_ids(tokenizer: Any) -> np.ndarray:
    """Ids that MLM may substitute at random: every ordinary (byte) token, never a special one."""
    return np.setdiff1d(np.arange(len(tokenizer)), tokenizer.all_special_ids)


def _objective(kind: str, windows: np.ndarray, rng: np.random.Generator, tokenizer: Any,
               replacement_ids: np.ndarray, cfg: TrainingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    if kind == "decoder":
        inputs, targets = windows, causal_targets(windows)
    else:
        inputs, targets = mask_tokens(windows, rng, tokenizer.mask_token_id, replacement_ids,
                                      cfg.mask_prob)
    return torch.from_numpy(inputs), torch.from_numpy(targets)


def _validation_batches(kind: str, val_ids: np.ndarray, cfg: TrainingConfig,
                        tokenizer: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed validation set; the encoder's masks are drawn once, so every step sees the same ones."""
    windows = evenly_spaced_windows(val_ids, cfg.eval_batches * cfg.batch_size, cfg.seq_len)
    rng = np.random.default_rng([cfg.seed, _VAL_MASK_STREAM])
    replacement_ids = _replacement_ids(tokenizer)
    return [_objective(kind, windows[i:i + cfg.batch_size], rng, tokenizer, replacement_ids, cfg)
            for i in range(0, len(windows), cfg.batch_size)]


@torch.no_grad()
def _evaluate(model: PreTrainedModel, batches: list[tuple[torch.Tensor, torch.Tensor]],
              bidirectional: bool) -> tuple[float, int]:
    model.eval()
    nats, count = 0.0, 0
    for inputs, targets in batches:
        batch_nats, batch_count = loss_sums(model, inputs, targets, bidirectional)
        nats += float(batch_nats)
        count += batch_count
    return nats, count


@contextlib.contextmanager
def _deterministic_algorithms() -> Iterator[None]:
    """Force deterministic kernels for the run, then restore the caller's setting."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
