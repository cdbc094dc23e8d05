"""Throughput of our training loop vs a bare forward+backward+step loop on the same model and batches.

The anchor is the least any training loop must do (HF forward with labels, backward, AdamW
step). Our loop adds data sampling, MLM masking, summed-loss bookkeeping, gradient clipping
and the LR schedule; the goal is that this costs at most 10% of throughput. Checkpoint saving
and validation are excluded from both (they are per-checkpoint, not per-step, costs).

Run: python benchmarks/bench_training.py --out results/benchmarks/training.json [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from layerwise.resources.byte_tokenizer import make_byte_tokenizer
from layerwise.training.runs import TrainingConfig, build_model, train, training_batches
from layerwise.training.data import encode_text, split_ids

GOAL_RATIO = 0.9
# ../shared/data beside the repository, as in CI
DEFAULT_TEXT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "enwik8_small.xml"


def ours_tokens_per_s(kind: str, text: str, cfg: TrainingConfig) -> float:
    """Training-only throughput of :func:`train`: elapsed at the last train row minus the step-0 eval."""
    with tempfile.TemporaryDirectory() as tmp:
        log = train(kind, text, cfg, tmp, checkpoint_steps=[])
    start = log.loc[(log.split == "val") & (log.step == 0), "elapsed_s"].item()
    end = log.loc[(log.split == "train") & (log.step == cfg.max_steps), "elapsed_s"].item()
    return cfg.max_steps * cfg.batch_size * cfg.seq_len / (end - start)


def bare_tokens_per_s(kind: str, text: str, cfg: TrainingConfig) -> float:
    """Same model init and the same windows (and masks), but nothing beyond forward/backward/step."""
    tok = make_byte_tokenizer()
    train_ids, _ = split_ids(encode_text(text, tok), cfg.val_fraction)
    stream = training_batches(kind, train_ids, cfg, tok)
    # HF's own loss: causal models shift labels internally, so the decoder's labels are its inputs
    batches = [(x, x if kind == "decoder" else y) for x, y in itertools.islice(stream, cfg.max_steps)]
    model = build_model(kind, cfg, tok).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    start = time.perf_counter()
    for inputs, labels in batches:
        model(input_ids=inputs, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return cfg.max_steps * cfg.batch_size * cfg.seq_len / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/training.json"))
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for these small models on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = args.text.read_text(encoding="utf-8")
    default = TrainingConfig()
    steps, repeats = (15, 2) if args.quick else (50, 3)
    cfg = dataclasses.replace(default, max_steps=steps, warmup_steps=5, eval_every=steps,
                              eval_batches=1)
    load_before = os.getloadavg()
    results = {}
    for kind in ("decoder", "encoder"):
        ours, bare = [], []
        for _ in range(repeats):  # interleaved so load changes hit both loops alike
            bare.append(bare_tokens_per_s(kind, text, cfg))
            ours.append(ours_tokens_per_s(kind, text, cfg))
        ratio = max(ours) / max(bare)
        default_tokens = default.max_steps * default.batch_size * default.seq_len
        results[kind] = {
            "ours_tokens_per_s": max(ours), "bare_tokens_per_s": max(bare), "ratio": ratio,
            "ours_runs": ours, "bare_runs": bare, "goal_ratio_at_least": GOAL_RATIO,
            "goal_met": ratio >= GOAL_RATIO,
            "projected_default_train_s": default_tokens / max(ours),
        }
    report = {
        "benchmark": "training",
        "config": dataclasses.asdict(cfg), "repeats": repeats, "quick": args.quick,
        "results": results,
        "projected_default_total_s": sum(r["projected_default_train_s"] for r in results.values()),
        "goal_met": all(r["goal_met"] for r in results.values()),
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_avg_1min_before": load_before[0], "load_avg_1min_after": os.getloadavg()[0],
                    "python": platform.python_version(), "torch": torch.__version__,
                    "transformers": transformers.__version__, "numpy": np.__version__,
                    "platform": platform.platform()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: {m: round(v, 3) if isinstance(v, float) else v for m, v in r.items()
                          if not m.endswith("_runs")} for k, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
