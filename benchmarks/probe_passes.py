"""Full-data passes per Study 1 probe fit, cold vs coarse-to-fine vs warm, on a real activation store.

Passes are load-independent (the machine is shared); CPU seconds per pass are reported beside them
(process CPU time, so other users' load inflates them less than wall time would).
Usage: PYTHONPATH=src python benchmarks/probe_passes.py STORE [--texts N] [--tol T] [--max-epochs E]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from layerwise.probes.conditions import train_selection
from layerwise.probes.features import split_layer_dataset
from layerwise.probes.logistic import TorchLogisticProbe, WarmStart
from layerwise.probes.training import fit_probe
from layerwise.activations.store import ActivationStore


def timed_fit(X, y, X_test, y_test, probe: TorchLogisticProbe, init: WarmStart | None = None) -> dict:
    start = time.process_time()
    probe.fit(X, y, init=init)
    cpu = time.process_time() - start
    return dict(warm_start=probe.warm_start_ or "zero", epochs=probe.n_iter_, evaluations=probe.n_evaluations_,
                passes=round(probe.passes_, 1), converged=probe.converged_, grad_norm=probe.grad_norm_,
                cpu_s=round(cpu, 1), cpu_s_per_pass=round(cpu / probe.passes_, 3),
                accuracy=float(np.mean(probe.predict(X_test) == y_test)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("--texts", type=int, default=0, help="keep the first N texts (0 = all)")
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--coarse", type=float, default=0.1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train, test = split_layer_dataset(ActivationStore.open(args.store), 0.2, 0)
    if args.texts:
        keep = np.unique(np.concatenate([train.text_ids, test.text_ids]))[:args.texts]
        train, test = train.subset(np.isin(train.text_ids, keep)), test.subset(np.isin(test.text_ids, keep))
    params = dict(tol=args.tol, max_epochs=args.max_epochs, device="cpu")
    print(f"train {train.X.shape}, test {test.X.shape}, {train.n_layers} classes", flush=True)
    start = time.process_time()
    run = fit_probe(train.X, train.y, test.X, test.y, TorchLogisticProbe(**params), overwrite=True)
    cpu, cold = time.process_time() - start, run.estimator
    rows = {"raw cold": dict(warm_start="zero", epochs=cold.n_iter_, evaluations=cold.n_evaluations_,
                             passes=cold.passes_, converged=cold.converged_, grad_norm=cold.grad_norm_,
                             cpu_s=round(cpu, 1), cpu_s_per_pass=round(cpu / cold.passes_, 3),
                             accuracy=float(np.mean(run.y_pred == run.y_test)))}
    print(rows, flush=True)
    coarse = TorchLogisticProbe(coarse_fraction=args.coarse, **params)
    rows["raw coarse"] = timed_fit(run.X_train, run.y_train, run.X_test, run.y_test, coarse)
    rows["raw coarse"]["max_coef_diff"] = float(np.abs(coarse.coef_ - cold.coef_).max())
    print(rows["raw coarse"], flush=True)
    _, dims = train_selection(run, mask_k=4, top_n=8)
    run.X_train[:, dims] = 0
    masked_test = run.X_test.copy()
    masked_test[:, dims] = 0
    rows["masked cold"] = timed_fit(run.X_train, run.y_train, masked_test, run.y_test, TorchLogisticProbe(**params))
    print(rows["masked cold"], flush=True)
    rows["masked warm"] = timed_fit(run.X_train, run.y_train, masked_test, run.y_test, TorchLogisticProbe(**params),
                                    WarmStart.from_probe(cold, "raw", zero_dims=np.asarray(dims)))
    print(rows["masked warm"], flush=True)
    for name, row in rows.items():
        print(name, row)


if __name__ == "__main__":
    main()
