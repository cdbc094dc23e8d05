"""Multinomial logistic regression in torch, with scikit-learn's objective and API.

The objective is scikit-learn's `LogisticRegression` (l2, lbfgs) for three or more classes:

    mean_i cross_entropy(W x_i + b, y_i) + ||W||^2 / (2 C n)        (the intercept is not penalised)

so `C` means what it means there, and sklearn is the reference the probe is checked against. (For two
classes sklearn fits one logistic vector instead of a symmetric softmax; this probe at C equals it at 2C.)
Float32, gradients in closed form, full batch (Adam may use mini-batches). L-BFGS is a short own loop
rather than `torch.optim.LBFGS`, which re-evaluates the objective at every `step()` call: stepping
epoch by epoch, as the per-epoch history needs, would double its cost.

Stopping is a gradient rule only: `tol` has scipy's meaning (largest absolute gradient entry <= tol).
A loss-change rule stopped early on real data (44 epochs, 0.35 points below the solution), so there is
none; a fit that hits `max_epochs` first is reported as not converged (`converged_`, `grad_norm_`, a
warning in the log), never silently.

Warm starts and coarse-to-fine. The objective is strictly convex (L2 > 0), so its optimum is unique and
the starting point changes only the path to it, never the answer (to `tol`). A fit may therefore start
from a related problem's solution (`fit(..., init=WarmStart(...))`: the masked refit from the raw probe,
the mixed-data transfer probe from the single-dataset one), and a cold fit with `coarse_fraction > 0`
first solves the same objective (same L2 strength) on a seeded row subsample, then finishes on all rows. Both are recorded: `warm_start_` names the starting point,
`passes_` counts the work in full-data passes (a subsample pass counts as its fraction).

Preconditioning (`precondition="auto"`, the default). Some hidden states are badly conditioned even after
standardisation: in the post's setting (position 0 kept, the post-final-norm last layer) a few massive
dimensions and the position-0 vectors leave the features' second-moment matrix with condition number ~4e5
(SmolLM2), and L-BFGS then needs 700+ epochs at N=300. `"whiten"` runs the fit in whitened coordinates
X' = X Q S (Q, L: eigenvectors and eigenvalues of the second moment on a seeded row sample) with weights
W' = W Q S^-1: the logits are unchanged and the L2 term becomes ||W' S||^2, so the objective, its optimum and
the stopping rule (max |gradient| in the original coordinates) are exactly the same; only the path changes
(SmolLM2, post setting, N=300: 715 -> 322 epochs; N=1000: over 25 min unfinished -> 390 epochs). On a
well-conditioned problem it does not pay: our setting (condition ~9e2) took 326 epochs whitened against 180
plain at N=1000, the float32 rounding of the change of coordinates costing more than it saves. `"auto"`
whitens when the second moment's condition number exceeds `AUTO_CONDITION`; `whitened_` records it.
Cost when whitened: one copy of X.

Memory: the features are used as given (float32, C-contiguous: no copy) and the gradient is the product
residual^T X, so the fit holds one X plus [n, n_classes] logits; the test set is only scored per epoch.
"""

from __future__ import annotations

import logging
import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.sparse import issparse
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from layerwise.devices import pick_device
from layerwise.floats import LOG_FLOOR

log = logging.getLogger(__name__)

SOLVERS = ("lbfgs", "adam")
ARMIJO_C1 = 1e-4
WOLFE_C2 = 0.9
OBJECTIVE_NOISE = 1e-6
MAX_LINE_SEARCH = 30
FINITE_BLOCK = 1 << 15
CLASS_PAD = 8  # the CPU matmul kernels' register width in float32 (AVX2); see _Problem


# oneDNN's fp32 matmul (full precision) runs the probe's skinny products [n, width] x [width, n_layers]
# about 2.5x faster than MKL's sgemm on CPUs where MKL dispatches a generic kernel (AMD); it is only
# exposed as this op, so it is looked up once and plain torch.mm is the fallback.
_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


def matmul_nt(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`a @ b.T (+ bias)` for float32 `a` [m, k] (contiguous) and `b` [n, k] (may be a transposed view).

    oneDNN on CPU when available, else torch's matmul.
    """
    if a.device.type == "cpu" and _ONEDNN_LINEAR is not None:
        return _ONEDNN_LINEAR(a, b, bias, "none", [], "")
    return a @ b.T if bias is None else torch.addmm(bias, a, b.T)


def check_features(X: np.ndarray, name: str = "X") -> np.ndarray:
    """A finite 2-D float array with at least one row and one column, as C-contiguous float32."""
    if issparse(X):
        raise TypeError(f"{name} must be a dense array: sparse input is not supported")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array [n_vectors, width], got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real numeric, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    # block by block: a whole-matrix isfinite would allocate a quarter of X in booleans
    if not all(np.isfinite(X[i:i + FINITE_BLOCK]).all() for i in range(0, X.shape[0], FINITE_BLOCK)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def check_labels(y: np.ndarray, n_rows: int, name: str = "y") -> np.ndarray:
    """Integer labels, one per row."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_rows:
        raise ValueError(f"{name} must be 1-D with one label per row ({n_rows}), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer labels (layer indices), got dtype {y.dtype}")
    return y


@dataclass(frozen=True)
class WarmStart:
    """A starting point for a fit: weights per class, and where they came from (recorded with the fit).

    Classes absent from `classes` start at zero; classes the new fit does not have are dropped.
    The source fit's L-BFGS correction pairs are deliberately not carried over: they move weights along
    directions (e.g. masked, all-zero columns) where only the tiny L2 term pulls back, which a gradient
    tolerance cannot see, so the answer would then depend on the start.
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    source: str

    @classmethod
    def from_probe(cls, probe: "TorchLogisticProbe", source: str, zero_dims: np.ndarray | None = None) -> "WarmStart":
        """The fitted `probe`'s weights, with the columns `zero_dims` zeroed (for a refit without them)."""
        coef = probe.coef_.copy()
        if zero_dims is not None:
            coef[:, np.asarray(zero_dims, dtype=int)] = 0.0
        return cls(coef, probe.intercept_.copy(), probe.classes_.copy(), source)

    def theta(self, classes: np.ndarray, width: int, centre: bool = False) -> np.ndarray:
        """Flat float32 parameters [W.ravel(), b] laid out for `classes`.

        `centre` subtracts the class mean of the weights. The softmax ignores it, and the optimum's weights sum
        to zero over classes (only the L2 term acts on that direction, with curvature 1/(C n), so a gradient
        tolerance cannot see an offset there: a far-off start would keep most of its offset).
        """
        if self.coef.shape != (self.classes.size, width) or self.intercept.shape != (self.classes.size,):
            raise ValueError(f"warm start has coef {self.coef.shape} for {self.classes.size} classes, "
                             f"the fit needs width {width}")
        W, b = np.zeros((classes.size, width), np.float32), np.zeros(classes.size, np.float32)
        index = {c: i for i, c in enumerate(self.classes.tolist())}
        for row, c in enumerate(classes.tolist()):
            if c in index:
                W[row], b[row] = self.coef[index[c]], self.intercept[index[c]]
        if centre:
            W -= W.mean(axis=0)
        return np.concatenate([W.ravel(), b])


MIN_COARSE_ROWS = 1000
PRECONDITIONERS = ("auto", "whiten", "none")
AUTO_CONDITION = 1e4    # "auto" whitens above this condition number (measured: ~9e2 plain is faster, ~4e5 not)
WHITEN_ROWS = 1 << 16   # rows of the second-moment estimate: a preconditioner only has to be close


@dataclass(frozen=True)
class Whitening:
    """The change of coordinates X' = X Q S, with W' = W Q S^-1 so that logits X' W'^T = X W^T.

    Q and L are the eigenvectors and eigenvalues of the features' second moment E[x x^T], and
    S = (L / K + l2)^-1/2: the objective's curvature along each eigenvector at the zero start (softmax
    variance ~1/K for K classes, plus the L2 term), so that directions the data do not span (a masked
    dimension, L = 0) are scaled by the L2 term alone instead of blown up.
    """

    rotation: torch.Tensor  # Q [width, width]
    scale: torch.Tensor     # S's diagonal [width]
    condition: float        # largest / smallest eigenvalue the data span (> 1e-8 of the largest; a masked,
                            # all-zero dimension is decoupled and needs no preconditioning)

    @classmethod
    def fit(cls, X: torch.Tensor, l2: float, n_classes: int, seed: int) -> "Whitening":
        """From at most `WHITEN_ROWS` seeded rows of X, in float64."""
        rows = X
        if X.shape[0] > WHITEN_ROWS:
            generator = torch.Generator().manual_seed(seed)
            rows = X[torch.randperm(X.shape[0], generator=generator)[:WHITEN_ROWS].sort().values.to(X.device)]
        rows = rows.to(torch.float64)
        eigenvalues, rotation = torch.linalg.eigh(rows.T @ rows / rows.shape[0])
        eigenvalues = eigenvalues.clamp_min(0.0)
        scale = (eigenvalues / n_classes + l2).rsqrt()
        spanned = eigenvalues[eigenvalues > 1e-8 * eigenvalues.max()]
        condition = float(spanned.max() / spanned.min()) if spanned.numel() else 1.0
        return cls(rotation.to(X.dtype), scale.to(X.dtype), condition)

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """X' = X Q S (a new matrix, filled block by block)."""
        out = torch.empty_like(X)
        for start in range(0, X.shape[0], FINITE_BLOCK):
            block = slice(start, start + FINITE_BLOCK)
            torch.mm(X[block], self.rotation, out=out[block]).mul_(self.scale)
        return out

    def weights_in(self, W: torch.Tensor) -> torch.Tensor:
        """W' = W Q S^-1."""
        return (W @ self.rotation) / self.scale

    def weights_out(self, W: torch.Tensor) -> torch.Tensor:
        """W = W' S Q^T."""
        return (W * self.scale) @ self.rotation.T

    def gradient_out(self, G: torch.Tensor) -> torch.Tensor:
        """The gradient in W from the gradient in W': G S^-1 Q^T."""
        return (G / self.scale) @ self.rotation.T


class _Problem:
    """Features and encoded targets on the device, plus the L2 strength of the objective.

    No copy of X is kept (no transposed or bias-augmented copy): the weights' gradient is R^T X and
    the intercepts' the column sums of R, so memory stays one X plus [n, n_classes] residuals.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, l2: float, n_classes: int,
                 whitening: Whitening | None = None):
        """`X` is already in `whitening`'s coordinates when one is given; the L2 term is then ||W' S||^2."""
        self.X, self.y, self.l2, self.n_classes, self.whitening = X, y, l2, n_classes, whitening
        self.penalty = None if whitening is None else whitening.scale.square()
        # The products run on a class count rounded up to a multiple of CLASS_PAD: the padding classes have
        # zero weights and a -inf intercept, so their probability is exactly 0 and the softmax, objective and
        # gradient are those of the real classes (31 SmolLM2 layers -> 32: measured 15% faster forward and
        # 11% faster gradient product at 744k rows, one core).
        padded = -(-n_classes // CLASS_PAD) * CLASS_PAD
        self.W_pad = torch.zeros(padded, X.shape[1], dtype=X.dtype, device=X.device)
        self.b_pad = torch.full((padded,), -torch.inf, dtype=X.dtype, device=X.device)
        self.gW_pad = torch.empty_like(self.W_pad)

    def logits(self, X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """X W^T + b as [n, padded classes]; the padding columns are -inf."""
        self.W_pad[: self.n_classes] = W
        self.b_pad[: self.n_classes] = b
        return matmul_nt(X, self.W_pad, self.b_pad)

    def max_gradient(self, grad: np.ndarray) -> float:
        """max |gradient| in the original coordinates (the stopping rule's quantity)."""
        if self.whitening is None:
            return float(np.abs(grad).max())
        width = self.X.shape[1]
        G = torch.as_tensor(grad[: self.n_classes * width].reshape(self.n_classes, width))
        G = self.whitening.gradient_out(G.to(self.whitening.rotation))
        return max(float(G.abs().max()), float(np.abs(grad[self.n_classes * width:]).max()))

    def theta_in(self, theta: np.ndarray) -> np.ndarray:
        """Original-coordinate parameters -> this problem's."""
        return self._map(theta, lambda W: self.whitening.weights_in(W))

    def theta_out(self, theta: np.ndarray) -> np.ndarray:
        """This problem's parameters -> original coordinates."""
        return self._map(theta, lambda W: self.whitening.weights_out(W))

    def _map(self, theta: np.ndarray, change) -> np.ndarray:
        if self.whitening is None:
            return theta
        width = self.X.shape[1]
        W = torch.as_tensor(theta[: self.n_classes * width].reshape(self.n_classes, width), dtype=torch.float32)
        W = change(W.to(self.whitening.rotation.device)).cpu().numpy().ravel()
        return np.concatenate([W, theta[self.n_classes * width:]]).astype(np.float32)

    def unpack(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = self.X.shape[1]
        return theta[: self.n_classes * width].view(self.n_classes, width), theta[self.n_classes * width:]

    def evaluate(self, theta: torch.Tensor, rows: torch.Tensor | None = None
                 ) -> tuple[float, float, int, torch.Tensor]:
        """Objective, mean cross-entropy, number correct and gradient, on all rows or on `rows`."""
        X, y = (self.X, self.y) if rows is None else (self.X[rows], self.y[rows])
        n_rows = y.shape[0]
        W, b = self.unpack(theta)
        logits = self.logits(X, W, b)
        correct = int((logits.argmax(1) == y).sum())
        log_p = torch.log_softmax(logits, 1)  # fused; several times faster than logsumexp on CPU
        # float64 accumulation: the line search compares objectives that differ in the 7th digit
        picked = log_p.gather(1, y[:, None])
        cross_entropy = -float(torch.sum(picked, dtype=torch.float64)) / n_rows
        # softmax, in place, from log-probabilities clamped at LOG_FLOOR (see layerwise.floats): measured on
        # SmolLM2 at N=300, this halved the fit (54 s -> 27 s, same epochs, accuracy and final gradient)
        # (the padding columns' log-probability is -inf, floored to a residual of exp(LOG_FLOOR) ~ 1e-35)
        residual = log_p.clamp_min_(LOG_FLOOR).exp_()
        residual.scatter_(1, y[:, None], -1.0, reduce="add")  # softmax - one_hot(y)
        grad = torch.empty_like(theta)
        gW, gb = self.unpack(grad)
        torch.mm(residual.T, X, out=self.gW_pad)  # [padded classes, width]
        gW.copy_(self.gW_pad[: self.n_classes])
        residual = residual[:, : self.n_classes]
        penalised = W if self.penalty is None else W * self.penalty
        gW.mul_(1.0 / n_rows).add_(penalised, alpha=self.l2)
        torch.sum(residual, 0, out=gb)
        gb.mul_(1.0 / n_rows)
        objective = cross_entropy + 0.5 * self.l2 * float((W * penalised).sum())
        return objective, cross_entropy, correct, grad

    def score(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        """Mean cross-entropy and number correct on held-out data."""
        W, b = self.unpack(theta)
        logits = self.logits(X, W, b)
        loss = torch.nn.functional.cross_entropy(logits, y)
        return float(loss), int((logits.argmax(1) == y).sum())


def _acceptable(objective: float, slope: float, step: float, new_objective: float, new_slope: float) -> bool:
    """Armijo sufficient decrease, or Hager & Zhang's approximate Wolfe conditions.

    Close to the optimum the decrease Armijo asks for is below what a float32 objective resolves;
    the approximate conditions then trust the (accurate) directional derivative instead: it must have
    shrunk in magnitude while the objective did not rise beyond its rounding noise.
    """
    if new_objective <= objective + ARMIJO_C1 * step * slope:
        return True
    return new_objective <= objective + OBJECTIVE_NOISE * abs(objective) and abs(new_slope) <= WOLFE_C2 * abs(slope)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product without BLAS: OpenBLAS threads its ddot at this length, and its threads then fight
    torch's still-spinning OpenMP workers for the cores (milliseconds per call instead of microseconds)."""
    return float(np.einsum("i,i->", a, b))


def _two_loop(grad: np.ndarray, memory: deque) -> np.ndarray:
    """L-BFGS direction -H g from the (s, y, 1/s.y) pairs in `memory`, oldest first, in float64 on the host."""
    q = grad.copy()
    alphas = []
    for s, y, rho in reversed(memory):
        alpha = rho * _dot(s, q)
        q -= alpha * y
        alphas.append(alpha)
    s, y, _ = memory[-1]
    q *= _dot(s, y) / _dot(y, y)
    for (s, y, rho), alpha in zip(memory, reversed(alphas)):
        q += (alpha - rho * _dot(y, q)) * s
    return -q


class TorchLogisticProbe(ClassifierMixin, BaseEstimator):
    """Multinomial L2 logistic regression; `fit(X, y, X_val, y_val)` also records per-epoch curves.

    An epoch is one L-BFGS iteration (one accepted step, normally one pass over the data) or one Adam
    pass over the data (one step when `batch_size` is None). Weights start at zero, as in sklearn;
    `seed` orders Adam's mini-batches and draws the coarse stage's rows (`coarse_fraction` of them; 0 = no
    coarse stage), the only randomness; neither changes the L-BFGS optimum. `history_size` is the number of
    L-BFGS correction pairs (scipy's maxcor); `lr` and `batch_size` are Adam's. `val_every`: the held-out
    curve is scored at epochs 0..val_every and every `val_every`-th after, and at the last (scoring it every
    epoch cost ~11% of a fit: a pass over a quarter as many rows).
    `precondition`: "whiten" runs L-BFGS in whitened coordinates, "none" in the given ones, "auto" (default)
    whitens an ill-conditioned problem only (`whitened_` says which ran); same
    optimum (Adam always runs in the given ones).

    Fitted attributes: `classes_`, `coef_` [n_classes, width], `intercept_`, `n_iter_` (epochs),
    `n_evaluations_` (passes over the full training data), `passes_` (the same plus the coarse stage's
    subsample passes, each counted as its fraction), `warm_start_` ("" for a cold start from zero, "coarse"
    or the `WarmStart.source`), `converged_`, `grad_norm_` (final max |gradient|),
    and `history_`, a long table with
    columns epoch, split (train/test), metric (loss = mean cross-entropy, accuracy), value.
    """

    def __init__(self, C: float = 1.0, *, solver: str = "lbfgs", max_epochs: int = 100, tol: float = 1e-4,
                 history_size: int = 10, lr: float = 0.01, batch_size: int | None = None,
                 coarse_fraction: float = 0.0, precondition: str = "auto", val_every: int = 10,
                 device: str = "auto", seed: int = 0):
        self.C = C
        self.val_every = val_every
        self.precondition = precondition
        self.coarse_fraction = coarse_fraction
        self.solver = solver
        self.max_epochs = max_epochs
        self.tol = tol
        self.history_size = history_size
        self.lr = lr
        self.batch_size = batch_size
        self.device = device
        self.seed = seed

    def _check_params(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.tol < 0:
            raise ValueError(f"tol must be >= 0, got {self.tol}")
        if self.val_every < 1:
            raise ValueError(f"val_every must be >= 1, got {self.val_every}")
        if self.history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {self.history_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.precondition not in PRECONDITIONERS:
            raise ValueError(f"precondition must be one of {PRECONDITIONERS}, got {self.precondition!r}")
        if not 0.0 <= self.coarse_fraction < 1.0:
            raise ValueError(f"coarse_fraction must be in [0, 1), got {self.coarse_fraction}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be None (full batch) or >= 1, got {self.batch_size}")

    def _encode(self, y: np.ndarray, name: str) -> np.ndarray:
        index = np.searchsorted(self.classes_, y)
        known = (index < self.classes_.size) & (self.classes_[np.minimum(index, self.classes_.size - 1)] == y)
        if not known.all():
            raise ValueError(f"{name} has labels never seen in training: {np.unique(y[~known]).tolist()}")
        return index

    def fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, *, init: WarmStart | None = None) -> "TorchLogisticProbe":
        """Fit on (X, y) from `init` (else zero, or the coarse stage); `history_` also tracks (X_val, y_val)."""
        self._check_params()
        X = check_features(X)
        y = check_labels(y, X.shape[0])
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError(f"need at least two classes (layers) to fit, got {self.classes_.tolist()}")
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        device = pick_device(self.device)
        to_device = lambda a, dtype: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
        features, l2 = to_device(X, torch.float32), 1.0 / (self.C * X.shape[0])
        # Adam is not invariant to the coordinates (its path is its result): whitening is for L-BFGS only
        whitening = (Whitening.fit(features, l2, self.classes_.size, self.seed)
                     if self.precondition != "none" and self.solver == "lbfgs" else None)
        if whitening is not None and self.precondition == "auto" and whitening.condition <= AUTO_CONDITION:
            whitening = None
        self.whitened_ = whitening is not None
        if whitening is not None:
            features = whitening.features(features)
        problem = _Problem(features, to_device(self._encode(y, "y"), torch.long), l2, self.classes_.size,
                           whitening)
        val = None
        if X_val is not None:
            X_val = check_features(X_val, "X_val")
            if X_val.shape[1] != X.shape[1]:
                raise ValueError(f"X_val has {X_val.shape[1]} columns, X has {X.shape[1]}")
            y_val = self._encode(check_labels(y_val, X_val.shape[0], "y_val"), "y_val")
            val = (to_device(X_val, torch.float32), to_device(y_val, torch.long))

        records: list[dict] = []

        def record_test(epoch: int, theta: torch.Tensor) -> None:
            # held-out data stay in the original coordinates
            original = torch.as_tensor(problem.theta_out(theta.cpu().numpy()), device=device)
            loss, n_right = problem.score(original, *val)
            records.append(dict(epoch=epoch, split="test", loss=loss, accuracy=n_right / val[1].shape[0]))

        def record(epoch: int, theta: torch.Tensor, cross_entropy: float, correct: int) -> None:
            records.append(dict(epoch=epoch, split="train", loss=cross_entropy, accuracy=correct / X.shape[0]))
            if val is not None and (epoch <= self.val_every or epoch % self.val_every == 0):
                record_test(epoch, theta)

        self.n_evaluations_, self.passes_, self.warm_start_ = 0, 0.0, ""
        theta0 = None
        if init is not None:
            if self.solver != "lbfgs":
                raise ValueError("warm starts are for the L-BFGS solver (Adam's path is its result)")
            theta0, self.warm_start_ = problem.theta_in(init.theta(self.classes_, X.shape[1], centre=True)), init.source
        with torch.no_grad():
            if theta0 is None and self.solver == "lbfgs" and self.coarse_fraction > 0:
                theta0 = self._coarse(problem)
            if self.solver == "lbfgs":
                theta, self.n_iter_, self.grad_norm_ = self._lbfgs(problem, record, theta0)
            else:
                theta, self.n_iter_, self.grad_norm_ = self._adam(problem, record)
            if val is not None and records[-1]["split"] == "train":  # the last epoch's held-out score
                record_test(records[-1]["epoch"], theta.to(device))
        self.passes_ += self.n_evaluations_
        self.converged_ = bool(self.grad_norm_ <= self.tol)
        W, b = problem.unpack(torch.as_tensor(problem.theta_out(theta.cpu().numpy())))
        self.coef_, self.intercept_ = W.cpu().numpy(), b.cpu().numpy()
        self.n_features_in_ = X.shape[1]
        history = pd.DataFrame(records)
        self.history_ = history.melt(id_vars=["epoch", "split"], value_vars=["loss", "accuracy"],
                                     var_name="metric", value_name="value")
        if not self.converged_:
            message = (f"{self.solver} did not converge: stopped after {self.n_iter_} epochs at max |gradient| "
                       f"{self.grad_norm_:.2e} > tol={self.tol}; raise max_epochs or tol")
            log.warning(message)
            warnings.warn(message, ConvergenceWarning, stacklevel=2)
        if whitening is not None:
            log.info("whitened coordinates: second-moment condition number %.3g", whitening.condition)
        log.info("probe fitted: %s from %s, %d epochs, %d objective evaluations (%.1f full-data passes), "
                 "max |gradient| %.2e, converged=%s", self.solver, self.warm_start_ or "zero", self.n_iter_,
                 self.n_evaluations_, self.passes_, self.grad_norm_, self.converged_)
        return self

    def _coarse(self, problem: _Problem) -> np.ndarray | None:
        """Solve the full objective's L2 strength on a seeded row subsample, to its gradient noise.

        Stops at max |gradient| <= 1/sqrt(rows), the order of the subsample's sampling noise. Measured on
        SmolLM2 (100 texts x 30 tokens, 76k rows) this saved little (204 vs 209 passes); solving the
        subsample to `tol` saved 19% (10% of rows) and 27% (25%) there, but on planted data at tol=1e-6 the
        full stage then stalled at the float32 line-search floor, so that variant is not used. Off by default.
        None when the subsample would be too small to help.
        """
        n_rows = problem.X.shape[0]
        rows = int(round(self.coarse_fraction * n_rows))
        if rows < MIN_COARSE_ROWS:
            return None
        generator = torch.Generator().manual_seed(self.seed)
        index = torch.randperm(n_rows, generator=generator)[:rows].sort().values.to(problem.X.device)
        sub = _Problem(problem.X[index], problem.y[index], problem.l2, problem.n_classes, problem.whitening)
        stage = TorchLogisticProbe(C=self.C, max_epochs=self.max_epochs, tol=max(self.tol, rows ** -0.5),
                                   history_size=self.history_size)
        stage.n_evaluations_ = 0
        theta, epochs, grad_norm = stage._lbfgs(sub, lambda *args: None)
        del sub
        self.passes_ += stage.n_evaluations_ * rows / n_rows
        self.warm_start_ = "coarse"
        log.info("coarse stage: %d rows (%.0f%%), %d epochs, %d evaluations, max |gradient| %.2e",
                 rows, 100 * rows / n_rows, epochs, stage.n_evaluations_, grad_norm)
        return theta.numpy()

    def _lbfgs(self, problem: _Problem, record, theta0: np.ndarray | None = None
               ) -> tuple[torch.Tensor, int, float]:
        """(weights, epochs, final max |gradient|), starting from `theta0` (else zero)."""
        device = problem.X.device

        def evaluate(theta: np.ndarray) -> tuple[float, float, int, np.ndarray]:
            self.n_evaluations_ += 1
            objective, cross_entropy, correct, grad = problem.evaluate(torch.as_tensor(theta, device=device))
            return objective, cross_entropy, correct, grad.cpu().numpy().astype(np.float64)

        size = problem.n_classes * (problem.X.shape[1] + 1)
        theta = np.zeros(size, dtype=np.float32) if theta0 is None else np.asarray(theta0, np.float32).copy()
        objective, cross_entropy, correct, grad = evaluate(theta)
        record(0, torch.as_tensor(theta, device=device), cross_entropy, correct)
        memory: deque = deque(maxlen=self.history_size)
        for epoch in range(1, self.max_epochs + 1):
            if problem.max_gradient(grad) <= self.tol:
                return torch.as_tensor(theta), epoch - 1, problem.max_gradient(grad)
            if memory:
                direction, step = _two_loop(grad, memory), 1.0
            else:
                direction, step = -grad, min(1.0, 1.0 / np.abs(grad).sum())
            slope = _dot(grad, direction)
            if slope >= 0:  # not a descent direction (numerical trouble): restart from steepest descent
                memory.clear()
                direction, slope = -grad, -_dot(grad, grad)
            for _ in range(MAX_LINE_SEARCH):
                candidate = (theta + step * direction).astype(np.float32)
                new_objective, cross_entropy, correct, new_grad = evaluate(candidate)
                if _acceptable(objective, slope, step, new_objective, _dot(new_grad, direction)):
                    break
                step *= 0.5
            else:
                log.info("line search stalled at epoch %d (max |grad| %.2e)", epoch, problem.max_gradient(grad))
                return torch.as_tensor(theta), epoch - 1, problem.max_gradient(grad)
            s, y_diff = candidate.astype(np.float64) - theta, new_grad - grad
            curvature = _dot(s, y_diff)
            if curvature > 1e-10:
                memory.append((s, y_diff, 1.0 / curvature))
            theta, objective, grad = candidate, new_objective, new_grad
            record(epoch, torch.as_tensor(theta, device=device), cross_entropy, correct)
        return torch.as_tensor(theta), self.max_epochs, problem.max_gradient(grad)

    def _adam(self, problem: _Problem, record) -> tuple[torch.Tensor, int, float]:
        width, n_rows = problem.X.shape[1], problem.X.shape[0]
        theta = torch.zeros(problem.n_classes * (width + 1), device=problem.X.device)
        optimizer = torch.optim.Adam([theta], lr=self.lr)
        generator = torch.Generator().manual_seed(self.seed)
        mini_batches = self.batch_size is not None and self.batch_size < n_rows
        objective, cross_entropy, correct, grad = problem.evaluate(theta)
        self.n_evaluations_ += 1
        record(0, theta, cross_entropy, correct)
        for epoch in range(1, self.max_epochs + 1):
            if problem.max_gradient(grad.cpu().numpy()) <= self.tol:
                return theta, epoch - 1, problem.max_gradient(grad.cpu().numpy())
            if mini_batches:
                order = torch.randperm(n_rows, generator=generator).to(problem.X.device)
                for rows in order.split(self.batch_size):
                    theta.grad = problem.evaluate(theta, rows)[3]
                    optimizer.step()
                self.n_evaluations_ += 1
            else:
                theta.grad = grad
                optimizer.step()
            _, cross_entropy, correct, grad = problem.evaluate(theta)
            self.n_evaluations_ += 1
            record(epoch, theta, cross_entropy, correct)
        return theta, self.max_epochs, problem.max_gradient(grad.cpu().numpy())

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logits [n_vectors, n_classes]."""
        check_is_fitted(self)
        X = check_features(X)
        if X.shape[1] != self.coef_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} columns, the probe was fitted on {self.coef_.shape[1]}")
        return X @ self.coef_.T + self.intercept_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(self.decision_function(X), axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[self.decision_function(X).argmax(1)]
