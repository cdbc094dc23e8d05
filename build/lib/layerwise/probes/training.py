"""One probe fit, as every condition of the study does it: standardise on train, fit, predict test.

Standardisation has scikit-learn's `StandardScaler` semantics, fitted on the training vectors only
(population variance, constant dimensions left unscaled instead of divided by zero), and a fitted
`StandardScaler` is kept for `predict`. After it, 0 in a dimension means "the training mean", which is
what masking relies on. The statistics are accumulated in float64 block by block and the matrices are
standardised in place when `overwrite=True` (what the rules do): the probe's training matrix is the
largest object of study 1, and `StandardScaler.transform` would hold a second copy of it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from layerwise.probes.logistic import TorchLogisticProbe, WarmStart, check_features, check_labels

PROBE_KINDS = ("logistic", "tree")


def make_probe(kind: str = "logistic", seed: int = 0, **params: Any) -> ClassifierMixin:
    """A seeded, unfitted probe: `TorchLogisticProbe(**params)` or `DecisionTreeClassifier(**params)`.

    For the tree, `max_depth` (default None: grown until pure) is the parameter that matters.
    """
    if kind == "logistic":
        return TorchLogisticProbe(seed=seed, **params)
    if kind == "tree":
        return DecisionTreeClassifier(random_state=seed, **params)
    raise ValueError(f"probe kind must be one of {PROBE_KINDS}, got {kind!r}")


BLOCK_ROWS = 1 << 15


def fit_scaler(X: np.ndarray) -> StandardScaler:
    """A fitted `StandardScaler` for `X`, from float64 sums over row blocks (no copy of `X`)."""
    total = np.zeros(X.shape[1])
    squares = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], BLOCK_ROWS):
        block = X[start:start + BLOCK_ROWS].astype(np.float64)
        total += block.sum(axis=0)
        squares += np.square(block).sum(axis=0)
    mean = total / X.shape[0]
    var = np.maximum(squares / X.shape[0] - mean ** 2, 0.0)
    scaler = StandardScaler()
    scaler.mean_, scaler.var_, scaler.n_samples_seen_, scaler.n_features_in_ = mean, var, X.shape[0], X.shape[1]
    scale = np.sqrt(var)
    # sklearn's rule: (near-)constant dimensions keep scale 1
    scaler.scale_ = np.where(scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0), 1.0, scale)
    return scaler


def standardise(X: np.ndarray, scaler: StandardScaler, overwrite: bool) -> np.ndarray:
    """(X - mean) / scale as float32, in place when `overwrite` (X must then be float32 and C-contiguous)."""
    out = X if overwrite else np.empty_like(X, dtype=np.float32)
    mean, scale = scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32)
    for start in range(0, X.shape[0], BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        np.subtract(X[block], mean, out=out[block])
        out[block] /= scale
    return out


@dataclass(frozen=True)
class ProbeRun:
    """A fitted probe with its scaler and the standardised data it was fitted and tested on."""

    estimator: ClassifierMixin
    scaler: StandardScaler
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    y_pred: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Layer predictions for raw (unstandardised) vectors, e.g. another dataset's."""
        return predict_raw(self.estimator, self.scaler, X)


def predict_raw(estimator: ClassifierMixin, scaler: StandardScaler, X: np.ndarray) -> np.ndarray:
    """`estimator`'s predictions for raw vectors, standardised with the scaler of its training split."""
    return estimator.predict(scaler.transform(check_features(X)))


def fit_probe(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
              estimator: ClassifierMixin, *, overwrite: bool = False, init: WarmStart | None = None) -> ProbeRun:
    """Standardise with train statistics, fit `estimator`, predict the test vectors.

    Estimators whose `fit` accepts `X_val, y_val` (the torch probe) get the test set too, only to
    record test curves per epoch; it never influences the fit. `overwrite=True` standardises the
    given float32 arrays in place (the caller must not use them afterwards): peak memory is then the
    two matrices plus the fit's [n, n_layers] buffers. `init` warm-starts the torch probe (same optimum).
    """
    X_train, X_test = check_features(X_train, "X_train"), check_features(X_test, "X_test")
    y_train = check_labels(y_train, X_train.shape[0], "y_train")
    y_test = check_labels(y_test, X_test.shape[0], "y_test")
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"X_train has {X_train.shape[1]} columns, X_test has {X_test.shape[1]}")
    scaler = fit_scaler(X_train)
    X_train, X_test = standardise(X_train, scaler, overwrite), standardise(X_test, scaler, overwrite)
    if init is not None:
        estimator.fit(X_train, y_train, X_val=X_test, y_val=y_test, init=init)
    elif "X_val" in inspect.signature(estimator.fit).parameters:
        estimator.fit(X_train, y_train, X_val=X_test, y_val=y_test)
    else:
        estimator.fit(X_train, y_train)
    return ProbeRun(estimator, scaler, X_train, y_train, X_test, y_test, estimator.predict(X_test))
