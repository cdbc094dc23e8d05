"""What a config costs, before running it: forward tokens and FLOPs per study and model, plus the probe
fits, turned into hours at a measured (CPU) or assumed (GPU) throughput.

An estimate, and an upper bound on tokens: every text is counted at its full L (shorter texts cost less),
and every probe fit at its full epoch budget. Forward FLOPs are 2 x parameters per token (Kaplan et al.
2020); a logistic probe costs 6 x vectors x width x classes per epoch (forward and backward matmuls).

    PYTHONPATH=src python -m layerwise.workflow.cost configs/paper.yaml
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Mapping

import pandas as pd

from layerwise.training.checkpoints import hub_revisions

#: Published sizes of the paper config's models: (parameters, layers, width). ALBERT shares one layer's
#: weights across its 12 layers, so its per-token compute is BERT base's, not its 12M parameters'.
PUBLISHED_SIZES: dict[str, tuple[float, int, int]] = {
    "gpt2": (124e6, 12, 768), "gpt2-medium": (355e6, 24, 1024), "gpt2-large": (774e6, 36, 1280),
    "gpt2-xl": (1558e6, 48, 1600), "bert-base-uncased": (110e6, 12, 768), "roberta-base": (125e6, 12, 768),
    "albert-base-v2": (110e6, 12, 768), "pythia-160m": (162e6, 12, 768), "pythia-410m": (405e6, 24, 1024),
}
#: Assumed sustained float32/TF32 throughput of one A100-class GPU on these workloads (not measured here).
GPU_FLOPS = 20e12


def forward_jobs(config: Mapping[str, Any]) -> pd.DataFrame:
    """One row per distinct activation store or lens pass: study, model, dataset, texts x tokens."""
    rows = []

    def add(study: str, model: str, dataset: str, n: int, length: int, passes: int = 1) -> None:
        rows.append({"study": study, "model": model, "store": (model, dataset, n, length),
                     "tokens": n * length * passes})

    probes = config["probes"]
    for m in probes["models"]:
        for dataset in (probes["dataset"], f"{probes['dataset']}.nopunct", probes["transfer_dataset"]):
            add("probes", m, dataset, probes["n_texts"], probes["max_tokens"])
        for n in probes["grid"]["n_texts"]:
            for length in probes["grid"]["max_tokens"]:
                add("probes", m, probes["dataset"], n, length)
    for study in ("norms", "geometry"):
        section = config[study]
        for m in section["models"]:
            add(study, m, section["dataset"], section["n_texts"], section["max_tokens"])
    lens = config["lens"]
    for m in lens["models"]:  # a pass per decoder; the unembedding is counted with the model below
        rows.append({"study": "lens", "model": m, "store": None,
                     "tokens": lens["n_texts"] * lens["max_tokens"] * len(lens["decoders"])})
    geometry = config["geometry"]
    for key, entry in config["training"].get("hub", {}).items():
        for _ in hub_revisions(entry):
            add("training (hub checkpoints)", key, geometry["dataset"], geometry["n_texts"], geometry["max_tokens"])
    df = pd.DataFrame(rows)
    # A store shared by two studies (same model, dataset, N, L) is extracted once; hub revisions are distinct.
    distinct = df[df["store"].isna() | ~df.duplicated("store") | (df["study"] == "training (hub checkpoints)")]
    return distinct.drop(columns="store").reset_index(drop=True)


def probe_fit_flops(config: Mapping[str, Any], sizes: Mapping[str, tuple[float, int, int]]) -> pd.DataFrame:
    """Upper bound on the logistic-probe FLOPs per model: every fit at its full epoch budget."""
    p = config["probes"]
    epochs = p["probe"].get("max_epochs", 100)
    train = 1 - p["test_fraction"]
    main_fits = 1 + 3 + 1 + 1 + 1 + len(p["stability_seeds"])  # raw, 3 torch conditions, position 0, nopunct, transfer, seeds
    rows = []
    for m in p["models"]:
        _, layers, width = sizes[m]
        classes = layers + 1
        cells = [(n, length) for n in p["grid"]["n_texts"] for length in p["grid"]["max_tokens"]
                 if (n, length) != (p["n_texts"], p["max_tokens"])]
        tokens = main_fits * p["n_texts"] * p["max_tokens"] + sum(n * length for n, length in cells)
        rows.append({"study": "probes (fits)", "model": m,
                     "flops": 6 * tokens * classes * train * width * classes * epochs})  # tokens x classes vectors
    return pd.DataFrame(rows)


def estimate(config: Mapping[str, Any], sizes: Mapping[str, tuple[float, int, int]] = PUBLISHED_SIZES,
             vocab: int = 50257) -> pd.DataFrame:
    """FLOPs per study: forward passes (2 x params x tokens; the lens adds an unembedding per layer)
    and the probe fits."""
    fwd = forward_jobs(config)
    params = fwd["model"].map(lambda m: sizes[m][0])
    unembed = fwd["model"].map(lambda m: 2 * (sizes[m][1] + 1) * sizes[m][2] * vocab)
    fwd["flops"] = 2 * params * fwd["tokens"] + (fwd["study"] == "lens") * unembed * fwd["tokens"]
    table = pd.concat([fwd, probe_fit_flops(config, sizes)], ignore_index=True)
    return table.groupby("study", sort=False).agg(tokens=("tokens", "sum"), flops=("flops", "sum")).reset_index()


def measure_cpu_flops(seconds: float = 5.0, threads: int | None = None) -> float:
    """Sustained float32 FLOP/s of this machine's CPU on a GPT-2-small-shaped forward pass."""
    import torch
    from transformers import GPT2Config, GPT2Model

    if threads:
        torch.set_num_threads(threads)
    model = GPT2Model(GPT2Config(n_layer=2, n_embd=768, n_head=12)).eval()
    n_params = sum(p.numel() for p in model.h.parameters())
    ids = torch.randint(0, 50257, (8, 128))
    tokens, start = 0, time.perf_counter()
    with torch.no_grad():
        while time.perf_counter() - start < seconds:
            model(ids)
            tokens += ids.numel()
    return 2 * n_params * tokens / (time.perf_counter() - start)


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+", help="config files, merged in order (config.yaml first)")
    args = parser.parse_args()
    config: dict[str, Any] = {}
    for path in args.configs:
        for key, value in yaml.safe_load(open(path)).items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    table = estimate(config)
    cpu = measure_cpu_flops()
    table["cpu_hours"] = table["flops"] / cpu / 3600
    table["gpu_hours"] = table["flops"] / GPU_FLOPS / 3600
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"total: {table['flops'].sum():.3g} FLOPs; measured CPU {cpu / 1e9:.1f} GFLOP/s -> "
          f"{table['cpu_hours'].sum():.0f} CPU hours; at an assumed {GPU_FLOPS / 1e12:.0f} TFLOP/s per GPU -> "
          f"{table['gpu_hours'].sum():.1f} GPU hours")


if __name__ == "__main__":
    main()
