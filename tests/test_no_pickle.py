"""No pickle is ever loaded from outside: arrays via `allow_pickle=False`, weights via safetensors, tables via
parquet/CSV. A static check over everything the workflow runs, so a new loader cannot slip one in."""

from __future__ import annotations

import re

from tests.helpers import REPO

UNSAFE = {
    r"\bpickle\.loads?\(": "pickle.load",
    r"\bread_pickle\(": "pandas.read_pickle",
    r"allow_pickle\s*=\s*True": "numpy allow_pickle=True",
    r"\bjoblib\.load\(": "joblib.load",
    r"\btorch\.load\((?![^)]*weights_only\s*=\s*True)": "torch.load without weights_only=True",
    r"use_safetensors\s*=\s*False": "from_pretrained(use_safetensors=False)",
}


def test_no_pickle_loader_in_the_library_or_scripts():
    found = []
    for path in sorted([*(REPO / "src").rglob("*.py"), *(REPO / "scripts").glob("*.py"), *(REPO / "rules").glob("*.smk")]):
        text = path.read_text()
        for pattern, what in UNSAFE.items():
            found += [f"{path.relative_to(REPO)}: {what}" for _ in re.finditer(pattern, text)]
    assert found == []


def test_the_check_sees_each_unsafe_loader():
    samples = ["pickle.load(f)", "pd.read_pickle(p)", "np.load(p, allow_pickle=True)", "joblib.load(p)",
               "torch.load(p)", "M.from_pretrained(p, use_safetensors=False)"]
    for sample, pattern in zip(samples, UNSAFE):
        assert re.search(pattern, sample), sample
    torch_load = next(pattern for pattern, what in UNSAFE.items() if what.startswith("torch.load"))
    assert not re.search(torch_load, "torch.load(p, weights_only=True)")
