"""TorchLogisticProbe: sklearn's objective and API, checked against sklearn and against ground truth."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from layerwise.probes.logistic import TorchLogisticProbe, matmul_nt


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
    probe = TorchLogisticProbe(device="cpu").fit(X, y, X_val, y_val)
    h = probe.history_
    assert list(h.columns) == ["epoch", "split", "metric", "value"]
    assert set(h["split"]) == {"train", "test"} and set(h["metric"]) == {"loss", "accuracy"}
    assert sorted(h["epoch"].unique()) == list(range(probe.n_iter_ + 1))
    assert len(h) == 4 * (probe.n_iter_ + 1)
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
