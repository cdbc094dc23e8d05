"""Extraction throughput against a bare forward pass, on the same batches, in one process.

Anchor: `base_model(**batch)` on exactly the batches `extract_to_store` builds (same length grouping,
same padding), once as it is (the goal's anchor, as issue 16 states it) and once with
`output_hidden_states=True` (reported beside it: extraction cannot be faster than computing what it
stores). The full extraction includes the final-norm hook, float16 conversion, the file writes, the
token table and the manifest checksums. Both pad every batch to max_tokens, as the workflow does. Ratios: median over repeats of the paired per-repeat ratio.
Threads: `--threads` defaults to config.yaml's `threads`, which the `extract` rule gets (Snakemake sets
OMP_NUM_THREADS to it, so torch runs that many); `make bench` also runs it on every core.
Goals: extraction ≥ 0.90 × the bare forward (tokens/s, median of the paired repeats); peak anonymous
memory of the extraction at most its float16 batch buffers and one float32 state above that of the
bare forward, i.e. never the store (which goes to disk batch by batch). After each timed variant the
kernel's writeback is flushed (`os.sync`, untimed, reported), so it is not charged to the next one.

    python benchmarks/bench_extraction.py --out results/benchmarks/extraction.json [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch
import yaml

from layerwise.resources.datasets import load_dataset_table, sample_inputs
from layerwise.activations.extract import extract_to_store, length_batches, library_versions, pad_batch, spare_core
from layerwise.resources.models import base_model, load_model, materialise, read_card
from rss_sampler import PeakMemory, anon_rss  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
MODEL_KEY = "smollm2-135m"
RATIO_GOAL = 0.90


def load_smollm2():
    """The workflow's copy when `make paper` made one, else materialise the registry entry here."""
    card_dir = REPO / "resources" / "models" / MODEL_KEY
    if not (card_dir / "layerwise_model.json").exists():
        spec = yaml.safe_load((REPO / "config.yaml").read_text())["models"][MODEL_KEY]
        materialise(MODEL_KEY, spec, card_dir)
    return load_model(read_card(card_dir), device="auto")


class Timer:
    """Wall-clock and process CPU seconds; CPU time is the cross-check on a machine shared with others."""

    def __enter__(self) -> "Timer":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu


@torch.inference_mode()
def bare_forward(loaded, batches, hidden_states: bool) -> None:
    model = base_model(loaded.model)
    for ids, mask in batches:
        out = model(input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device),
                    output_hidden_states=hidden_states, use_cache=False)
        del out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "extraction.json")
    parser.add_argument("--quick", action="store_true", help="16 texts × 64 tokens, one repeat")
    parser.add_argument("--n-texts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-batch-tokens", type=int, default=2048, help="as extraction.max_batch_tokens")
    parser.add_argument("--repeats", type=int, default=5,
                        help="each variant is timed this often; ratios are the median of the per-repeat ratios")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=yaml.safe_load((REPO / "config.yaml").read_text())["threads"],
                        help="torch threads (default: config.yaml's `threads`, as the extract rule runs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.n_texts, args.max_tokens, args.repeats = 16, 64, 1

    loaded = load_smollm2()
    anon_after_load = anon_rss()
    table, _ = load_dataset_table("imdb", [REPO.parent / "shared" / "data", REPO / "data" / "raw"])
    sample = sample_inputs(table, "documents", loaded.tokenizer, n=args.n_texts, max_tokens=args.max_tokens,
                           seed=args.seed)
    lengths = [len(s) for s in sample.input_ids]
    n_tokens = sum(lengths)
    pad_id = loaded.tokenizer.pad_token_id or 0
    # As the workflow extracts: every batch padded to max_tokens (fixed shapes, see extract_to_store).
    index_batches = length_batches([max(n, args.max_tokens) for n in lengths], args.max_batch_tokens)
    batches = [pad_batch([sample.input_ids[i] for i in b], pad_id, args.max_tokens) for b in index_batches]
    bare_forward(loaded, batches[:1], hidden_states=True)  # warm-up: allocator, kernels

    variants = ("bare_forward", "bare_forward_hidden_states", "extraction")
    times = {clock: {name: [] for name in variants} for clock in ("wall", "cpu")}
    peak_anon = dict.fromkeys(variants, 0)
    writeback = {name: [] for name in variants}
    rss_before = anon_rss()
    with tempfile.TemporaryDirectory(prefix="bench-extraction-") as tmp:
        for r in range(args.repeats):  # alternate the order so drift in machine load hits every variant
            for name in variants if r % 2 == 0 else variants[::-1]:
                with PeakMemory() as memory, Timer() as timer:
                    if name == "extraction":
                        manifest = extract_to_store(loaded, sample, Path(tmp) / f"r{r}", dtype="float16",
                                                    max_batch_tokens=args.max_batch_tokens, pad_to=args.max_tokens,
                                                    progress=False)
                    else:
                        bare_forward(loaded, batches, hidden_states=name.endswith("hidden_states"))
                times["wall"][name].append(timer.wall)
                times["cpu"][name].append(timer.cpu)
                peak_anon[name] = max(peak_anon[name], memory.peak_anon)
                # Untimed: the kernel writes the store's dirty pages to disk now, not during the next
                # variant's timing, where its CPU time would be charged to whichever variant came next.
                with Timer() as flush:
                    os.sync()
                writeback[name].append(flush.wall)
    store_bytes = sum(f["bytes"] for f in manifest["files"].values())

    tps = {name: n_tokens / min(t) for name, t in times["wall"].items()}  # best of the repeats
    cpu_tps = {name: n_tokens / min(t) for name, t in times["cpu"].items()}
    # Paired per repeat (the variants of one repeat ran back to back), then the median: robust to drift
    # in the load of a shared machine, which the best-of times are not.
    paired = {clock: [b / e for b, e in zip(times[clock]["bare_forward_hidden_states"], times[clock]["extraction"])]
              for clock in ("wall", "cpu")}
    bare_paired = [b / e for b, e in zip(times["wall"]["bare_forward"], times["wall"]["extraction"])]
    ratio = statistics.median(bare_paired)
    facts = loaded.facts
    padded_batch_tokens = max(ids.numel() for ids, _ in batches)
    state_bytes = padded_batch_tokens * facts.width * 4  # one float32 state of the largest batch
    buffers = 2 if spare_core() else 1  # BatchWriter: one store-dtype buffer inline, two with the writer thread
    buffer_bytes = buffers * padded_batch_tokens * (facts.n_layers + 1 + manifest["has_final_norm"]) * facts.width * 2
    model_bytes = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    extra = peak_anon["extraction"] - peak_anon["bare_forward"]
    result = {
        "benchmark": "extraction",
        "model": facts.to_dict(),
        "workload": {"dataset": "imdb", "n_texts": args.n_texts, "max_tokens": args.max_tokens, "seed": args.seed,
                     "n_tokens": n_tokens, "n_batches": len(batches), "max_batch_tokens": args.max_batch_tokens,
                     "padded_tokens": int(sum(ids.numel() for ids, _ in batches)), "store_dtype": "float16",
                     "repeats": args.repeats, "quick": args.quick, "torch_threads": args.threads,
                     "padded_to": args.max_tokens},
        "seconds": times,
        "tokens_per_second": tps,
        "ratio_extraction_vs_bare_hidden_states": statistics.median(paired["wall"]),
        "ratio_extraction_vs_bare_forward": ratio,
        "ratios_per_repeat": {"wall_vs_bare_hidden_states": paired["wall"], "cpu_vs_bare_hidden_states": paired["cpu"],
                              "wall_vs_bare_forward": bare_paired},
        "ratio_of_best_times_vs_bare_hidden_states": tps["extraction"] / tps["bare_forward_hidden_states"],
        "cpu_tokens_per_second": cpu_tps,
        "cpu_ratio_extraction_vs_bare_hidden_states": statistics.median(paired["cpu"]),
        "memory": {"model_bytes": model_bytes, "anon_rss_after_model_load_bytes": anon_after_load,
                   "anon_rss_before_timing_bytes": rss_before, "peak_anon_rss_bytes": peak_anon,
                   "extraction_minus_bare_forward_peak_bytes": extra, "float16_buffers": buffers,
                   "float16_buffer_bytes": buffer_bytes, "one_float32_state_bytes": state_bytes,
                   "store_bytes": store_bytes},
        "writeback_seconds_after_each_variant_untimed": writeback,
        "goals": {
            "ratio": {"goal": f">= {RATIO_GOAL} x the bare forward", "value": ratio, "met": ratio >= RATIO_GOAL},
            "peak_memory": {"goal": "peak anonymous RSS of extraction <= that of the bare forward + its float16 "
                                    "buffers + one float32 state (no float32 state outlives its next block; "
                                    "the store goes to disk batch by batch)",
                            "value": extra, "budget": buffer_bytes + state_bytes,
                            "met": extra <= buffer_bytes + state_bytes},
        },
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": str(loaded.device), "platform": platform.platform(), "processor": platform.processor(),
                    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                    "versions": {**library_versions(), "psutil": psutil.__version__}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    json.dump({k: result[k] for k in ("tokens_per_second", "ratios_per_repeat", "cpu_ratio_extraction_vs_bare_hidden_states",
                                      "goals")},
              sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
