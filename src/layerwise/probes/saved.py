"""A fitted logistic probe on disk: its scaler and weights, so a later rule reuses a fit instead of repeating it.

The raw probe of `probe` is the same fit that the transfer (train on A) and the per-dimension random control
(the probe "as trained") start from; re-fitting it there cost a full L-BFGS run per rule (89 s at N=1000 on
SmolLM2). Weights are stored exactly (float32), so a loaded probe predicts bit for bit like the fitted one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler

from layerwise.probes.logistic import TorchLogisticProbe, WarmStart, check_features
from layerwise.probes.training import ProbeRun, fit_scaler, predict_raw, standardise

# Fitted attributes restored on load (the per-epoch `history_` stays with the rule that fitted the probe).
_FITTED = ("classes_", "coef_", "intercept_", "n_iter_", "grad_norm_", "converged_", "passes_",
           "n_evaluations_", "n_features_in_", "whitened_")
_SCALER = ("mean_", "var_", "scale_")


@dataclass(frozen=True)
class FittedProbe:
    """A fitted probe and the scaler of its training split: what `ProbeRun.predict` needs, without the data."""

    estimator: TorchLogisticProbe
    scaler: StandardScaler
    n_train: int

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, estimator: TorchLogisticProbe, *, overwrite: bool,
            init: WarmStart | None = None) -> "FittedProbe":
        """`fit_probe` without a test set: standardise on `X` (in place when `overwrite`), fit, keep the scaler.

        For fits read only through `predict` on raw vectors; a test set would only add per-epoch curves (never
        the fit), and standardising it would overwrite or copy it.
        """
        X = check_features(X, "X_train")
        scaler = fit_scaler(X)
        estimator.fit(standardise(X, scaler, overwrite), y, init=init)
        return cls(estimator, scaler, X.shape[0])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Layer predictions for raw (unstandardised) vectors."""
        return predict_raw(self.estimator, self.scaler, X)

    def check_fits(self, X_train: np.ndarray, name: str, *, compare_means: bool = True) -> None:
        """Refuse a probe fitted on other data: the row count and width, and (for vectors in the probe's own
        space, `compare_means`) the training means must match."""
        if (X_train.shape[0], X_train.shape[1]) != (self.n_train, self.scaler.mean_.size):
            raise ValueError(f"{name} was fitted on {self.n_train} x {self.scaler.mean_.size} training vectors, "
                             f"this split has {X_train.shape[0]} x {X_train.shape[1]}")
        if not compare_means:
            return
        mean = X_train.mean(axis=0, dtype=np.float64)
        if not np.allclose(mean, self.scaler.mean_, rtol=1e-5, atol=1e-5 * float(np.abs(mean).max())):
            raise ValueError(f"{name} was fitted on other training vectors (their means differ)")


def save_probe(path: str | Path, run: ProbeRun) -> None:
    """Write `run`'s logistic probe and scaler to `path` (.npz)."""
    estimator = run.estimator
    if not isinstance(estimator, TorchLogisticProbe):
        raise TypeError(f"only a TorchLogisticProbe is saved, got {type(estimator).__name__}")
    arrays = {f"probe.{a}": np.asarray(getattr(estimator, a)) for a in _FITTED}
    arrays |= {f"scaler.{a}": np.asarray(getattr(run.scaler, a)) for a in _SCALER}
    meta = {"params": estimator.get_params(), "warm_start_": estimator.warm_start_, "n_train": int(run.X_train.shape[0])}
    with open(path, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)


def load_probe(path: str | Path) -> FittedProbe:
    """The probe written by `save_probe`."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        estimator = TorchLogisticProbe(**meta["params"])
        for name in _FITTED:
            value = data[f"probe.{name}"]
            setattr(estimator, name, value if value.ndim else value.item())
        estimator.warm_start_ = meta["warm_start_"]
        scaler = StandardScaler()
        for name in _SCALER:
            setattr(scaler, name, data[f"scaler.{name}"])
    scaler.n_features_in_ = scaler.mean_.size
    scaler.n_samples_seen_ = meta["n_train"]
    return FittedProbe(estimator, scaler, meta["n_train"])
