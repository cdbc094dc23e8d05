"""Scores of a layer probe as tidy tables: one row per run, and the per-layer confusion matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score


def _labels(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, ...]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty 1-D arrays of equal length, "
                         f"got shapes {y_true.shape} and {y_pred.shape}")
    labels = np.union1d(y_true, y_pred) if labels is None else np.asarray(labels)
    unknown = np.setdiff1d(np.union1d(y_true, y_pred), labels)
    if unknown.size:
        raise ValueError(f"labels {unknown.tolist()} occur in y_true/y_pred but not in `labels`")
    return y_true, y_pred, labels


def score_table(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray | None = None) -> pd.DataFrame:
    """One row: accuracy, macro_f1, chance (= 1 / number of layers), n_vectors, n_layers.

    Pass `labels` = every layer index so that chance and macro-F1 count layers the probe never predicts.
    """
    y_true, y_pred, labels = _labels(y_true, y_pred, labels)
    return pd.DataFrame([{
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "chance": 1.0 / labels.size,
        "n_vectors": int(y_true.size),
        "n_layers": int(labels.size),
    }])


def confusion_table(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray | None = None) -> pd.DataFrame:
    """Long table: true_layer, predicted_layer, count, fraction (of the true layer's vectors)."""
    y_true, y_pred, labels = _labels(y_true, y_pred, labels)
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    true_layer, predicted_layer = np.meshgrid(labels, labels, indexing="ij")
    return pd.DataFrame({"true_layer": true_layer.ravel(), "predicted_layer": predicted_layer.ravel(),
                         "count": counts.ravel(), "fraction": fractions.ravel()})
