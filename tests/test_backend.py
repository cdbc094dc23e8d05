"""Array-module dispatch: NumPy/CuPy selection and host copies."""

import importlib
import types

import numpy as np
import pytest

from layerwise import backend


def _fake_cupy(device_count: int) -> types.ModuleType:
    """A stand-in for cupy exposing only what the dispatcher looks at."""
    fake = types.ModuleType("cupy")
    runtime = types.SimpleNamespace(getDeviceCount=lambda: device_count)
    fake.cuda = types.SimpleNamespace(runtime=runtime)
    return fake


def _install(monkeypatch: pytest.MonkeyPatch, cupy: types.ModuleType | None) -> None:
    real_import = importlib.import_module

    def fake_import(name: str, *args, **kwargs):
        if name == "cupy":
            if cupy is None:
                raise ImportError("No module named 'cupy'")
            return cupy
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(backend.importlib, "import_module", fake_import)


def test_numpy_backend_is_numpy():
    assert backend.get_array_module("numpy") is np


def test_auto_falls_back_to_numpy_without_cupy(monkeypatch):
    _install(monkeypatch, None)
    assert backend.get_array_module("auto") is np
    assert backend.get_array_module() is np


def test_auto_falls_back_to_numpy_without_a_device(monkeypatch):
    _install(monkeypatch, _fake_cupy(0))
    assert backend.get_array_module("auto") is np


def test_auto_and_cupy_pick_cupy_with_a_device(monkeypatch):
    fake = _fake_cupy(1)
    _install(monkeypatch, fake)
    assert backend.get_array_module("auto") is fake
    assert backend.get_array_module("cupy") is fake


def test_cupy_without_cupy_is_a_clear_error(monkeypatch):
    _install(monkeypatch, None)
    with pytest.raises(RuntimeError, match="CuPy is not importable or no CUDA device"):
        backend.get_array_module("cupy")


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="unknown backend 'torch'"):
        backend.get_array_module("torch")


def test_asnumpy():
    x = np.arange(3.0)
    assert backend.asnumpy(x) is x
    np.testing.assert_array_equal(backend.asnumpy([1, 2]), np.array([1, 2]))

    class DeviceArray:  # cupy.ndarray copies to host with .get()
        def get(self):
            return np.array([7.0])

    np.testing.assert_array_equal(backend.asnumpy(DeviceArray()), np.array([7.0]))
