"""Hidden states of a saved checkpoint on fixed token chunks (no store: small models, small inputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from layerwise.extract import forward_hidden_states
from layerwise.models import load_model


def checkpoint_hidden_states(folder: str | Path, chunks: np.ndarray, *, include_position0: bool = False,
                             device: str = "auto", batch_size: int = 64) -> dict[int, np.ndarray]:
    """{layer: [n_chunks·positions, width]} for layers 0..n (pre-final-norm, as in the stores)."""
    card = {"key": Path(folder).name, "source": "local", "folder": str(folder), "gguf_file": None,
            "model_id": str(folder), "revision": "local", "spec": {}}
    loaded = load_model(card, device=device)
    start = 0 if include_position0 else 1
    per_layer: dict[int, list[np.ndarray]] = {}
    for lo in range(0, len(chunks), batch_size):
        ids = torch.as_tensor(chunks[lo:lo + batch_size], dtype=torch.long, device=loaded.device)
        hidden, _ = forward_hidden_states(loaded, ids, torch.ones_like(ids))
        for layer, h in enumerate(hidden):
            per_layer.setdefault(layer, []).append(h[:, start:].reshape(-1, h.shape[-1]).float().cpu().numpy())
    return {layer: np.concatenate(parts) for layer, parts in per_layer.items()}
