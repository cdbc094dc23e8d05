"""Which training steps to keep, where each checkpoint lives, and Pythia's published revisions.

Steps are log-spaced (always including step 0) because hidden-state geometry changes fastest
early in training: the intrinsic-dimension peak and the onset of anisotropy happen in the first
few percent of steps, so a linear grid would spend nearly all checkpoints on the flat tail.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

PYTHIA_FINAL_STEP = 143_000
#: Every revision EleutherAI published for each Pythia model: step0, powers of two up to 512,
#: then every 1000 steps up to 143000 (154 revisions, named ``step{N}`` on the hub).
PYTHIA_STEPS: tuple[int, ...] = (0, *(2**k for k in range(10)),
                                 *range(1000, PYTHIA_FINAL_STEP + 1, 1000))

_STEP_DIR = re.compile(r"^step(\d+)$")
_REVISION_STEP = re.compile(r"(?:^|[-_])step(\d+)(?:$|[-_])")  # OLMo stage1-step1000-tokens5B, Pythia step1000


def _log_spaced_subset(candidates: Sequence[int], n: int) -> list[int]:
    """Pick ``n`` of the sorted ``candidates`` (which start at 0): 0, then log-spaced from the
    first positive candidate up to the last one, both ends included.

    Greedy: each pick aims for an equal log-ratio over the range still to cover, but never
    takes a candidate that would leave too few for the remaining picks, so the count is exact.
    """
    values = np.asarray(candidates, dtype=np.int64)
    if n >= len(values):
        return values.tolist()
    if n == 2:
        return [0, int(values[-1])]
    logs = np.log(values[1:].astype(np.float64))  # positive candidates only; 0 is always kept
    picks = [0]
    wanted = n - 1
    while len(picks) < wanted:
        left = wanted - len(picks)
        lo, hi = picks[-1] + 1, len(logs) - left
        target = logs[picks[-1]] + (logs[-1] - logs[picks[-1]]) / left
        k = int(np.clip(np.searchsorted(logs, target), lo, hi))
        if k > lo and abs(logs[k - 1] - target) <= abs(logs[k] - target):
            k -= 1
        picks.append(k)
    return [0, *(int(values[1 + i]) for i in picks)]


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"number of checkpoints must be an int, got {type(n).__name__}")
    if n < 2:
        raise ValueError(f"need at least 2 checkpoints (step 0 and the last step), got n={n}")


def log_spaced_steps(max_step: int, n: int) -> list[int]:
    """Return ``n`` sorted unique steps in ``[0, max_step]``: 0, then log-spaced from 1 to ``max_step``.

    When ``n > max_step + 1`` there are not enough integers, so every step is returned.
    """
    _check_count(n)
    if isinstance(max_step, bool) or not isinstance(max_step, (int, np.integer)):
        raise TypeError(f"max_step must be an int, got {type(max_step).__name__}")
    if max_step < 1:
        raise ValueError(f"max_step must be >= 1, got {max_step}")
    return _log_spaced_subset(range(max_step + 1), n)


def linear_steps(max_step: int, k: int) -> list[int]:
    """``k`` evenly spaced steps ``round(i * max_step / k)`` for i = 1..k (empty for k = 0): added to the
    log-spaced grid so that the part of training after an early peak has checkpoints too."""
    if k < 0:
        raise ValueError(f"number of evenly spaced checkpoints must be >= 0, got {k}")
    return sorted({int(round(i * max_step / k)) for i in range(1, k + 1)})


def pythia_checkpoint_steps(n: int, max_step: int = PYTHIA_FINAL_STEP) -> list[int]:
    """Return ``n`` published Pythia steps up to ``max_step``, log-spaced, with step 0 and ``max_step``.

    ``max_step`` must itself be a published step (e.g. 143000, or 512 for the early phase only).
    """
    _check_count(n)
    if max_step not in PYTHIA_STEPS or max_step == 0:
        raise ValueError(f"max_step={max_step} is not a published positive Pythia step")
    return _log_spaced_subset([s for s in PYTHIA_STEPS if s <= max_step], n)


def pythia_revision(step: int) -> str:
    """Hub revision name (``"step{N}"``) of a published Pythia checkpoint; rejects unpublished steps."""
    if step not in PYTHIA_STEPS:
        raise ValueError(f"step {step} is not a published Pythia revision "
                         "(published: 0, 1, 2, 4, ..., 512, then every 1000 up to 143000)")
    return f"step{int(step)}"


def hub_revisions(entry: Mapping[str, Any]) -> dict[int, str]:
    """Training step → hub revision of one `training.hub` entry, by step.

    `n_revisions: n` takes n log-spaced published Pythia steps (branches `step<N>`); `revisions: [...]` lists
    branch names that carry their step, as OLMo's do (`stage1-step1000-tokens5B`), so any suite of published
    checkpoints can be read without a formula for its names.
    """
    if "revisions" in entry:
        steps: dict[int, str] = {}
        for name in entry["revisions"]:
            found = _REVISION_STEP.search(name)
            if found is None:
                raise ValueError(f"hub revision {name!r} of {entry.get('id')!r} names no training step: "
                                 "expected 'step<N>' in it (e.g. stage1-step1000-tokens5B)")
            step = int(found.group(1))
            if step in steps:
                raise ValueError(f"hub revisions {steps[step]!r} and {name!r} of {entry.get('id')!r} are both "
                                 f"step {step}")
            steps[step] = name
        return dict(sorted(steps.items()))
    return {step: pythia_revision(step) for step in pythia_checkpoint_steps(entry["n_revisions"])}


def hub_checkpoint_models(hub: Mapping[str, Mapping[str, Any]],
                          models: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Model registry entries of the published checkpoints in config `training.hub`: `<key>@step<N>` for each
    of an entry's revisions (`hub_revisions`), the hub model `id` at that revision, displayed as `<key>`. An
    entry's `like: <model key>` copies that model's settings (kind, sizes, dtype, device_map), so that the
    checkpoints of a 7B model ask for the memory and GPUs the final model does."""
    models = models or {}
    registry: dict[str, dict[str, Any]] = {}
    for key, entry in hub.items():
        base: dict[str, Any] = {}
        if "like" in entry:
            if entry["like"] not in models:
                raise ValueError(f"training.hub.{key}.like = {entry['like']!r} is not a key of `models` "
                                 f"(known: {', '.join(sorted(models))})")
            base = {k: v for k, v in models[entry["like"]].items() if k not in ("revision", "display", "id")}
        for step, revision in hub_revisions(entry).items():
            registry[f"{key}@step{step}"] = {**base, "source": "hf", "id": entry["id"], "revision": revision,
                                             "display": key}
    return registry


def checkpoint_dir(out_dir: str | Path, step: int) -> Path:
    """Folder of the checkpoint after ``step`` optimiser updates: ``out_dir/step{N}``."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return Path(out_dir) / f"step{int(step)}"


def list_checkpoints(out_dir: str | Path) -> list[int]:
    """Steps of the complete checkpoints found in ``out_dir`` (sorted; temp folders are ignored)."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    found = (_STEP_DIR.match(p.name) for p in out.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def remove_stale_temporaries(out_dir: str | Path) -> list[Path]:
    """Delete the hidden temp folders a killed run left behind (`save_checkpoint` never got to rename
    them); called before training starts so that a re-run leaves nothing but complete checkpoints."""
    out = Path(out_dir)
    stale = sorted(out.glob(".step*.tmp")) if out.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def save_checkpoint(model: Any, tokenizer: Any, out_dir: str | Path, step: int,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Save a full Hugging Face model folder (config.json, model.safetensors, tokenizer files).

    Written to a hidden temp folder inside ``out_dir`` and renamed into place, so an interrupted
    run leaves either a complete ``step{N}`` folder or none (rename is atomic on one filesystem).
    ``metadata`` goes to ``training_state.json`` so analyses need not parse folder names.
    """
    from transformers.utils import logging as hf_logging  # here: the workflow imports this module as it parses

    final = checkpoint_dir(out_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one bar per checkpoint would flood the training log
    try:
        tmp.chmod(0o755)  # mkdtemp makes it owner-only; checkpoints are shared outputs
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        state = {"step": int(step), **(metadata or {})}
        (tmp / "training_state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bar_was_enabled:
            hf_logging.enable_progress_bar()
    logger.info("saved checkpoint %s", final)
    return final
