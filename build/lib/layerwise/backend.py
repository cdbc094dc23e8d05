"""Array-module dispatch: the geometry kernels are written once against ``xp``.

``xp`` is NumPy or CuPy. Writing every array operation as ``xp.<op>`` keeps a single
implementation, so the NumPy tests exercise exactly the code that runs on a GPU.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "numpy", "cupy")


def _cupy_with_device() -> ModuleType | None:
    """CuPy if it imports and sees at least one CUDA device, else None."""
    try:
        cupy = importlib.import_module("cupy")
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception as err:  # ImportError, or CUDA driver/runtime errors from getDeviceCount
        logger.debug("CuPy unusable: %s", err)
    return None


def get_array_module(backend: str = "auto") -> ModuleType:
    """Return ``numpy`` or ``cupy`` for ``backend`` in {"auto", "numpy", "cupy"}.

    "auto" picks CuPy when it is importable and a CUDA device is present, else NumPy;
    "cupy" fails loudly rather than silently falling back, so a GPU run is never a CPU run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "numpy":
        return np
    cupy = _cupy_with_device()
    if cupy is not None:
        return cupy
    if backend == "cupy":
        raise RuntimeError(
            "backend='cupy' requested but CuPy is not importable or no CUDA device is visible; "
            "install the 'gpu' extra (cupy-cuda12x) on a GPU machine or use backend='numpy'"
        )
    return np


def asnumpy(x: Any) -> np.ndarray:
    """Host copy of ``x`` (a no-op view for NumPy arrays)."""
    if isinstance(x, np.ndarray):
        return x
    get = getattr(x, "get", None)  # cupy.ndarray.get() copies device -> host
    return get() if callable(get) else np.asarray(x)
