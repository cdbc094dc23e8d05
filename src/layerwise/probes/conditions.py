"""The study's conditions, each one probe fit on transformed features, reported the same way.

A condition is a name and a feature/label transformation; every condition shares the text-level split,
the standardisation on the train split and the probe settings, so their accuracies compare directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from layerwise.probes.attribution import attribution_table, cumulative_contributions, dims_for_share, top_dimensions
from layerwise.probes.controls import matched_random_vectors, normalize_rows, shuffled_labels
from layerwise.probes.features import LayerDataset
from layerwise.probes.masks import frequent_top_dimensions, mask_ablation
from layerwise.probes.metrics import confusion_table, score_table
from layerwise.probes.split import split_by_text
from layerwise.probes.training import ProbeRun, fit_probe, make_probe

# Conditions that re-train on transformed training data ("raw" is the reference).
CONDITIONS = ("raw", "normalised", "random_trained", "shuffled_labels", "tree")


def split(data: LayerDataset, test_fraction: float, seed: int) -> tuple[LayerDataset, LayerDataset]:
    train, test = split_by_text(data.text_ids, test_fraction, seed)
    return data.subset(train), data.subset(test)


def run_condition(condition: str, train: LayerDataset, test: LayerDataset, *, seed: int,
                  probe_params: dict[str, Any], tree_params: dict[str, Any]) -> ProbeRun:
    """Fit the probe of `condition`; the test split is transformed the same way as the train split."""
    X_train, y_train, X_test, y_test = train.X, train.y, test.X, test.y
    kind, params = "logistic", probe_params
    if condition == "normalised":
        X_train, X_test = normalize_rows(X_train), normalize_rows(X_test)
    elif condition == "random_trained":
        X_train = matched_random_vectors(X_train, y_train, seed)
        X_test = matched_random_vectors(X_test, y_test, seed + 1)
    elif condition == "shuffled_labels":
        # Both splits: with only y_train shuffled, test labels still follow the vectors' layer
        # clusters and one run can miss chance by several points.
        y_train, y_test = shuffled_labels(y_train, seed), shuffled_labels(y_test, seed + 1)
    elif condition == "tree":
        kind, params = "tree", tree_params
    elif condition != "raw":
        raise ValueError(f"unknown condition {condition!r}; choose one of {CONDITIONS}")
    return fit_probe(X_train, y_train, X_test, y_test, make_probe(kind, seed, **params))


def scores(run: ProbeRun, labels: np.ndarray, **columns: Any) -> pd.DataFrame:
    return score_table(run.y_test, run.y_pred, labels).assign(**columns)


def raw_probe_analyses(run: ProbeRun, test: LayerDataset, labels: np.ndarray, *, seed: int, mask_k: int,
                       top_n: int) -> dict[str, pd.DataFrame]:
    """Everything read off the reference probe: attribution, masks, random vectors through the trained probe."""
    labels = np.asarray(labels)
    attribution = attribution_table(run.estimator.coef_, run.estimator.classes_, run.X_test, run.y_test)
    frequent = frequent_top_dimensions(attribution, mask_k, top_n)
    masks = mask_ablation(run, frequent["dim"].tolist())
    random_test = matched_random_vectors(test.X, test.y, seed + 1)
    random_accuracy = float(np.mean(run.predict(random_test) == test.y))
    return {
        "confusion": confusion_table(run.y_test, run.y_pred, labels),
        "history": run.estimator.history_,
        "attribution": attribution,
        "top": top_dimensions(attribution, top_n),
        "cumulative": cumulative_contributions(attribution),
        "dims_for_share": dims_for_share(attribution),
        "masks": masks.assign(chance=1.0 / labels.size),
        "random_through_trained": pd.DataFrame([{"accuracy": random_accuracy, "chance": 1.0 / labels.size}]),
    }


def transfer_scores(train_a: LayerDataset, test_a: LayerDataset, train_b: LayerDataset, test_b: LayerDataset,
                    labels: np.ndarray, *, seed: int, probe_params: dict[str, Any], names: tuple[str, str]
                    ) -> pd.DataFrame:
    """Train on A, test on A and B; train on A+B, test on each (the post's IMDB → AG News transfer)."""
    a, b = names
    only_a = fit_probe(train_a.X, train_a.y, test_a.X, test_a.y, make_probe("logistic", seed, **probe_params))
    mix = fit_probe(np.concatenate([train_a.X, train_b.X]), np.concatenate([train_a.y, train_b.y]),
                    test_a.X, test_a.y, make_probe("logistic", seed, **probe_params))
    rows = []
    for trained, run in ((a, only_a), (f"{a}+{b}", mix)):
        for tested, data in ((a, test_a), (b, test_b)):
            pred = run.predict(data.X)
            rows.append(score_table(data.y, pred, labels).assign(train=trained, test=tested))
    return pd.concat(rows, ignore_index=True)
