"""The study's conditions, each one probe fit on transformed features, reported the same way.

A condition is a name and a feature/label transformation; every condition shares the text-level split,
the standardisation on the train split and the probe settings, so their accuracies compare directly.
Everything that *selects* (attributions, the dimensions to mask, random-vector moments) is computed on
the training split; the test split is only scored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from layerwise.probes.attribution import attribution_table, cumulative_contributions, dims_for_share, top_dimensions
from layerwise.probes.controls import RANDOM_CONTROLS, REFERENCE_CONDITION, layer_moments, normalise_rows, \
    shuffled_labels
from layerwise.probes.features import LayerDataset
from layerwise.probes.logistic import WarmStart
from layerwise.probes.masks import frequent_top_dimensions, mask_ablation
from layerwise.probes.metrics import confusion_table, score_table
from layerwise.probes.saved import FittedProbe
from layerwise.probes.split import split_by_text
from layerwise.probes.training import ProbeRun, fit_probe, make_probe

# Conditions fitted by `run_condition` ("raw" is the reference).
CONDITIONS = ("raw", "normalised", "tree")


def split(data: LayerDataset, test_fraction: float, seed: int) -> tuple[LayerDataset, LayerDataset]:
    train, test = split_by_text(data.text_ids, test_fraction, seed)
    return data.subset(train), data.subset(test)


def convergence(estimator: Any) -> dict[str, Any]:
    """converged, epochs, grad_norm, passes (full-data equivalents), warm_start (the starting point:
    "zero", "coarse" or a solved fit's name) and whitened (the coordinates L-BFGS ran in) of an iterative
    probe; missing (NA) for a tree, which has none."""
    if not hasattr(estimator, "converged_"):
        return {"converged": pd.NA, "epochs": pd.NA, "grad_norm": np.nan, "passes": np.nan, "warm_start": pd.NA,
                "whitened": pd.NA}
    return {"converged": bool(estimator.converged_), "epochs": int(estimator.n_iter_),
            "grad_norm": float(estimator.grad_norm_), "passes": float(getattr(estimator, "passes_", np.nan)),
            "warm_start": getattr(estimator, "warm_start_", "") or "zero",
            "whitened": bool(getattr(estimator, "whitened_", False))}


def run_condition(condition: str, train: LayerDataset, test: LayerDataset, *, seed: int,
                  probe_params: dict[str, Any], tree_params: dict[str, Any], overwrite: bool = False) -> ProbeRun:
    """Fit the probe of `condition`; the test split is transformed the same way as the train split.

    `overwrite=True` transforms and standardises the splits' matrices in place (peak memory: one copy).
    """
    X_train, X_test = train.X, test.X
    kind, params = "logistic", probe_params
    y_train = train.y
    if condition == "normalised":
        X_train, X_test = normalise_rows(X_train, overwrite=overwrite), normalise_rows(X_test, overwrite=overwrite)
    elif condition == "tree":
        kind, params = "tree", dict(tree_params)
        rows = tree_training_rows(y_train.size, params.pop("max_train_rows", None), seed)
        if rows is not None:
            X_train, y_train = X_train[rows], y_train[rows]
    elif condition != "raw":
        raise ValueError(f"unknown condition {condition!r}; choose one of {CONDITIONS}")
    return fit_probe(X_train, y_train, X_test, test.y, make_probe(kind, seed, **params), overwrite=overwrite)


def tree_training_rows(n_rows: int, max_rows: int | None, seed: int) -> np.ndarray | None:
    """Sorted seeded row indices when the tree is capped at `max_rows` training rows, else None (all rows).

    A depth-12 tree on SmolLM2's 216k training vectors x 576 dimensions took 265 s of one core, a quarter of
    Study 1's additions; its cost grows with the rows (every level sorts them per dimension), so the default
    config caps it. The test split is never subsampled.
    """
    if max_rows is None or n_rows <= max_rows:
        return None
    if max_rows < 1:
        raise ValueError(f"tree max_train_rows must be >= 1, got {max_rows}")
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def scores(run: ProbeRun, labels: np.ndarray, **columns: Any) -> pd.DataFrame:
    """score_table of the run's test predictions, its convergence fields and `columns`."""
    return score_table(run.y_test, run.y_pred, labels).assign(**convergence(run.estimator), **columns)


def shuffled_label_scores(train: LayerDataset, test: LayerDataset, labels: np.ndarray, *, seed: int,
                          permutations: int, probe_params: dict[str, Any], overwrite: bool = False) -> pd.DataFrame:
    """One row per permutation: a probe fitted to permuted *training* labels, scored on the true test labels.

    The features are standardised once (the scaler never reads labels) and shared by every permutation.
    """
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    rows, run = [], None
    for i in range(permutations):
        y_train = shuffled_labels(train.y, seed + i)
        estimator = make_probe("logistic", seed, **probe_params)
        if run is None:
            run = fit_probe(train.X, y_train, test.X, test.y, estimator, overwrite=overwrite)
        else:
            estimator.fit(run.X_train, y_train)
            run = replace(run, estimator=estimator, y_train=y_train, y_pred=estimator.predict(run.X_test))
        rows.append(scores(run, labels, condition="shuffled_labels", permutation=i))
    return pd.concat(rows, ignore_index=True)


def random_control_scores(kind: str, train: LayerDataset, test: LayerDataset, labels: np.ndarray, *, seed: int,
                          probe_params: dict[str, Any], overwrite: bool = False,
                          reference: FittedProbe | None = None) -> pd.DataFrame:
    """Random vectors with the `kind` moments of each training layer, through the trained probe and re-trained.

    Rows `random_<kind>_trained` (the reference probe of `REFERENCE_CONDITION[kind]`, fitted on real
    vectors, classifying random test vectors) and `random_<kind>_retrained` (a probe fitted on random
    training vectors, tested on random test vectors). Moments come from the training split only.
    `reference` is that probe when a rule already fitted it on this split (checked); else it is fitted here.
    """
    if kind not in RANDOM_CONTROLS:
        raise ValueError(f"random control must be one of {RANDOM_CONTROLS}, got {kind!r}")
    moments = layer_moments(train.X, train.y, kind)
    if reference is None:
        reference = run_condition(REFERENCE_CONDITION[kind], train, test, seed=seed, probe_params=probe_params,
                                  tree_params={}, overwrite=overwrite)
    else:  # its means are comparable only in the raw space (the scalar control's reference saw unit rows)
        reference.check_fits(train.X, "the reference probe", compare_means=REFERENCE_CONDITION[kind] == "raw")
    # with `overwrite` the caller gave the splits' matrices away: the random vectors are drawn into them
    random_test = moments.sample(test.y, seed + 1, out=test.X if overwrite else None)
    through = reference.predict(random_test)
    trained = score_table(test.y, through, labels).assign(**convergence(reference.estimator),
                                                          condition=f"random_{kind}_trained")
    random_train = moments.sample(train.y, seed, out=train.X if overwrite else None)
    del reference
    retrained = fit_probe(random_train, train.y, random_test, test.y, make_probe("logistic", seed, **probe_params),
                          overwrite=overwrite)
    return pd.concat([trained, scores(retrained, labels, condition=f"random_{kind}_retrained")], ignore_index=True)


def train_selection(run: ProbeRun, *, mask_k: int, top_n: int) -> tuple[pd.DataFrame, list[int]]:
    """The attribution table and the dimensions to mask, from the training split only (never `run.X_test`)."""
    attribution = attribution_table(run.estimator.coef_, run.estimator.classes_, run.X_train, run.y_train)
    return attribution, frequent_top_dimensions(attribution, mask_k, top_n)["dim"].tolist()


def raw_probe_analyses(run: ProbeRun, labels: np.ndarray, *, mask_k: int, top_n: int,
                       retrain_masked: bool = True) -> dict[str, pd.DataFrame]:
    """Everything read off the reference probe: attributions and mask choice on train, masks scored on test
    (and re-trained without the masked dims if `retrain_masked`)."""
    labels = np.asarray(labels)
    attribution, dims = train_selection(run, mask_k=mask_k, top_n=top_n)
    return {
        "confusion": confusion_table(run.y_test, run.y_pred, labels),
        "history": run.estimator.history_,
        "attribution": attribution,
        "top": top_dimensions(attribution, top_n),
        "cumulative": cumulative_contributions(attribution),
        "dims_for_share": dims_for_share(attribution),
        "masks": mask_ablation(run, dims, retrain=retrain_masked).assign(chance=1.0 / labels.size),
    }


def transfer_scores(train: LayerDataset, test_a: LayerDataset, test_b: LayerDataset, labels: np.ndarray, *,
                    n_a: int, seed: int, probe_params: dict[str, Any], names: tuple[str, str],
                    reference: FittedProbe | None = None, mix: bool = True) -> pd.DataFrame:
    """Train on A, test on A and B; train on A+B, test on each (the post's IMDB → AG News transfer).

    `train` holds A's training rows (the first `n_a`), then B's, as `split_layer_datasets` loads them into one
    matrix; the A+B probe standardises it in place (the caller gives it away), so the A+B vectors are held once.
    `reference` is the probe trained on A when a rule already fitted it on this split (checked while the rows are
    still raw); else it is fitted here, on a copy. The mixed probe starts from the A-only solution (same objective
    family, strictly convex: same optimum to tolerance, fewer passes when the datasets are close); only accuracies
    are read from it, never its coefficients, which a gradient tolerance pins only loosely along weakly curved
    directions. The test splits are only scored, raw: neither copied nor changed. `mix=False` skips the A+B
    probe (the post only proposed it; it costs a full fit) and returns the A-trained rows only.
    """
    if not 0 < n_a < train.y.size:
        raise ValueError(f"n_a must split the {train.y.size} training rows into A and B, got {n_a}")
    a, b = names
    X_a, y_a = train.X[:n_a], train.y[:n_a]
    if reference is None:
        reference = FittedProbe.fit(X_a, y_a, make_probe("logistic", seed, **probe_params), overwrite=False)
    else:
        reference.check_fits(X_a, f"the probe trained on {a}")
    probes = [(a, reference)]
    if mix:
        mixed = make_probe("logistic", seed, **probe_params)
        init = WarmStart.from_probe(reference.estimator, a) if getattr(mixed, "solver", None) == "lbfgs" else None
        probes.append((f"{a}+{b}", FittedProbe.fit(train.X, train.y, mixed, overwrite=True, init=init)))
    rows = []
    for trained, probe in probes:
        for tested, data in ((a, test_a), (b, test_b)):
            pred = probe.predict(data.X)
            rows.append(score_table(data.y, pred, labels).assign(**convergence(probe.estimator), train=trained,
                                                                 test=tested))
    return pd.concat(rows, ignore_index=True)

