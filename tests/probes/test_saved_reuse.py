"""A saved probe is the fit it was saved from: rules that start from the raw (or normalised) probe load it
instead of fitting it again, and every table they write must be the one the re-fit gave."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from layerwise.probes.conditions import convergence, random_control_scores, run_condition, split, transfer_scores
from layerwise.probes.controls import REFERENCE_CONDITION
from layerwise.probes.features import LayerDataset
from layerwise.probes.saved import load_probe, save_probe
from layerwise.probes.synthetic import make_layered_vectors

from tests.helpers.workflow_runs import snakemake, tiny_config

PROBE = {"C": 1.0, "max_epochs": 40}
N_LAYERS = 4


def layered(seed: int) -> LayerDataset:
    v = make_layered_vectors(n_texts=60, n_positions=8, n_layers=N_LAYERS, width=24, layer_step=3.0, seed=seed)
    return LayerDataset(v.X, v.y, v.text_ids, v.positions)


def saved(tmp_path, condition: str, train: LayerDataset, test: LayerDataset):
    run = run_condition(condition, train, test, seed=0, probe_params=PROBE, tree_params={})
    save_probe(tmp_path / f"{condition}.npz", run)
    return run, load_probe(tmp_path / f"{condition}.npz")


def test_a_loaded_probe_predicts_and_reports_like_the_fitted_one(tmp_path):
    train, test = split(layered(0), 0.25, seed=0)
    run, loaded = saved(tmp_path, "raw", train, test)
    other = layered(5).X  # vectors it never saw, unstandardised
    np.testing.assert_array_equal(loaded.predict(other), run.predict(other))
    np.testing.assert_array_equal(loaded.estimator.coef_, run.estimator.coef_)
    assert convergence(loaded.estimator) == convergence(run.estimator)
    assert loaded.n_train == train.X.shape[0]


def test_transfer_from_the_saved_probe_is_the_transfer_that_refits_it(tmp_path):
    train_a, test_a = split(layered(0), 0.25, seed=0)
    train_b, test_b = split(layered(1), 0.25, seed=1)
    labels = np.arange(N_LAYERS + 1)
    kwargs = dict(n_a=train_a.y.size, seed=0, probe_params=PROBE, names=("a", "b"))
    # a fresh A+B matrix per call: the transfer standardises it in place
    refit = transfer_scores(LayerDataset.concatenate([train_a, train_b]), test_a, test_b, labels, **kwargs)
    _, reference = saved(tmp_path, "raw", train_a, test_a)
    reused = transfer_scores(LayerDataset.concatenate([train_a, train_b]), test_a, test_b, labels,
                             reference=reference, **kwargs)
    pd.testing.assert_frame_equal(reused, refit)
    assert refit.loc[refit.test == "b", "accuracy"].max() < 1.0  # a table where something differs by row


@pytest.mark.parametrize("kind", ["per_dimension", "scalar"])
def test_random_control_through_the_saved_reference_is_the_one_that_refits_it(tmp_path, kind):
    labels = np.arange(N_LAYERS + 1)
    train, test = split(layered(0), 0.25, seed=0)
    refit = random_control_scores(kind, train, test, labels, seed=0, probe_params=PROBE)
    train, test = split(layered(0), 0.25, seed=0)
    _, reference = saved(tmp_path, REFERENCE_CONDITION[kind], train, test)
    train, test = split(layered(0), 0.25, seed=0)  # fresh splits: the rules run in place (overwrite=True)
    reused = random_control_scores(kind, train, test, labels, seed=0, probe_params=PROBE, overwrite=True,
                                   reference=reference)
    pd.testing.assert_frame_equal(reused, refit)


def test_a_probe_saved_from_another_split_is_refused(tmp_path):
    train, test = split(layered(0), 0.25, seed=0)
    _, reference = saved(tmp_path, "raw", train, test)
    other_train, other_test = split(layered(0), 0.25, seed=1)  # same sizes, other texts
    assert other_train.X.shape == train.X.shape
    with pytest.raises(ValueError, match="other training vectors"):
        transfer_scores(LayerDataset.concatenate([other_train, other_train]), other_test, other_test,
                        np.arange(N_LAYERS + 1), n_a=other_train.y.size, seed=0, probe_params=PROBE,
                        names=("a", "b"), reference=reference)
    smaller, smaller_test = split(layered(0), 0.5, seed=0)
    with pytest.raises(ValueError, match=f"{train.X.shape[0]} x 24 training vectors"):
        random_control_scores("per_dimension", smaller, smaller_test, np.arange(N_LAYERS + 1), seed=0,
                              probe_params=PROBE, reference=reference)


def test_only_a_logistic_probe_is_saved(tmp_path):
    train, test = split(layered(0), 0.25, seed=0)
    tree = run_condition("tree", train, test, seed=0, probe_params=PROBE, tree_params={"max_depth": 3})
    with pytest.raises(TypeError, match="DecisionTreeClassifier"):
        save_probe(tmp_path / "tree.npz", tree)


def test_the_workflow_loads_each_reference_from_the_rule_that_fits_it(tmp_path, shared_data):
    """In the DAG the transfer and the random controls read a saved probe; the normalised probe is the job
    that saves the scalar control's, and the rules' mapping is the library's REFERENCE_CONDITION."""
    done = snakemake(tmp_path, tiny_config(tmp_path, shared_data), "-n")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    jobs = re.split(r"\n(?=rule |localrule )", out)

    def job(rule: str, output_part: str) -> str:
        found = [j for j in jobs if j.startswith(f"rule {rule}:") and output_part in j]
        assert found, f"no {rule} job writing {output_part}"
        return found[0]

    for kind, reference in REFERENCE_CONDITION.items():
        text = job("probe_condition", f"/random_{kind}/scores.csv")
        assert re.search(rf"input: .*/{reference}/probe\.npz", text), text
    assert "/normalised/probe.npz" in job("probe_normalised", "/normalised/scores.csv")
    assert re.search(r"input: .*/raw/probe\.npz", job("probe_transfer", "transfer_raw_n"))
    assert "rule probe_condition:" not in "".join(j for j in jobs if "/normalised/scores.csv" in j)
