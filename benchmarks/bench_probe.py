"""Benchmark: torch layer probe vs scikit-learn's LogisticRegression (lbfgs) on the same features and split.

    python benchmarks/bench_probe.py --out results/benchmarks/probe.json [--quick] [--store DIR]

Goal (issue 4): accuracy of both within 1 percentage point, torch >= 5x faster on CPU, at >= 100,000
vectors x 576 dimensions. Data: synthetic layered vectors by default (31 layers, like SmolLM2-135M),
or real hidden states from an activation store (`--store`). Both estimators get the same standardised
float32 matrix, the same C, and their default stopping rules (sklearn: tol=1e-4, max_iter=100; torch:
the probe's defaults, including its ftol); only `fit` is timed. Timings on a shared machine depend on
its load, recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from layerwise.probes import TorchLogisticProbe, make_layered_vectors, split_by_text

log = logging.getLogger("bench_probe")
GOAL_SPEEDUP, GOAL_ACCURACY_PP = 5.0, 1.0


def synthetic(quick: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    params = dict(n_texts=40, n_positions=10, n_layers=30, width=128) if quick else \
        dict(n_texts=200, n_positions=17, n_layers=30, width=576)
    data = make_layered_vectors(**params, layer_step=3.0, text_scale=0.5, noise=1.0, seed=0)
    return data.X, data.y, data.text_ids, {"source": "synthetic", "generator": "make_layered_vectors", **params}


def from_store(root: Path, min_vectors: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """All layers of a random subset of tokens (position 0 excluded), at least `min_vectors` vectors."""
    from layerwise.activations.store import ActivationStore

    store = ActivationStore.open(root)
    tokens = store.tokens
    rows = np.flatnonzero(store.position_mask(include_position0=False))
    layers = store.layers
    n_rows = min(rows.size, -(-min_vectors // len(layers)))
    rows = np.sort(np.random.default_rng(seed).choice(rows, n_rows, replace=False))
    X = np.concatenate([np.asarray(store.layer(layer)[rows], dtype=np.float32) for layer in layers])
    y = np.repeat(np.arange(len(layers)), n_rows)
    text_ids = np.tile(tokens["text_id"].to_numpy()[rows], len(layers))
    return X, y, text_ids, {"source": "store", "store": str(root), "model": store.manifest.get("model"),
                            "n_tokens": int(n_rows), "n_layers": len(layers)}


def objective(coef: np.ndarray, intercept: np.ndarray, X: np.ndarray, y_index: np.ndarray, C: float) -> float:
    """sklearn's multinomial objective in float64: mean cross-entropy + ||W||^2 / (2 C n)."""
    logits = X @ coef.T.astype(np.float64) + intercept
    logits -= logits.max(1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    penalty = (coef.astype(np.float64) ** 2).sum() / (2 * C * len(y_index))
    return float(-log_p[np.arange(len(y_index)), y_index].mean() + penalty)


def timed_fit(estimator, X: np.ndarray, y: np.ndarray) -> tuple[float, bool]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X, y)
        seconds = time.perf_counter() - start
    return seconds, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/probe.json"))
    parser.add_argument("--quick", action="store_true", help="small synthetic run (seconds), not the goal size")
    parser.add_argument("--store", type=Path, help="activation store directory: benchmark on real vectors")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=1,
                        help="fits per estimator, alternating their order; the fastest of each is reported")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    min_vectors = 20_000 if args.quick else 100_000
    X, y, text_ids, data_info = from_store(args.store, min_vectors) if args.store else synthetic(args.quick)
    train, test = split_by_text(text_ids, test_fraction=0.2, seed=0)
    scaler = StandardScaler().fit(X[train])
    X_train, X_test = scaler.transform(X[train]), scaler.transform(X[test])
    log.info("data: %s, train %s, test %s", data_info["source"], X_train.shape, X_test.shape)
    load_before = os.getloadavg()

    reference = LogisticRegression(C=args.C, solver="lbfgs")
    probe = TorchLogisticProbe(C=args.C, device="cpu")
    times: dict[str, list[float]] = {"sklearn": [], "torch": []}
    converged = {}
    for repeat in range(args.repeats):  # alternate the order so drift in machine load hits both
        for name in (("sklearn", "torch") if repeat % 2 == 0 else ("torch", "sklearn")):
            estimator = reference if name == "sklearn" else probe
            seconds, converged[name] = timed_fit(estimator, X_train, y[train])
            times[name].append(seconds)
            log.info("%s: %.1f s", name, seconds)
    sk_seconds, torch_seconds = min(times["sklearn"]), min(times["torch"])
    sk_converged, torch_converged = converged["sklearn"], converged["torch"]
    sk_accuracy, torch_accuracy = reference.score(X_test, y[test]), probe.score(X_test, y[test])
    y_index = np.searchsorted(probe.classes_, y[train])
    X64 = X_train.astype(np.float64)
    speedup = sk_seconds / torch_seconds
    gap_pp = 100 * abs(torch_accuracy - sk_accuracy)
    result = {
        "benchmark": "probe",
        "quick": args.quick,
        "data": {**data_info, "n_vectors": int(X.shape[0]), "width": int(X.shape[1]),
                 "n_classes": int(np.unique(y).size), "n_train": int(train.sum()), "n_test": int(test.sum()),
                 "chance": 1 / np.unique(y).size, "split": "by text, test_fraction=0.2, seed=0"},
        "repeats": args.repeats,
        "torch": {"params": probe.get_params(), "seconds": torch_seconds, "all_seconds": times["torch"],
                  "epochs": int(probe.n_iter_),
                  "data_passes": int(probe.n_evaluations_),
                  "seconds_per_epoch": torch_seconds / max(probe.n_iter_, 1),
                  "converged": torch_converged, "test_accuracy": torch_accuracy,
                  "train_objective": objective(probe.coef_, probe.intercept_, X64, y_index, args.C)},
        "sklearn": {"params": {k: v for k, v in reference.get_params().items() if k != "penalty"},
                    "seconds": sk_seconds, "all_seconds": times["sklearn"],
                    "iterations": int(np.max(reference.n_iter_)),
                    "seconds_per_iteration": sk_seconds / max(int(np.max(reference.n_iter_)), 1),
                    "converged": sk_converged,
                    "test_accuracy": sk_accuracy,
                    "train_objective": objective(reference.coef_, reference.intercept_, X64, y_index, args.C)},
        "speedup": speedup,
        "accuracy_gap_pp": gap_pp,
        "goal": {"speedup_at_least": GOAL_SPEEDUP, "accuracy_gap_pp_at_most": GOAL_ACCURACY_PP,
                 "min_vectors": 100_000, "width": 576},
        "goal_met": {"speedup": speedup >= GOAL_SPEEDUP, "accuracy": gap_pp <= GOAL_ACCURACY_PP,
                     "size": (not args.quick) and X.shape[0] >= 100_000 and X.shape[1] >= 576},
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    log.info("speedup %.2fx (goal %.0fx), accuracy gap %.2f pp -> %s", speedup, GOAL_SPEEDUP, gap_pp, args.out)


if __name__ == "__main__":
    main()
