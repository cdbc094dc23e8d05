"""TorchLogisticProbe: sklearn's objective and API, checked against sklearn and against ground truth."""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from layerwise.probes.logistic import TorchLogisticProbe, WarmStart, matmul_nt
from layerwise.probes.synthetic import make_layered_vectors


def overlapping_classes(n: int = 3000, width: int = 10, n_classes: int = 4, seed: int = 0):
    """Gaussian classes whose means overlap: a unique, well-conditioned optimum (~70-80% accuracy)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_classes, width)) * 0.6
    y = rng.integers(0, n_classes, n)
    X = (means[y] + rng.standard_normal((n, width))).astype(np.float32)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def objective(coef, intercept, X, y, C):
    """sklearn's multinomial objective, in float64: mean cross-entropy + ||W||^2 / (2 C n)."""
    logits = X.astype(np.float64) @ coef.T + intercept
    logits -= logits.max(1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean() + (coef ** 2).sum() / (2 * C * len(y))


@pytest.mark.parametrize("C", [0.05, 1.0])
def test_matches_sklearn_coefficients_and_accuracy(C):
    X, y = overlapping_classes()
    X_test, y_test = overlapping_classes(seed=1)
    ours = TorchLogisticProbe(C=C, tol=1e-6, max_epochs=500, device="cpu").fit(X, y)
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=5000).fit(X.astype(np.float64), y)
    assert ours.converged_
    assert abs(ours.score(X_test, y_test) - ref.score(X_test, y_test)) <= 0.01
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4 * scale)
    # the intercept is defined up to a constant shift in sklearn's softmax; compare centred values
    np.testing.assert_allclose(ours.intercept_ - ours.intercept_.mean(),
                               ref.intercept_ - ref.intercept_.mean(), atol=1e-4 * scale)
    assert objective(ours.coef_, ours.intercept_, X, y, C) == pytest.approx(
        objective(ref.coef_, ref.intercept_, X, y, C), rel=1e-5)


def test_adam_reaches_the_lbfgs_optimum():
    X, y = overlapping_classes()
    lbfgs = TorchLogisticProbe(tol=1e-6, max_epochs=500, device="cpu").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam = TorchLogisticProbe(solver="adam", lr=0.02, batch_size=500, max_epochs=20,
                                  device="cpu").fit(X, y)
    assert np.mean(adam.predict(X) == lbfgs.predict(X)) > 0.98
    assert objective(adam.coef_, adam.intercept_, X, y, 1.0) == pytest.approx(
        objective(lbfgs.coef_, lbfgs.intercept_, X, y, 1.0), rel=5e-3)


def test_lbfgs_is_deterministic_and_adam_follows_its_seed():
    X, y = overlapping_classes(n=1000)
    a, b = (TorchLogisticProbe(device="cpu").fit(X, y) for _ in range(2))
    np.testing.assert_array_equal(a.coef_, b.coef_)
    params = dict(solver="adam", batch_size=100, max_epochs=3, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        runs = [TorchLogisticProbe(seed=s, **params).fit(X, y).coef_ for s in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_history_is_tidy_and_consistent_with_the_fit():
    X, y = overlapping_classes(n=1500)
    X_val, y_val = overlapping_classes(n=500, seed=2)
    probe = TorchLogisticProbe(val_every=5, device="cpu").fit(X, y, X_val, y_val)
    h = probe.history_
    assert list(h.columns) == ["epoch", "split", "metric", "value"]
    assert set(h["split"]) == {"train", "test"} and set(h["metric"]) == {"loss", "accuracy"}
    assert sorted(h["epoch"].unique()) == list(range(probe.n_iter_ + 1))
    train_epochs = h.loc[h["split"] == "train", "epoch"].unique()
    test_epochs = h.loc[h["split"] == "test", "epoch"].unique()
    assert list(train_epochs) == list(range(probe.n_iter_ + 1))  # the train curve comes free with each step
    # the held-out curve: the first val_every epochs, every val_every-th after, and the last
    every = probe.val_every
    expected = sorted({e for e in range(probe.n_iter_ + 1) if e <= every or e % every == 0} | {probe.n_iter_})
    assert probe.n_iter_ > 2 * every and list(test_epochs) == expected
    assert len(h) == 2 * (len(train_epochs) + len(test_epochs))
    first = h[h["epoch"] == 0].set_index(["split", "metric"])["value"]
    assert first[("train", "loss")] == pytest.approx(np.log(4), rel=1e-6)  # zero weights: uniform prediction
    last = h[h["epoch"] == probe.n_iter_].set_index(["split", "metric"])["value"]
    assert last[("test", "accuracy")] == pytest.approx(probe.score(X_val, y_val))
    assert last[("train", "accuracy")] == pytest.approx(probe.score(X, y))
    train_loss = h[(h["split"] == "train") & (h["metric"] == "loss")]["value"].to_numpy()
    assert train_loss[-1] < train_loss[0]


def test_labels_are_kept_and_probabilities_are_a_softmax():
    X, y = overlapping_classes(n=800, n_classes=3)
    labels = np.array([3, 7, 11])[y]
    probe = TorchLogisticProbe(device="cpu").fit(X, labels)
    np.testing.assert_array_equal(probe.classes_, [3, 7, 11])
    proba = probe.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probe.predict(X), probe.classes_[proba.argmax(1)])
    np.testing.assert_allclose(probe.decision_function(X), X @ probe.coef_.T + probe.intercept_, rtol=1e-5)


def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    probe = TorchLogisticProbe(C=0.3, solver="adam", max_epochs=7)
    copy = clone(probe)
    assert copy.get_params() == probe.get_params() and not hasattr(copy, "coef_")


def test_warns_when_not_converged():
    X, y = overlapping_classes(n=500)
    with pytest.warns(ConvergenceWarning):
        probe = TorchLogisticProbe(max_epochs=1, tol=0.0, device="cpu").fit(X, y)
    assert not probe.converged_ and probe.n_iter_ == 1


def test_stops_on_the_gradient_only_and_records_it(caplog):
    """Converged means max |gradient| <= tol at the returned weights: check it against a float64 gradient."""
    X, y = overlapping_classes(n=1000)
    probe = TorchLogisticProbe(tol=1e-5, max_epochs=500, device="cpu").fit(X, y)
    W, b = probe.coef_.astype(np.float64), probe.intercept_.astype(np.float64)
    logits = X.astype(np.float64) @ W.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), np.searchsorted(probe.classes_, y)] -= 1
    grad = np.concatenate([(p.T @ X / len(y) + W / len(y)).ravel(), p.mean(0)])
    assert probe.converged_ and np.abs(grad).max() <= 2e-5 and probe.grad_norm_ <= 1e-5
    with caplog.at_level("WARNING"), pytest.warns(ConvergenceWarning):
        short = TorchLogisticProbe(tol=1e-5, max_epochs=3, device="cpu").fit(X, y)
    assert not short.converged_ and short.grad_norm_ > 1e-5 and "did not converge" in caplog.text


@pytest.mark.parametrize("params, message", [
    (dict(solver="sgd"), "solver"), (dict(C=0), "C must be"), (dict(max_epochs=0), "max_epochs"),
    (dict(tol=-1), "tol"), (dict(history_size=0), "history_size"), (dict(lr=0), "lr"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_parameters_are_named(params, message):
    X, y = overlapping_classes(n=50)
    with pytest.raises(ValueError, match=message):
        TorchLogisticProbe(**params).fit(X, y)


def test_bad_inputs_raise_clear_errors():
    X, y = overlapping_classes(n=50)
    probe = TorchLogisticProbe(device="cpu")
    with pytest.raises(ValueError, match="2-D"):
        probe.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="NaN"):
        probe.fit(np.where(np.eye(50, 10, dtype=bool), np.nan, X), y)
    with pytest.raises(TypeError, match="integer"):
        probe.fit(X, y.astype(float))
    with pytest.raises(ValueError, match="one label per row"):
        probe.fit(X, y[:-1])
    with pytest.raises(ValueError, match="two classes"):
        probe.fit(X, np.zeros(50, dtype=int))
    with pytest.raises(ValueError, match="both X_val and y_val"):
        probe.fit(X, y, X_val=X)
    with pytest.raises(ValueError, match="columns"):
        probe.fit(X, y, X[:, :5], y)
    with pytest.raises(ValueError, match="never seen"):
        probe.fit(X, y, X, y + 10)
    probe.fit(X, y)
    with pytest.raises(ValueError, match="columns"):
        probe.predict(X[:, :5])


@pytest.mark.parametrize("bias", [False, True])
def test_matmul_nt_matches_a_float64_product(bias):
    rng = np.random.default_rng(3)
    a, b, c = (rng.standard_normal(shape).astype(np.float32) for shape in ((1000, 576), (31, 576), (31,)))
    expected = a.astype(np.float64) @ b.T.astype(np.float64) + (c if bias else 0.0)
    out = matmul_nt(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c) if bias else None).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5 * np.abs(expected).max())


# --------------------------------------------------------------------------- known answers
# The optional paths first: Adam and L-BFGS's coarse first stage run in no default configuration but are config
# options (`probes.probe.solver`, `coarse_fraction`), so each is checked against what it must do: Adam's
# full-batch steps are torch.optim.Adam's on the documented objective; epochs, evaluations and the first history
# row (all weights zero: loss log(K), every prediction the first class) are counted exactly; a coarse stage draws
# its rows from the probe's seed, reaches the cold fit's optimum and books its cost. Then L-BFGS itself: epochs
# and objective evaluations against the objective's real calls, a start within `tol`, a warm start at the
# optimum, the restart after an uphill direction, a line search that never succeeds; and the inputs: the GPU
# products, defaults shared with scikit-learn and scipy, labels and features refused by name.

C, LR = 0.5, 0.05


def data(n_texts: int = 12, seed: int = 1):
    """n_texts x 4 positions x 4 layers, width 6, less every second vector of the last class: unequal class
    sizes keep every gradient entry away from 0, where Adam's first steps (about lr * sign) would amplify
    rounding noise."""
    v = make_layered_vectors(n_texts=n_texts, n_positions=4, n_layers=3, width=6, layer_step=2.0, seed=seed)
    keep = (v.y != 3) | (np.cumsum(v.y == 3) % 2 == 0)
    return v.X[keep], v.y[keep]


def adam_reference(X: np.ndarray, y: np.ndarray, epochs: int) -> np.ndarray:
    """`epochs` full-batch torch.optim.Adam steps from zero on mean CE + ||W||^2 / (2 C n), by autograd."""
    n, width = X.shape
    k = np.unique(y).size
    theta = torch.zeros(k * (width + 1), requires_grad=True)
    optimizer = torch.optim.Adam([theta], lr=LR)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(epochs):
        W, b = theta[:k * width].view(k, width), theta[k * width:]
        loss = torch.nn.functional.cross_entropy(Xt @ W.T + b, yt) + 0.5 / (C * n) * W.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return theta.detach()[:k * width].view(k, width).numpy()


def adam(**params) -> TorchLogisticProbe:
    return TorchLogisticProbe(C=C, solver="adam", lr=LR, device="cpu", **params)


def fit_quietly(probe: TorchLogisticProbe, *args, **kwargs) -> TorchLogisticProbe:
    with pytest.warns(Warning, match="did not converge"):
        return probe.fit(*args, **kwargs)


def test_full_batch_adam_is_torchs_adam_on_the_objective_and_counts_its_epochs():
    X, y = data()
    X_val, y_val = data(n_texts=4, seed=2)
    probe = fit_quietly(adam(max_epochs=5), X, y, X_val, y_val)
    np.testing.assert_allclose(probe.coef_, adam_reference(X, y, 5), atol=2e-6)
    assert probe.n_iter_ == 5 and probe.n_evaluations_ == 6 and probe.passes_ == 6.0 and not probe.converged_
    h = probe.history_.set_index(["split", "metric", "epoch"])["value"].sort_index()
    assert h.loc["train", "loss"].index.tolist() == [0, 1, 2, 3, 4, 5]
    assert h.loc["test", "accuracy"].index.tolist() == [0, 1, 2, 3, 4, 5]
    # epoch 0: all weights zero, so every class is equally likely and argmax picks the first class
    assert h.loc[("train", "loss", 0)] == pytest.approx(np.log(4), rel=1e-6)
    assert h.loc[("test", "loss", 0)] == pytest.approx(np.log(4), rel=1e-6)
    assert h.loc[("train", "accuracy", 0)] == np.mean(y == 0)
    assert h.loc[("test", "accuracy", 0)] == np.mean(y_val == 0)
    assert h.loc[("train", "loss", 5)] < h.loc[("train", "loss", 1)] < np.log(4)


def test_adam_mini_batches_cost_one_pass_each_and_a_batch_of_every_row_is_full_batch():
    X, y = data()
    mini = fit_quietly(adam(max_epochs=3, batch_size=50, seed=4), X, y)
    assert mini.n_iter_ == 3 and mini.n_evaluations_ == 1 + 2 * 3
    whole = fit_quietly(adam(max_epochs=3, batch_size=len(y)), X, y)
    assert whole.n_evaluations_ == 1 + 3
    np.testing.assert_allclose(whole.coef_, adam_reference(X, y, 3), atol=2e-6)


def test_adam_stops_before_a_step_when_the_gradient_is_within_tol():
    """A first fit with a huge tol reads the gradient at zero; a tol of exactly that value converges at epoch 0."""
    X, y = data()
    start = adam(max_epochs=5, tol=1e9).fit(X, y)
    assert start.n_iter_ == 0 and start.converged_ and np.all(start.coef_ == 0)
    exact = adam(max_epochs=5, tol=start.grad_norm_).fit(X, y)
    assert exact.n_iter_ == 0 and exact.grad_norm_ == start.grad_norm_ and exact.n_evaluations_ == 1


# --------------------------------------------------------------------------- L-BFGS with a coarse stage

def coarse_data():
    """2000 rows: a coarse fraction of 0.5 gives exactly MIN_COARSE_ROWS = 1000 rows, the smallest stage run."""
    v = make_layered_vectors(n_texts=125, n_positions=4, n_layers=3, width=8, layer_step=2.0, seed=3)
    return v.X, v.y


def test_coarse_stage_is_seeded_reaches_the_cold_optimum_and_books_its_passes(caplog):
    X, y = coarse_data()
    assert len(y) == 2000
    cold = TorchLogisticProbe(C=C, tol=1e-5, max_epochs=300, device="cpu").fit(X, y)
    with caplog.at_level(logging.INFO, logger="layerwise.probes.logistic"):
        warm = TorchLogisticProbe(C=C, tol=1e-5, max_epochs=300, coarse_fraction=0.5, seed=9, device="cpu").fit(X, y)
    again = TorchLogisticProbe(C=C, tol=1e-5, max_epochs=300, coarse_fraction=0.5, seed=9, device="cpu").fit(X, y)
    assert warm.warm_start_ == "coarse" and cold.warm_start_ == "" and warm.converged_
    np.testing.assert_array_equal(warm.coef_, again.coef_)  # the subsample is drawn from the seed
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=2e-3)  # strictly convex: one optimum
    np.testing.assert_array_equal(warm.predict(X), cold.predict(X))
    message = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("coarse stage"))
    found = re.fullmatch(r"coarse stage: 1000 rows \(50%\), (\d+) epochs, (\d+) evaluations, max \|gradient\| (\S+)",
                         message)
    assert found, message
    stage_evaluations = int(found.group(2))
    assert stage_evaluations >= 2 and float(found.group(3)) <= 1000 ** -0.5
    assert warm.passes_ == pytest.approx(warm.n_evaluations_ + 0.5 * stage_evaluations)
    other_seed = TorchLogisticProbe(C=C, tol=1e-5, max_epochs=300, coarse_fraction=0.5, seed=10, device="cpu").fit(X, y)
    assert not np.array_equal(other_seed.coef_, warm.coef_)


def test_no_coarse_stage_below_its_smallest_size():
    X, y = coarse_data()
    probe = TorchLogisticProbe(C=C, max_epochs=300, coarse_fraction=0.4995, device="cpu").fit(X, y)  # 999 rows
    assert probe.warm_start_ == "" and probe.passes_ == probe.n_evaluations_


# --------------------------------------------------------------------------- L-BFGS: epochs, evaluations, starts

def test_lbfgs_counts_every_epoch_and_every_objective_evaluation(monkeypatch):
    """Stopped by max_epochs (tol 0): epochs 0..3 in the history, n_iter_ 3, and n_evaluations_ the number of
    times the objective really was evaluated (one per accepted step, plus line-search retries, plus the start)."""
    from layerwise.probes import logistic

    calls = []
    real = logistic._Problem.evaluate
    monkeypatch.setattr(logistic._Problem, "evaluate", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    X, y = data()
    probe = fit_quietly(TorchLogisticProbe(C=C, tol=0.0, max_epochs=3, device="cpu"), X, y)
    assert probe.n_iter_ == 3 and not probe.converged_
    assert probe.n_evaluations_ == len(calls) >= 4 and probe.passes_ == len(calls)
    assert sorted(probe.history_["epoch"].unique()) == [0, 1, 2, 3]


def test_lbfgs_converges_at_epoch_zero_when_the_start_is_within_tol():
    X, y = data()
    start = TorchLogisticProbe(C=C, tol=1e9, device="cpu").fit(X, y)
    assert start.n_iter_ == 0 and start.n_evaluations_ == 1
    exact = TorchLogisticProbe(C=C, tol=start.grad_norm_, device="cpu").fit(X, y)
    assert exact.n_iter_ == 0 and exact.converged_ and np.all(exact.coef_ == 0)


def test_a_warm_start_at_the_optimum_needs_no_step_and_an_empty_mask_changes_nothing():
    X, y = data()
    done = TorchLogisticProbe(C=C, tol=1e-4, max_epochs=300, device="cpu").fit(X, y)
    start = WarmStart.from_probe(done, "raw", zero_dims=[])
    np.testing.assert_array_equal(start.coef, done.coef_)
    again = TorchLogisticProbe(C=C, tol=1e-4, max_epochs=300, device="cpu").fit(X, y, init=start)
    assert again.n_iter_ == 0 and again.warm_start_ == "raw" and again.n_evaluations_ == 1
    # unchanged up to float32 rounding: the start is centred over classes and goes to whitened coordinates and back
    np.testing.assert_allclose(again.coef_, done.coef_, rtol=1e-5, atol=1e-6)


def test_a_direction_that_does_not_descend_restarts_from_steepest_descent(monkeypatch):
    """Numerical trouble can make the two-loop direction point uphill; the fit must then restart from -gradient
    (forced here at the second and third steps) and still reach the optimum of the usual fit."""
    from layerwise.probes import logistic

    X, y = data()
    usual = TorchLogisticProbe(C=C, tol=1e-4, max_epochs=300, device="cpu").fit(X, y)
    real, uphill = logistic._two_loop, []

    def sometimes_uphill(grad, memory):
        uphill.append(len(uphill) < 2)
        return grad.copy() if uphill[-1] else real(grad, memory)

    monkeypatch.setattr(logistic, "_two_loop", sometimes_uphill)
    restarted = TorchLogisticProbe(C=C, tol=1e-4, max_epochs=300, device="cpu").fit(X, y)
    assert restarted.converged_ and uphill[:3] == [True, True, False]
    np.testing.assert_allclose(restarted.coef_, usual.coef_, atol=5e-3)
    np.testing.assert_array_equal(restarted.predict(X), usual.predict(X))


def test_labels_between_the_training_classes_are_refused_by_value():
    """Classes 0 and 2 only: a validation label 1 falls between them and must not be read as class 2."""
    X, y = data()
    keep = (y == 0) | (y == 2)
    with pytest.raises(ValueError, match=r"^y_val has labels never seen in training: \[1, 5\]$"):
        TorchLogisticProbe(C=C, device="cpu").fit(X[keep], y[keep], X[:4], np.array([0, 1, 2, 5]))


def test_a_line_search_that_never_succeeds_returns_the_start_unconverged(monkeypatch):
    """If no step is ever acceptable, the fit stops at epoch 0 with the starting weights and their gradient."""
    from layerwise.probes import logistic

    X, y = data()
    start = TorchLogisticProbe(C=C, tol=1e9, device="cpu").fit(X, y)
    monkeypatch.setattr(logistic, "_acceptable", lambda *args: False)
    stalled = fit_quietly(TorchLogisticProbe(C=C, device="cpu"), X, y)
    assert stalled.n_iter_ == 0 and not stalled.converged_ and np.all(stalled.coef_ == 0)
    assert stalled.grad_norm_ == start.grad_norm_
    assert stalled.n_evaluations_ == 1 + logistic.MAX_LINE_SEARCH


def test_the_gpu_products_equal_the_cpu_ones(monkeypatch):
    """Off the CPU (or without oneDNN) `matmul_nt` is torch's own matmul / addmm: same numbers as oneDNN's."""
    from layerwise.probes import logistic

    g = torch.Generator().manual_seed(0)
    a, b, bias = torch.randn(7, 5, generator=g), torch.randn(3, 5, generator=g), torch.randn(3, generator=g)
    expected = a.double() @ b.double().T
    monkeypatch.setattr(logistic, "_ONEDNN_LINEAR", None)
    close = dict(rtol=1e-5, atol=1e-6)  # float32 products against a float64 reference
    torch.testing.assert_close(logistic.matmul_nt(a, b).double(), expected, **close)
    torch.testing.assert_close(logistic.matmul_nt(a, b, bias).double(), expected + bias.double(), **close)
    torch.testing.assert_close(logistic.matmul_nt(a, b.T.contiguous().T, bias).double(), expected + bias.double(),
                               **close)


def test_defaults_are_scikit_learns_and_scipys_where_they_share_a_meaning():
    """C, tol and the epoch cap are LogisticRegression's C, tol and max_iter; history_size is L-BFGS-B's maxcor."""
    import inspect

    from scipy.optimize import fmin_l_bfgs_b
    from sklearn.linear_model import LogisticRegression

    ours, theirs = TorchLogisticProbe(), LogisticRegression()
    assert (ours.C, ours.tol, ours.max_epochs) == (theirs.C, theirs.tol, theirs.max_iter)
    assert ours.history_size == inspect.signature(fmin_l_bfgs_b).parameters["m"].default
    assert ours.solver == "lbfgs" and ours.coarse_fraction == 0.0 and ours.batch_size is None and ours.seed == 0


def test_two_classes_one_correction_pair_and_single_row_batches_are_valid():
    X, y = data()
    two = (y == 0) | (y == 1)
    probe = TorchLogisticProbe(C=C, history_size=1, max_epochs=300, device="cpu").fit(X[two], y[two])
    assert probe.classes_.tolist() == [0, 1] and probe.converged_
    fit_quietly(adam(max_epochs=1, batch_size=1), X[:20], y[:20])


def test_fit_arguments_are_refused_by_name():
    X, y = data()
    with pytest.raises(ValueError, match=r"^give both X_val and y_val, or neither$"):
        TorchLogisticProbe(device="cpu").fit(X, y, X_val=X)
    with pytest.raises(ValueError, match=r"^X_val must be a non-empty 2-D array"):
        TorchLogisticProbe(device="cpu").fit(X, y, X[:0], y[:0])
    with pytest.raises(ValueError, match=r"^y_val must be 1-D with one label per row \(4\)"):
        TorchLogisticProbe(device="cpu").fit(X, y, X[:4], y[:3])
    with pytest.raises(ValueError, match=r"^y must be 1-D with one label per row"):
        TorchLogisticProbe(device="cpu").fit(X, y[:-1])
    start = WarmStart(np.zeros((4, 6), np.float32), np.zeros(4, np.float32), np.arange(4), "raw")
    with pytest.raises(ValueError, match=r"^warm starts are for the L-BFGS solver \(Adam's path is its result\)$"):
        adam().fit(X, y, init=start)


def test_check_features_returns_float32_and_refuses_non_real_or_non_finite_input(monkeypatch):
    """float32, C-contiguous; one column is a valid width; booleans and complex numbers are refused by type;
    NaN or inf anywhere, the first and the last row included, in blocks of FINITE_BLOCK rows, is refused."""
    from layerwise.probes import logistic

    out = logistic.check_features(np.asfortranarray(np.ones((3, 2))))
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    assert logistic.check_features(np.ones((3, 1))).shape == (3, 1)
    for bad in (np.ones((3, 2), dtype=bool), np.ones((3, 2), dtype=np.complex64)):
        with pytest.raises(TypeError, match=rf"^X must be real numeric, got dtype {bad.dtype}$"):
            logistic.check_features(bad)
    monkeypatch.setattr(logistic, "FINITE_BLOCK", 4)
    for row in (0, 5, 9):
        X = np.ones((10, 3), np.float32)
        X[row, 2] = np.inf if row == 5 else np.nan
        with pytest.raises(ValueError, match=r"^X_val contains NaN or infinite values$"):
            logistic.check_features(X, "X_val")
    assert logistic.check_features(np.ones((10, 3))).shape == (10, 3)


@pytest.mark.parametrize("n_classes", [3, 8, 31])
def test_objective_and_gradient_equal_float64_autograd_whatever_the_class_padding(n_classes):
    # the products run on classes padded to a multiple of 8 (zero weights, -inf intercepts): 3 and 31 are
    # padded, 8 is not; all must give the real classes' objective, gradient and count of correct predictions
    from layerwise.probes.logistic import _Problem

    rng = np.random.default_rng(n_classes)
    n, width, l2 = 400, 12, 1e-3
    X = rng.standard_normal((n, width)).astype(np.float32)
    y = rng.integers(0, n_classes, n)
    theta = (rng.standard_normal(n_classes * (width + 1)) * 0.5).astype(np.float32)
    problem = _Problem(torch.from_numpy(X), torch.from_numpy(y), l2, n_classes)
    objective_value, cross_entropy, correct, grad = problem.evaluate(torch.from_numpy(theta))

    reference = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    W, b = reference[: n_classes * width].view(n_classes, width), reference[n_classes * width:]
    logits = torch.from_numpy(X).double() @ W.T + b
    ce = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    (ce + 0.5 * l2 * W.pow(2).sum()).backward()
    assert cross_entropy == pytest.approx(float(ce), rel=1e-5)
    assert objective_value == pytest.approx(float(ce) + 0.5 * l2 * float(W.pow(2).sum()), rel=1e-5)
    np.testing.assert_allclose(grad.numpy(), reference.grad.numpy(), atol=1e-5)
    assert correct == int((logits.argmax(1).numpy() == y).sum())
    held_out_loss, held_out_correct = problem.score(torch.from_numpy(theta), torch.from_numpy(X), torch.from_numpy(y))
    assert held_out_loss == pytest.approx(float(ce), rel=1e-5) and held_out_correct == correct
