"""Scaling table: wall time and peak memory of four kernels against the number of vectors, each beside
its anchor run in the same process on the same input, so growth is measured rather than guessed.

    python benchmarks/bench_scaling.py --out results/benchmarks/scaling [--quick]

| kernel     | ours                                   | anchor                                          | n = |
|------------|----------------------------------------|-------------------------------------------------|-----|
| extraction | `extract_to_store` (SmolLM2, float16)  | bare `base_model(**batch)` with hidden states   | tokens |
| probe      | `TorchLogisticProbe.fit`               | scikit-learn `LogisticRegression` (lbfgs)       | training vectors × 576, 31 layers |
| twonn      | `layerwise.geometry.twonn`             | `skdim.id.TwoNN`                                | vectors × 576 |
| lens       | `layerwise.lens.decode.logit_lens`            | naive lens (all logits, textbook formulas)      | positions |

Sizes span 10× (three sizes). Peak memory is the peak anonymous RSS above the level at the start of
the call (sampled every 20 ms; memory-mapped store pages are not anonymous and do not count). Writes
`scaling.json` and `scaling.csv` (one row per kernel × size × implementation).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from layerwise.resources.datasets import load_dataset_table, sample_inputs
from layerwise.activations.extract import extract_to_store, length_batches, library_versions, pad_batch
from layerwise.geometry import twonn
from layerwise.lens.decode import logit_lens
from layerwise.lens.adapters import lens_parts
from layerwise.probes import TorchLogisticProbe, make_layered_vectors
from bench_extraction import REPO, bare_forward, load_smollm2  # benchmarks/ is on sys.path as a script
from bench_logit_lens import naive_lens
from rss_sampler import PeakMemory

SIZES = {"extraction": [512, 1536, 5120], "probe": [2_000, 6_000, 20_000], "twonn": [1_000, 3_000, 10_000],
         "lens": [32, 96, 320]}
QUICK = {"extraction": [64, 192, 640], "probe": [500, 1_500, 5_000], "twonn": [300, 900, 3_000],
         "lens": [8, 24, 80]}
TOKENS_PER_TEXT = 32
WIDTH, N_LAYERS = 576, 30  # SmolLM2-135M's residual stream


def measure(fn: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    with PeakMemory() as memory:
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": wall, "cpu_seconds": cpu, "peak_extra_mb": memory.peak_extra / 2**20}, result


def extraction_rows(loaded, table, sizes: list[int], tmp: Path) -> list[dict]:
    rows = []
    pad_id = loaded.tokenizer.pad_token_id or 0
    for n_tokens in sizes:
        sample = sample_inputs(table, "documents", loaded.tokenizer, n=n_tokens // TOKENS_PER_TEXT,
                               max_tokens=TOKENS_PER_TEXT, seed=0)
        lengths = [max(len(s), TOKENS_PER_TEXT) for s in sample.input_ids]
        batches = [pad_batch([sample.input_ids[i] for i in b], pad_id, TOKENS_PER_TEXT)
                   for b in length_batches(lengths, 2048)]
        n = sum(map(len, sample.input_ids))
        anchor, _ = measure(lambda: bare_forward(loaded, batches, hidden_states=True))
        ours, _ = measure(lambda: extract_to_store(loaded, sample, tmp / f"x{n_tokens}", max_batch_tokens=2048,
                                                   pad_to=TOKENS_PER_TEXT, progress=False))
        rows += [dict(kernel="extraction", n=n, implementation="layerwise", **ours),
                 dict(kernel="extraction", n=n, implementation="bare forward (hidden states)", **anchor)]
    return rows


def probe_rows(sizes: list[int]) -> list[dict]:
    from sklearn.linear_model import LogisticRegression

    rows = []
    for n in sizes:
        n_texts = max(2, n // (10 * (N_LAYERS + 1)))
        data = make_layered_vectors(n_texts=n_texts, n_positions=10, n_layers=N_LAYERS, width=WIDTH, seed=0)
        X = (data.X - data.X.mean(0)) / data.X.std(0)
        ours, _ = measure(lambda: TorchLogisticProbe(C=1.0).fit(X, data.y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter: the time is what is measured
            anchor, _ = measure(lambda: LogisticRegression(C=1.0, max_iter=100).fit(X, data.y))
        rows += [dict(kernel="probe", n=len(X), implementation="layerwise", **ours),
                 dict(kernel="probe", n=len(X), implementation="scikit-learn", **anchor)]
    return rows


def twonn_rows(sizes: list[int]) -> list[dict]:
    import skdim

    rows, rng = [], np.random.default_rng(0)
    for n in sizes:
        x = (rng.standard_normal((n, 12)) @ rng.standard_normal((12, WIDTH))).astype(np.float32)  # 12-dim data
        ours, _ = measure(lambda: twonn(x, fraction=0.9))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            anchor, _ = measure(lambda: skdim.id.TwoNN(discard_fraction=0.1).fit(x.astype(np.float64)))
        rows += [dict(kernel="twonn", n=n, implementation="layerwise", **ours),
                 dict(kernel="twonn", n=n, implementation="scikit-dimension", **anchor)]
    return rows


def lens_rows(model, sizes: list[int]) -> list[dict]:
    rows, parts = [], lens_parts(model)
    vocab = model.config.vocab_size
    for n in sizes:
        ids = torch.randint(0, vocab, (max(1, n // 32), min(n, 32)), generator=torch.Generator().manual_seed(n))
        with torch.inference_mode():
            ours, _ = measure(lambda: logit_lens(model, ids))
            anchor, _ = measure(lambda: naive_lens(model, parts, ids))
        rows += [dict(kernel="lens", n=ids.numel(), implementation="layerwise", **ours),
                 dict(kernel="lens", n=ids.numel(), implementation="naive lens", **anchor)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "scaling")
    parser.add_argument("--quick", action="store_true", help="sizes 8× smaller (still spanning 10×)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else SIZES
    loaded = load_smollm2()
    table, _ = load_dataset_table("imdb", [REPO.parent / "shared" / "data", REPO / "data" / "raw"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        bare_forward(loaded, [pad_batch([[1, 2, 3]], 0)], hidden_states=True)  # warm-up
        rows += extraction_rows(loaded, table, sizes["extraction"], Path(tmp))
    rows += probe_rows(sizes["probe"])
    rows += twonn_rows(sizes["twonn"])
    from transformers import AutoModelForCausalLM  # the LM head: the lens decodes through it

    card = json.loads((REPO / "resources" / "models" / "smollm2-135m" / "layerwise_model.json").read_text())
    lm = AutoModelForCausalLM.from_pretrained(card["folder"], gguf_file=card["gguf_file"], dtype=torch.float32).eval()
    del loaded
    rows += lens_rows(lm, sizes["lens"])
    for row in rows:
        anchor = next(r for r in rows if r["kernel"] == row["kernel"] and r["n"] == row["n"]
                      and r["implementation"] != "layerwise")
        row["seconds_vs_anchor"] = row["seconds"] / anchor["seconds"] if row["implementation"] == "layerwise" else 1.0
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "scaling.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = {"benchmark": "scaling", "sizes": sizes, "quick": args.quick, "rows": rows,
              "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "platform": platform.platform(), "load_average": os.getloadavg(),
                          "versions": library_versions()}}
    (args.out / "scaling.json").write_text(json.dumps(result, indent=2))
    for row in rows:
        print(f"{row['kernel']:10s} n={row['n']:6d} {row['implementation']:30s} {row['seconds']:8.2f} s "
              f"{row['cpu_seconds']:8.2f} cpu-s {row['peak_extra_mb']:8.0f} MB")


if __name__ == "__main__":
    main()
