"""`make bench`: every benchmark, one after the other (never concurrently: they time the same CPU).

Real inputs come from the workflow: the SmolLM2 model card, a 20k-token enwik8 store for the
geometry kernels and a >100k-vector IMDB store for the probe; they are built first with Snakemake.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"
GEOMETRY_STORE = f"results/activations/{MODEL}/enwik8/n160_l128_s0"
PROBE_STORE = f"results/activations/{MODEL}/imdb/n120_l30_s0"
# the sklearn reference of a converged probe at the post's N=1000 (MiniLM: the fit scikit-learn solves in ~20 s)
CONVERGENCE_STORE = "results/activations/minilm-l6/imdb/n1000_l30_s0"


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    py = sys.executable
    run([py, "-m", "snakemake", "--cores", "2", f"resources/models/{MODEL}/layerwise_model.json",
         GEOMETRY_STORE, PROBE_STORE, *([] if args.quick else [CONVERGENCE_STORE])])
    card = json.loads((REPO / "resources" / "models" / MODEL / "layerwise_model.json").read_text())
    gguf = str(Path(card["folder"]) / card["gguf_file"])
    out = args.out
    run([py, "benchmarks/bench_extraction.py", "--out", str(out / "extraction.json"), *quick])  # as the rule runs
    run([py, "benchmarks/bench_extraction.py", "--out", str(out / "extraction_all_cores.json"), "--threads",
         str(os.cpu_count()), *quick])
    run([py, "benchmarks/bench_geometry.py", "--out", str(out / "geometry.json"),
         "--vectors", f"{GEOMETRY_STORE}/layer_015.npy", *quick])
    run([py, "benchmarks/bench_probe.py", "--out", str(out / "probe.json"), "--store", PROBE_STORE, *quick])
    if not args.quick:  # torch to the gradient tolerance vs scikit-learn to its own (goal: within 0.5 points)
        run([py, "benchmarks/bench_probe_convergence.py", "--store", CONVERGENCE_STORE, "--out",
             str(out / "probe_convergence.json"), "--settings", "10:1000", "--sklearn"])
    run([py, "benchmarks/bench_logit_lens.py", "--out", str(out / "logit_lens.json"), "--gguf", gguf, *quick])
    if not args.quick:  # one batch of the default run's dataset lens (lens_dataset: 32 texts x 32 tokens)
        run([py, "benchmarks/bench_logit_lens.py", "--out", str(out / "logit_lens_dataset_batch.json"), "--gguf", gguf,
             "--texts", "32", "--tokens", "32"])
    run([py, "benchmarks/bench_training.py", "--out", str(out / "training.json"), *quick])
    run([py, "benchmarks/bench_scaling.py", "--out", str(out / "scaling"), *quick])
    summary = {p.stem: json.loads(p.read_text()).get("goals", "see file") for p in sorted(out.glob("*.json"))}
    print(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
