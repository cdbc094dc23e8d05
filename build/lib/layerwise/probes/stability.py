"""Does the probe tell the same story with another seed? Accuracy spread and overlap of top dimensions.

Attributions are read on the training split (as everywhere in the study). A seed draws a new text split
(and orders Adam's mini-batches); L-BFGS itself starts from zero and is
deterministic, so the spread measured here is that of the data split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from layerwise.probes.attribution import attribution_table, top_dimensions
from layerwise.probes.masks import frequent_top_dimensions
from layerwise.probes.metrics import score_table
from layerwise.probes.split import split_by_text
from layerwise.probes.training import fit_probe, make_probe


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; two empty sets are identical (1.0)."""
    return len(a & b) / len(a | b) if a | b else 1.0


@dataclass(frozen=True)
class StabilityResult:
    """`runs`: seed, accuracy, macro_f1, frequent_dims. `overlap`: seed_a, seed_b, scope, layer, jaccard,
    where scope "top_per_layer" compares each layer's top-n set and "frequent" the k most frequent dims."""

    runs: pd.DataFrame
    overlap: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """One row: n_seeds, mean and sample std of accuracy and macro-F1, mean Jaccard per scope."""
        by_scope = self.overlap.groupby("scope")["jaccard"].mean()
        return pd.DataFrame([{
            "n_seeds": len(self.runs),
            "accuracy_mean": self.runs["accuracy"].mean(), "accuracy_std": self.runs["accuracy"].std(ddof=1),
            "macro_f1_mean": self.runs["macro_f1"].mean(), "macro_f1_std": self.runs["macro_f1"].std(ddof=1),
            "top_jaccard_mean": by_scope.get("top_per_layer", np.nan),
            "frequent_jaccard_mean": by_scope.get("frequent", np.nan),
        }])


def seed_stability(X: np.ndarray, y: np.ndarray, text_ids: np.ndarray, seeds: Sequence[int] = (0, 1, 2, 3, 4), *,
                   test_fraction: float = 0.2, top_n: int = 8, k_frequent: int = 4,
                   probe_params: dict[str, Any] | None = None) -> StabilityResult:
    """Fit the logistic probe once per seed (new split each time) and compare the results."""
    if len(set(seeds)) < 2:
        raise ValueError(f"need at least two distinct seeds, got {list(seeds)}")
    labels = np.unique(y)
    runs, tops, frequent = [], {}, {}
    for seed in seeds:
        train, test = split_by_text(text_ids, test_fraction, seed)
        run = fit_probe(X[train], y[train], X[test], y[test], make_probe("logistic", seed, **(probe_params or {})))
        table = attribution_table(run.estimator.coef_, run.estimator.classes_, run.X_train, run.y_train)
        top = top_dimensions(table[table["variant"] == "input_x_weight"], top_n)
        tops[seed] = {layer: set(group["dim"]) for layer, group in top.groupby("layer")}
        frequent[seed] = set(frequent_top_dimensions(table, k_frequent, top_n)["dim"])
        scores = score_table(run.y_test, run.y_pred, labels).iloc[0]
        runs.append({"seed": seed, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                     "frequent_dims": ",".join(str(d) for d in sorted(frequent[seed]))})
    overlap = []
    for a, b in combinations(seeds, 2):
        overlap += [{"seed_a": a, "seed_b": b, "scope": "top_per_layer", "layer": layer,
                     "jaccard": jaccard(tops[a][layer], tops[b][layer])} for layer in labels]
        overlap.append({"seed_a": a, "seed_b": b, "scope": "frequent", "layer": pd.NA,
                        "jaccard": jaccard(frequent[a], frequent[b])})
    overlap_table = pd.DataFrame(overlap).astype({"layer": "Int64"})
    return StabilityResult(pd.DataFrame(runs), overlap_table)
