"""Which activation stores need a forward pass, which are slices of a larger one, and how much memory
an extraction needs. Pure functions over the config's numbers: the workflow calls them at parse time.

A causal decoder's state at position t depends on tokens 0..t only, and texts are sampled in one
seeded order, so the store of the first n texts truncated to l tokens is a sub-array of the store of
the first N ≥ n texts truncated to L ≥ l tokens. A bidirectional encoder's states depend on the whole
(truncated) text, so each of its (n, l) cells needs its own forward pass.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

# Vocabulary size assumed when a registry entry does not say (the embedding table's share of the weights).
ASSUMED_VOCAB = 65_536
# Sizes assumed for a registry entry that declares none (over-estimating memory is the safe side).
ASSUMED_LAYERS, ASSUMED_WIDTH = 32, 1024
# Interpreter, torch, transformers and the dataset table being sampled, before any weights. Measured
# here (Snakemake benchmark max_rss): SmolLM2 on IMDB N=1000 × L=30 peaked at 2611 MB, on enwik8
# 168 × 128 at 2280 MB, MiniLM on IMDB at 954 MB; 1300 MB keeps every one of them under its estimate.
BASE_MB = 1300


@dataclass(frozen=True, order=True)
class Cell:
    """One activation store: model × dataset × (first n texts, first l tokens) of the seeded order."""

    model: str
    dataset: str
    n: int
    length: int
    seed: int

    @property
    def path(self) -> str:
        return f"{self.model}/{self.dataset}/n{self.n}_l{self.length}_s{self.seed}"


def declared_kind(spec: Mapping[str, Any]) -> str | None:
    """'decoder' or 'encoder' from the registry entry alone (its `kind`, or a random model's
    architecture); None when only the loaded model could tell, and then nothing is sliced."""
    if "kind" in spec:
        return str(spec["kind"])
    if spec.get("source") == "random":
        from layerwise.resources.models import random_kind

        return random_kind(str(spec.get("architecture", "")))
    return None


def requested_cells(config: Mapping[str, Any]) -> list[Cell]:
    """Every activation store the studies read, from the validated config (the cells their rules ask for)."""
    seed, cells = int(config["seed"]), []
    for section in ("norms", "geometry"):
        sec = config[section]
        cells += [Cell(m, sec["dataset"], sec["n_texts"], sec["max_tokens"], seed) for m in sec["models"]]
    pr = config["probes"]
    variant_n = variant_n_texts(pr)
    for m in pr["models"]:
        for dataset in (pr["dataset"], pr["transfer_dataset"]):
            cells += [Cell(m, dataset, n, pr["max_tokens"], seed) for n in {pr["n_texts"], variant_n}]
        for dataset in (f"{pr['dataset']}.nopunct", f"{pr['transfer_dataset']}.nopunct"):
            cells.append(Cell(m, dataset, variant_n, pr["max_tokens"], seed))
        cells += [Cell(m, pr["dataset"], n, l, seed) for n in pr["grid"]["n_texts"] for l in pr["grid"]["max_tokens"]]
    return cells


def variant_n_texts(probes: Mapping[str, Any]) -> int:
    """Study 1's size for the additions beyond the post (`probes.variant_n_texts`, default `n_texts`).

    Larger than `n_texts` is refused: the additions are compared with the main probe, never fitted on more.
    """
    n = probes.get("variant_n_texts") or probes["n_texts"]
    if n > probes["n_texts"]:
        raise ValueError(f"config 'probes.variant_n_texts' ({n}) must be at most 'probes.n_texts' ({probes['n_texts']})")
    return int(n)


def declared_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the registry says of a model that the slicing plan and the memory estimates rely on
    (kind, n_layers, width when given); the extraction job checks it against the loaded model."""
    return {key: spec[key] for key in ("n_layers", "width") if key in spec} | {"kind": declared_kind(spec)}


def declared_sizes(spec: Mapping[str, Any]) -> dict[str, int]:
    """(n_layers, width) for memory estimates; undeclared sizes are assumed large (a 1 GB-class model)."""
    return {"n_layers": int(spec.get("n_layers", ASSUMED_LAYERS)), "width": int(spec.get("width", ASSUMED_WIDTH))}


def slice_sources(cells: Iterable[Cell], kinds: Mapping[str, str | None]) -> dict[Cell, Cell]:
    """Map every decoder cell that can be cut from a larger one to that larger store.

    Per (model, dataset, seed), the source is the cell with the largest n and the largest l; when no
    requested cell has both, that cell is extracted (one forward pass covering all) and every
    requested cell becomes a slice. Encoder cells, and models of unknown kind, map to nothing.
    """
    groups: dict[tuple[str, str, int], set[Cell]] = defaultdict(set)
    for cell in cells:
        if kinds.get(cell.model) == "decoder":
            groups[(cell.model, cell.dataset, cell.seed)].add(cell)
    plan: dict[Cell, Cell] = {}
    for (model, dataset, seed), group in groups.items():
        source = Cell(model, dataset, max(c.n for c in group), max(c.length for c in group), seed)
        plan.update({cell: source for cell in group if cell != source})
    return plan


def weight_bytes(n_layers: int, width: int, vocab: int = ASSUMED_VOCAB, param_bytes: int = 4) -> int:
    """Weights of a standard transformer, `param_bytes` per parameter (4: float32, 2: bfloat16/float16):
    12·W² per block (attention 4W², MLP 8W²) + embeddings."""
    return param_bytes * (12 * n_layers * width * width + vocab * width)


def declared_parameters(spec: Mapping[str, Any]) -> int:
    """The entry's `n_parameters` when it declares one (modern models with grouped queries, wide MLPs and
    128k vocabularies are not 12·W² per block), else the standard-transformer estimate from its sizes."""
    if "n_parameters" in spec:
        return int(float(spec["n_parameters"]))
    sizes = declared_sizes(spec)
    return 12 * sizes["n_layers"] * sizes["width"] ** 2 + ASSUMED_VOCAB * sizes["width"]


def declared_weight_bytes(spec: Mapping[str, Any], device: str) -> int:
    """Bytes of the entry's weights in the dtype it will run in on `device` (`models.<key>.dtype`)."""
    from layerwise.resources.models import dtype_bytes, resolved_dtype

    return declared_parameters(spec) * dtype_bytes(resolved_dtype(str(spec.get("dtype", "auto")), device))


# Memory a model needs on its GPUs beyond its weights (CUDA context, activations of a batch, the lens's
# positions x vocabulary chunks, allocator slack), as a fraction of the weights: not measured here (no GPU),
# chosen from the usual rule of thumb for inference (weights x 1.2).
GPU_OVERHEAD = 0.2


def gpus_needed(n_parameters: float, dtype: str, gpu_memory_gb: float, overhead: float = GPU_OVERHEAD) -> int:
    """How many GPUs of `gpu_memory_gb` GB a model of `n_parameters` in `dtype` needs for inference:
    its weights times (1 + `overhead`), spread by accelerate's device_map. E.g. 7e9 in bfloat16 (16.8 GB)
    fits one 40 GB GPU; 70e9 (168 GB) needs five 40 GB GPUs or three 80 GB ones."""
    from layerwise.resources.models import dtype_bytes

    if gpu_memory_gb <= 0:
        raise ValueError(f"gpu_memory_gb must be positive, got {gpu_memory_gb}")
    need = float(n_parameters) * dtype_bytes(dtype) * (1 + overhead)
    return max(1, int(np.ceil(need / (gpu_memory_gb * 1e9))))


def host_weight_bytes(spec: Mapping[str, Any], device: str) -> int:
    """Host RAM the weights take in a job: twice the weights (loading keeps a transient copy, e.g. GGUF
    de-quantisation), or once when accelerate streams them to the GPUs (`device_map` on a GPU)."""
    sharded = spec.get("device_map") is not None and str(device).startswith("cuda")
    return (1 if sharded else 2) * declared_weight_bytes(spec, device)


def extraction_mem_mb(*, n_texts: int, max_tokens: int, n_layers: int, width: int, dtype: str,
                      max_batch_tokens: int, vocab: int = ASSUMED_VOCAB, weights: int | None = None) -> int:
    """Peak resident memory of one extraction job, in MB (a `mem_mb` resource).

    Weights twice (loading keeps a transient copy, e.g. GGUF dequantisation), one batch of float32
    hidden states from the forward pass plus two batches in the store dtype (the one being cast and
    the one queued for the writer thread), MLP temporaries, and the token table; the store itself
    goes to disk through memory maps and is not resident. `weights`: the host bytes of the weights when
    known from the entry (`host_weight_bytes`: its dtype and sharding), else float32 twice.
    """
    batch_tokens = max(max_batch_tokens, max_tokens)  # a text longer than the budget is a batch alone
    states = n_layers + 2  # embeddings, blocks, final norm
    forward = batch_tokens * states * width * 4 + batch_tokens * 8 * width * 4
    stored = 2 * batch_tokens * states * width * np.dtype(dtype).itemsize
    table = n_texts * max_tokens * 200  # token table rows incl. token strings
    weights = 2 * weight_bytes(n_layers, width, vocab) if weights is None else weights
    total = BASE_MB * 2**20 + weights + forward + stored + table
    return int(np.ceil(total / 2**20))


def slice_mem_mb(*, n_layers: int, width: int, dtype: str, chunk_rows: int) -> int:
    """Peak memory of a slicing job: the dataset table and tokenizer (no weights are loaded) and one
    chunk of rows of every layer, read and written."""
    chunk = 2 * chunk_rows * (n_layers + 2) * width * np.dtype(dtype).itemsize
    return int(np.ceil((BASE_MB * 2**20 + chunk) / 2**20))


def analysis_mem_mb(*, n_texts: int, max_tokens: int, n_layers: int, width: int, copies: float) -> int:
    """Peak memory of an analysis job over one store, in MB (a `mem_mb` resource): the base process plus
    `copies` float32 matrices of every layer's vectors (e.g. 3.5 for a probe fit: its training matrix, its
    whitened copy, the test rows and the solver's temporaries; 1 for per-layer geometry that holds a layer at a time).

    The rule states its own `copies`; the benchmark files of a run show whether the estimate held."""
    vectors = n_texts * max_tokens * (n_layers + 1) * width * 4
    return int(np.ceil((BASE_MB * 2**20 + copies * vectors) / 2**20))
