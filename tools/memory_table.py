"""What each model of a config asks a job for, as the workflow's rules compute it (layerwise.activations.plan):
parameters, the dtype it runs in, its weights, the GPUs its jobs request and the host memory of its largest
extraction and of a lens job. The device is given, not detected, so a GPU run's table can be printed anywhere:

    python tools/memory_table.py configs/modern.yaml --device cuda
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from layerwise.resources.models import resolved_dtype  # noqa: E402
from layerwise.activations.plan import (BASE_MB, declared_parameters, declared_sizes, extraction_mem_mb,  # noqa: E402
                                  gpus_needed, host_weight_bytes)

LENS_EXTRA_MB = 4000  # rules/lens.smk: lens_dataset's working memory beyond the weights


def table(config: dict, device: str, gpu_memory_gb: float) -> list[dict]:
    defaults = yaml.safe_load((REPO / "config.yaml").read_text())
    batch = config.get("extraction", {}).get("max_batch_tokens", defaults["extraction"]["max_batch_tokens"])
    rows = []
    for key, spec in config["models"].items():
        cells = [(config[s]["n_texts"], config[s]["max_tokens"]) for s in ("norms", "probes", "lens", "geometry")
                 if key in config.get(s, {}).get("models", [])]
        n, length = max(cells, key=lambda c: c[0] * c[1]) if cells else (1000, 64)
        dtype = resolved_dtype(str(spec.get("dtype", "auto")), device)
        params = declared_parameters(spec)
        sharded = spec.get("device_map") is not None and device.startswith("cuda")
        rows.append({
            "model": key, "parameters": f"{params / 1e9:.2f}B", "dtype": dtype,
            "weights_gb": round(params * (4 if dtype == "float32" else 2) / 1e9, 1),
            "gpus": gpus_needed(params, dtype, gpu_memory_gb) if sharded else 1,
            "extract_mem_mb": extraction_mem_mb(n_texts=n, max_tokens=length, dtype="float16", max_batch_tokens=batch,
                                                weights=host_weight_bytes(spec, device), **declared_sizes(spec)),
            "lens_mem_mb": int(BASE_MB + host_weight_bytes(spec, device) / 2**20 + LENS_EXTRA_MB),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--gpu-memory-gb", type=float, default=None, help="default: the config's gpu_memory_gb, else 40")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    gpu_gb = args.gpu_memory_gb or config.get("gpu_memory_gb", 40)
    rows = table(config, args.device, gpu_gb)
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print(f"# {args.config} on {args.device} ({gpu_gb:g} GB GPUs)")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
