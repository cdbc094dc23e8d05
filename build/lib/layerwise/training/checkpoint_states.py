"""Hidden states of a saved checkpoint on fixed token chunks (no store: small models, small inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from layerwise.activations.extract import forward_hidden_states
from layerwise.resources.models import load_model
from layerwise.training.runs import attention_mask, is_bidirectional


def checkpoint_hidden_states(folder: str | Path, chunks: np.ndarray, *, include_position0: bool = False,
                             device: str = "auto", batch_size: int = 64
                             ) -> tuple[dict[int, np.ndarray], np.ndarray | None]:
    """({layer: [n_chunks·positions, width]} for layers 0..n pre-final-norm, as in the stores; the
    post-final-norm states, or None for a model without a final norm).

    The checkpoint runs as it was trained: a matched encoder (a decoder block trained on masked-LM)
    with its bidirectional mask, read from the folder's ``training_state.json``.
    """
    state = json.loads((Path(folder) / "training_state.json").read_text())
    bidirectional = is_bidirectional(state["kind"], state["config"]["encoder_block"])
    card = {"key": Path(folder).name, "source": "local", "folder": str(folder), "gguf_file": None,
            "model_id": str(folder), "revision": "local", "spec": {}}
    loaded = load_model(card, device=device)
    start = 0 if include_position0 else 1
    per_layer: dict[int, list[np.ndarray]] = {}
    final: list[np.ndarray] = []

    def rows(h: torch.Tensor) -> np.ndarray:
        return h[:, start:].reshape(-1, h.shape[-1]).float().cpu().numpy()

    for lo in range(0, len(chunks), batch_size):
        ids = torch.as_tensor(chunks[lo:lo + batch_size], dtype=torch.long, device=loaded.device)
        hidden, post = forward_hidden_states(loaded, ids, attention_mask(ids, bidirectional).to(loaded.device))
        for layer, h in enumerate(hidden):
            per_layer.setdefault(layer, []).append(rows(h))
        if post is not None:
            final.append(rows(post))
    layers = {layer: np.concatenate(parts) for layer, parts in per_layer.items()}
    return layers, (np.concatenate(final) if final else None)
