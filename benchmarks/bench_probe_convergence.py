"""Benchmark: does the layer probe converge on real hidden states, at what cost, and does it agree with
scikit-learn's `LogisticRegression` run to its own tolerance?

    python benchmarks/bench_probe_convergence.py --store results/activations/<model>/imdb/n1000_l30_s0 \
        --out results/benchmarks/probe_convergence.json [--settings 10:100 10:2000 50:2000] [--sklearn]

One condition (the raw probe of our default setting: position 0 dropped, pre-norm last layer), its text-level
split and standardisation as the `probe` rule makes them, torch on 1 thread (the rule's). For each
`history_size:max_epochs` setting the probe is fitted from zero: wall time, epochs, final max |gradient|,
converged, test accuracy. With `--sklearn` the reference (same objective: C, lbfgs, tol, float64, max_iter
10,000) is fitted on the same matrix; goal: accuracy within 0.5 points of the converged torch fit.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from layerwise.probes.features import split_layer_dataset
from layerwise.probes.logistic import TorchLogisticProbe
from layerwise.probes.training import fit_scaler, standardise
from layerwise.activations.store import ActivationStore

GOAL_ACCURACY_PP = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--settings", nargs="+", default=["10:100", "10:3000"])
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--sklearn", action="store_true")
    parser.add_argument("--post-faithful", action="store_true", help="position 0 kept, post-norm last layer")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    setting = dict(include_position0=True, final_norm_last=True) if args.post_faithful else {}
    train, test = split_layer_dataset(ActivationStore.open(args.store), 0.2, 0, **setting)
    scaler = fit_scaler(train.X)
    X_train, X_test = standardise(train.X, scaler, True), standardise(test.X, scaler, True)
    result = {"store": args.store, "rows_train": int(X_train.shape[0]), "width": int(X_train.shape[1]),
              "classes": int(np.unique(train.y).size), "tol": args.tol, "C": args.C, "torch_threads": 1,
              "post_faithful": args.post_faithful, "torch": []}
    for spec in args.settings:
        history, epochs = (int(v) for v in spec.split(":"))
        probe = TorchLogisticProbe(C=args.C, max_epochs=epochs, tol=args.tol, history_size=history, device="cpu")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            probe.fit(X_train, train.y, X_test, test.y)
        seconds = time.perf_counter() - start
        curve = probe.history_[(probe.history_["split"] == "test") & (probe.history_["metric"] == "accuracy")]
        row = {"history_size": history, "max_epochs": epochs, "seconds": seconds, "epochs": int(probe.n_iter_),
               "evaluations": int(probe.n_evaluations_), "grad_norm": float(probe.grad_norm_),
               "converged": bool(probe.converged_),
               "accuracy": float(np.mean(probe.predict(X_test) == test.y)),
               "test_accuracy_at": {int(e): float(v) for e, v in zip(curve["epoch"], curve["value"])
                                    if e in (25, 50, 75, 100, 150, 200, 300, 500, 1000, 2000)}}
        logging.info("torch %s", row)
        result["torch"].append(row)
        Path(args.out).write_text(json.dumps(result, indent=2))
    if args.sklearn:
        reference = LogisticRegression(C=args.C, solver="lbfgs", tol=args.tol, max_iter=10_000)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            reference.fit(X_train.astype(np.float64), train.y)
        seconds = time.perf_counter() - start
        accuracy = float(np.mean(reference.predict(X_test.astype(np.float64)) == test.y))
        converged_torch = [r for r in result["torch"] if r["converged"]]
        result["sklearn"] = {"seconds": seconds, "n_iter": int(np.max(reference.n_iter_)), "accuracy": accuracy,
                             "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught)}
        if converged_torch:
            gap = 100 * abs(converged_torch[-1]["accuracy"] - accuracy)
            result["sklearn"].update(gap_pp=gap, goal_pp=GOAL_ACCURACY_PP, met=gap <= GOAL_ACCURACY_PP)
            result["goals"] = {"accuracy_within_pp": {"goal": GOAL_ACCURACY_PP, "value": gap,
                                                      "met": gap <= GOAL_ACCURACY_PP}}
        logging.info("sklearn %s", result["sklearn"])
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
