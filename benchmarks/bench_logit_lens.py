"""Logit lens on a batch of SmolLM2 (default one 512-token text; `--texts 32 --tokens 32` is one batch of the
default run's dataset lens): time and peak memory against its anchors, in one process.

Anchors: one plain forward (which already computes the final logits) plus the unavoidable
unembedding (final norm + LM head) of each of the n + 1 recorded residual streams; no lens can be
faster than that. Comparison: a naive lens that materialises every layer's full logits
[layers x positions x vocab] before computing the same statistics.
Goals: lens time <= 1.3 x (forward + unembedding), median over repeats; peak extra memory of the lens O(positions x vocab),
checked as at most 8 float32 [positions x vocab] arrays whatever the depth (the naive lens needs
~ n + 2 of them).

    python benchmarks/bench_logit_lens.py --out results/benchmarks/logit_lens.json [--quick] [--gguf PATH]

Without the GGUF file (default: the workflow's resources/ copy) a random Llama of SmolLM2's shape is
used instead, and the JSON says so: the timings depend on the shapes, not on the weights.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from layerwise.activations.extract import library_versions
from layerwise.lens.decode import logit_lens, residual_streams, token_rank
from layerwise.lens.adapters import decode, lens_parts
from rss_sampler import PeakMemory  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GGUF = REPO / "resources" / "models" / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf"
TIME_GOAL = 1.3
MEMORY_GOAL_ARRAYS = 8
SMOLLM2_SHAPE = {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                 "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "max_position_embeddings": 8192,
                 "rms_norm_eps": 1e-5, "tie_word_embeddings": True}


def pin_malloc_mmap_threshold(nbytes: int = 1 << 20) -> None:
    """Make glibc serve every array >= 1 MiB by mmap, so freed arrays leave the RSS at once.

    By default glibc raises its mmap threshold (up to 32 MiB) after the first large free; arrays below
    that (e.g. [128 x 49152] float32 = 25 MiB) then come from the heap, whose freed pages stay resident,
    and the sampled peak of a later variant would include an earlier variant's garbage.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, nbytes)  # M_MMAP_THRESHOLD
    except OSError:  # not glibc: measurements stand as they are
        pass


class Measure(PeakMemory):
    """Wall and CPU seconds of a block plus its peak anonymous RSS above the level at entry (sampled)."""

    def __init__(self, interval: float = 0.005):
        super().__init__(interval)

    def __enter__(self) -> "Measure":
        super().__enter__()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        super().__exit__(*exc)


def load_model(gguf: Path) -> tuple[torch.nn.Module, str]:
    if gguf.is_file():
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        return model.eval(), f"SmolLM2-135M-Instruct ({gguf.name}, dequantised to float32)"
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**SMOLLM2_SHAPE)).eval(), f"random Llama of SmolLM2's shape ({gguf} absent)"


@torch.no_grad()
def plain_forward(model, ids: torch.Tensor) -> None:
    model(input_ids=ids, use_cache=False)


@torch.no_grad()
def unembed_only(parts, streams) -> None:
    for stream in streams:
        decode(parts, stream.hidden, "full")


@torch.no_grad()
def naive_lens(model, parts, ids: torch.Tensor) -> dict[str, np.ndarray]:
    """All layers' logits in one [layers, B, T, V] array (preallocated, so not counted twice), then the
    lens's statistics with textbook formulas (log_softmax, KL as a sum of p (log p - log q))."""
    model.config.tie_last_hidden_states = False  # pre-norm last stream (transformers >= 5)
    try:
        out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
    finally:
        del model.config.tie_last_hidden_states
    streams = out.hidden_states
    logits = torch.empty((len(streams) + 1, *out.logits.shape), dtype=torch.float32)
    for k, hidden in enumerate(streams):
        logits[k] = decode(parts, hidden, "full")
    logits[-1] = out.logits
    del out
    logp_final, logp_input = torch.log_softmax(logits[-1], -1), torch.log_softmax(logits[0], -1)
    final_top1 = logits[-1].argmax(-1)
    next_ids = torch.cat([ids[:, 1:], ids[:, :1]], 1)  # the wrapped last entry is ignored below
    stats = {k: [] for k in ("top1_id", "final_top1_rank", "kl_final", "kl_input", "input_token_rank",
                             "next_token_logprob", "next_token_rank")}
    for layer in logits:
        logp = torch.log_softmax(layer, -1)
        stats["top1_id"].append(layer.argmax(-1))
        stats["final_top1_rank"].append(token_rank(layer, final_top1))
        stats["kl_final"].append((logp_final.exp() * (logp_final - logp)).sum(-1))
        stats["kl_input"].append((logp_input.exp() * (logp_input - logp)).sum(-1))
        stats["input_token_rank"].append(token_rank(layer, ids))
        stats["next_token_logprob"].append(logp.gather(-1, next_ids.unsqueeze(-1)).squeeze(-1))
        stats["next_token_rank"].append(token_rank(layer, next_ids))
    return {k: torch.stack(v).flatten().numpy() for k, v in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "logit_lens.json")
    parser.add_argument("--gguf", type=Path, default=DEFAULT_GGUF)
    parser.add_argument("--quick", action="store_true", help="128 tokens, one repeat")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--texts", type=int, default=1, help="texts per batch (the dataset lens batches short texts)")
    parser.add_argument("--repeats", type=int, default=3, help="each variant is timed this often; medians and best kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.repeats = 128, 1

    pin_malloc_mmap_threshold()
    model, model_note = load_model(args.gguf)
    parts = lens_parts(model)
    vocab = model.get_output_embeddings().weight.shape[0]
    # the text's content does not change the cost, so a seeded random token sequence stands in for it
    ids = torch.from_numpy(np.random.default_rng(args.seed).integers(0, vocab, size=(args.texts, args.tokens)))
    streams, _ = residual_streams(model, ids)
    plain_forward(model, ids[:, :16])  # warm-up
    logit_lens(model, ids[:, :16])  # warm-up, and loads the statistics kernel from numba's cache (or compiles it)

    variants = ("forward", "unembedding", "lens", "naive")
    runs = {name: [] for name in variants}
    for r in range(args.repeats):  # alternate the order so drift in machine load hits every variant
        for name in variants if r % 2 == 0 else variants[::-1]:
            with Measure() as m:
                if name == "forward":
                    plain_forward(model, ids)
                elif name == "unembedding":
                    unembed_only(parts, streams)
                elif name == "lens":
                    table = logit_lens(model, ids)
                else:
                    naive = naive_lens(model, parts, ids)
            runs[name].append({"wall": m.wall, "cpu": m.cpu, "peak_extra_bytes": m.peak_extra})

    best = {name: {clock: min(run[clock] for run in runs[name]) for clock in ("wall", "cpu")} for name in variants}
    peak = {name: max(run["peak_extra_bytes"] for run in runs[name]) for name in variants}
    median = {name: {clock: float(np.median([run[clock] for run in runs[name]])) for clock in ("wall", "cpu")}
              for name in variants}
    anchor = {clock: median["forward"][clock] + median["unembedding"][clock] for clock in ("wall", "cpu")}
    ratio = {clock: median["lens"][clock] / anchor[clock] for clock in anchor}
    best_anchor = {clock: best["forward"][clock] + best["unembedding"][clock] for clock in ("wall", "cpu")}
    one_array = args.texts * args.tokens * vocab * 4
    # both are laid out layer by layer (0..n, then the model's output), texts inside, positions inside those
    agreement = {f"max_abs_diff_{k}": float(np.abs(table[k].to_numpy(dtype=float) - naive[k]).max())
                 for k in ("kl_final", "kl_input")}
    agreement.update({f"{k}_equal": bool((table[k].to_numpy() == naive[k]).all())
                      for k in ("top1_id", "final_top1_rank", "input_token_rank")})
    result = {
        "benchmark": "logit_lens",
        "model": model_note,
        "real_model": args.gguf.is_file(),
        "workload": {"tokens": args.tokens, "texts": args.texts, "decoder": "full", "n_layers": parts.n_layers,
                     "vocab": vocab, "repeats": args.repeats, "seed": args.seed, "quick": args.quick},
        "seconds": {name: [run["wall"] for run in runs[name]] for name in variants},
        "cpu_seconds": {name: [run["cpu"] for run in runs[name]] for name in variants},
        "best_seconds": best,
        "median_seconds": median,
        "anchor_median_seconds": anchor,
        "ratio_lens_vs_forward_plus_unembedding": ratio,
        "ratio_of_best_lens_vs_forward_plus_unembedding": {c: best["lens"][c] / best_anchor[c] for c in best_anchor},
        "ratio_naive_vs_forward_plus_unembedding": {clock: median["naive"][clock] / anchor[clock] for clock in anchor},
        "memory": {"peak_extra_anon_rss_bytes": peak, "one_positions_x_vocab_float32_bytes": one_array,
                   "peak_extra_in_positions_x_vocab_arrays": {k: v / one_array for k, v in peak.items()},
                   "recorded_streams_bytes": sum(s.hidden.numel() * 4 for s in streams)},
        "lens_vs_naive_numbers": agreement,
        "goals": {
            "time": {"goal": f"median lens wall time <= {TIME_GOAL} x median (plain forward + per-layer unembedding)",
                     "value": ratio["wall"], "met": ratio["wall"] <= TIME_GOAL},
            "memory": {"goal": f"peak extra memory of the lens <= {MEMORY_GOAL_ARRAYS} float32 [positions x vocab] "
                               f"arrays (O(positions x vocab), independent of the {parts.n_layers} layers)",
                       "value": peak["lens"] / one_array, "met": peak["lens"] <= MEMORY_GOAL_ARRAYS * one_array},
        },
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "processor": platform.processor(),
                    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                    "versions": {**library_versions(), "psutil": psutil.__version__}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    json.dump({k: result[k] for k in ("model", "median_seconds", "anchor_median_seconds", "memory",
                                      "lens_vs_naive_numbers", "goals")},
              sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
