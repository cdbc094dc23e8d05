"""The one device rule: `auto` is CUDA when torch sees a GPU, else the CPU; extraction, the lens and probes use it."""
from __future__ import annotations

import torch


def pick_device(device: str = "auto") -> torch.device:
    """`auto` → `cuda` when present, else `cpu`; any other spelling is passed to `torch.device`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
