"""Planted tables shared by the narrative tests: the lens summary and changes as the workflow writes them
(with the "final" row a reader must ignore), and the paper's own macro names with the CSV round trip of the
figure scripts."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from layerwise.narrative.lens import lens_macros

from tests.helpers import REPO


# =========================================================================== study 2: logit lens

FINAL = {"agreement": 1.0, "kl_final": 0.0, "kl_input": 99.0, "log10_input_rank": 5.0}


def _depth(label: str) -> float:
    block, _, part = label.partition(".")
    return float(block) - (0.5 if part == "attn" else 0.0)


def lens_summary(model: str, decoder: str, agreement: list[float], kl_final: list[float], input_rank: list[float],
                 *, labels: list[str] | None = None, n_layers: int | None = None, n_texts: int = 7,
                 n_tokens: int = 300, position0: bool = False, seed: int = 0) -> pd.DataFrame:
    """One model x decoder of `summarize_lens` output (one value per row label) plus the "final" row, which must
    be ignored: there agreement is 1 and the input rank 10^5, so a reader of it finds an answer at "final".
    KL(input||.) is 20 + index (a reader of the wrong metric quotes 20-odd nats). Intervals are mean -/+ 0.25.
    n_tokens: `n_tokens` + index for KL(final||.), 1000 more for every other metric. Rows are shuffled."""
    labels = labels or [str(i) for i in range(len(agreement))]
    n_layers = len(labels) - 1 if n_layers is None else n_layers
    kl_input = [20.0 + i for i in range(len(labels))]
    rows = []
    for metric, values in (("agreement", agreement), ("kl_final", kl_final), ("kl_input", kl_input),
                           ("log10_input_rank", input_rank)):
        assert len(values) == len(labels)
        for i, (label, v) in enumerate(zip([*labels, "final"], [*values, FINAL[metric]])):
            rows.append({"model": model, "decoder": decoder, "layer": label,
                         "depth": n_layers + 1.0 if label == "final" else _depth(label), "metric": metric,
                         "mean": v, "ci_low": v - 0.25, "ci_high": v + 0.25, "n_texts": n_texts,
                         "n_tokens": n_tokens + i + (0 if metric == "kl_final" else 1000), "n_layers": n_layers,
                         "include_position0": position0})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def lens_changes(model: str, decoder: str, kf: tuple[float, float, float, float],
                 ki: tuple[float, float, float, float], to_layer: str = "1") -> pd.DataFrame:
    """`layer_change` rows from the input row "0" to `to_layer`: (mean_from, mean_to, ci_low, ci_high) of
    KL(final||.) and KL(input||.); change = to - from. KL(input||.) comes first (the lookup is by metric)."""
    return pd.DataFrame([{"model": model, "decoder": decoder, "metric": metric, "from_layer": "0",
                          "to_layer": to_layer, "mean_from": a, "mean_to": b, "change": b - a, "ci_low": lo,
                          "ci_high": hi, "n_texts": 7, "n_tokens": 300, "include_position0": False}
                         for metric, (a, b, lo, hi) in (("kl_input", ki), ("kl_final", kf))])


def run_lens(summary: pd.DataFrame, changes: pd.DataFrame, **kwargs) -> dict:
    options = {"heatmaps": {"a": "lens/a/{value}.window.pdf"}, "model_names": {"a": "G_2"}, "example": "plasma",
               "window": (-14, None), "window_layer_step": 1, "dataset": "imdb", "max_tokens": 32, **kwargs}
    return lens_macros(summary, changes, **options)


SECTIONS = REPO / "paper" / "sections"


def paper_macros(section: str, prefix: str) -> set[str]:
    """The macro names a section of the paper uses (each must be defined, or LaTeX stops)."""
    return set(re.findall(rf"\\({prefix}[A-Za-z]+)", (SECTIONS / f"{section}.tex").read_text()))


def read_back(table: pd.DataFrame, tmp_path: Path, name: str, **kwargs) -> pd.DataFrame:
    """A CSV round trip, as the workflow reads every table it narrates."""
    path = tmp_path / f"{name}.csv"
    table.to_csv(path, index=False)
    return pd.read_csv(path, **kwargs)
