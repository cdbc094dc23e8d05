"""One probe fit, as every condition of the study does it: standardise on train, fit, predict test.

Standardisation is scikit-learn's `StandardScaler`, fitted on the training vectors only: it is the
reference implementation, keeps float32, and leaves constant dimensions unscaled instead of dividing
by zero. After it, 0 in a dimension means "the training mean", which is what masking relies on.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from layerwise.probes.logistic import TorchLogisticProbe, check_features, check_labels

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
        return self.estimator.predict(self.scaler.transform(check_features(X)))


def fit_probe(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
              estimator: ClassifierMixin) -> ProbeRun:
    """Standardise with train statistics, fit `estimator`, predict the test vectors.

    Estimators whose `fit` accepts `X_val, y_val` (the torch probe) get the test set too, only to
    record test curves per epoch; it never influences the fit.
    """
    X_train, X_test = check_features(X_train, "X_train"), check_features(X_test, "X_test")
    y_train = check_labels(y_train, X_train.shape[0], "y_train")
    y_test = check_labels(y_test, X_test.shape[0], "y_test")
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"X_train has {X_train.shape[1]} columns, X_test has {X_test.shape[1]}")
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if "X_val" in inspect.signature(estimator.fit).parameters:
        estimator.fit(X_train, y_train, X_val=X_test, y_val=y_test)
    else:
        estimator.fit(X_train, y_train)
    return ProbeRun(estimator, scaler, X_train, y_train, X_test, y_test, estimator.predict(X_test))
