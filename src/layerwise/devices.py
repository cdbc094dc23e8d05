"""The one device rule: `auto` is CUDA when torch sees a GPU, else the CPU; extraction, the lens and probes use it."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def pick_device(device: str = "auto") -> torch.device:
    """`auto` → `cuda` when present, else `cpu`; any other spelling is passed to `torch.device`."""
    import torch  # here, not at the top: the workflow imports this module when it parses

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
