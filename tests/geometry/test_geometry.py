"""Anisotropy, nearest neighbours and TwoNN against ground truth and reference implementations.

Everything runs on the NumPy backend, which executes the same xp code as the CuPy one.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.spatial.distance import cdist
from sklearn.datasets import make_swiss_roll

from layerwise.backend import _cupy_with_device
from layerwise.geometry import (METRICS, TABLE_COLUMNS, TwoNNResult, anisotropy, batch_indices, covariance_spectrum,
                                geometry_table, layer_geometry, neighbours, top_k_shares,
                                two_nearest_neighbour_distances, twonn, twonn_from_distances)
from layerwise.geometry.neighbours import _float32_error_factor, _float64_error_factor, _float64_rows, _two_nn
from layerwise.narrative.geometry import dropped_sentence
from layerwise.plots.geometry import plot_anisotropy_profiles, plot_intrinsic_dimension_profiles, summarise_profiles


def embed(z: np.ndarray, ambient: int, rng: np.random.Generator) -> np.ndarray:
    """Map points isometrically into `ambient` dims with a random orthonormal frame."""
    frame, _ = np.linalg.qr(rng.standard_normal((ambient, z.shape[1])))
    return z @ frame.T


def hidden_state_like(n: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """float16 vectors with a large common offset and a few outlier dimensions, like residual streams."""
    scales = np.ones(width)
    scales[:3] = [40.0, 15.0, 8.0]
    x = rng.standard_normal((n, 6)) @ rng.standard_normal((6, width)) * scales
    x += 0.3 * rng.standard_normal((n, width)) + 25.0
    return x.astype(np.float16)


def brute_two_nn(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = cdist(x.astype(np.float64), x.astype(np.float64))
    np.fill_diagonal(d, np.inf)
    d.sort(axis=1)
    return d[:, 0], d[:, 1]


def data_with_spectrum(n: int, eigenvalues: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """n points in len(eigenvalues)+7 dims whose sample covariance has exactly these eigenvalues.

    X = U S V^T (+ an offset, which centring removes) with U orthonormal and orthogonal to the
    ones vector, so U S V^T is centred and its X^T X / (n - 1) has eigenvalues s^2 / (n - 1).
    """
    r = len(eigenvalues)
    u = rng.standard_normal((n, r))
    u -= u.mean(axis=0)
    u, _ = np.linalg.qr(u)
    v, _ = np.linalg.qr(rng.standard_normal((r + 7, r)))
    return (u * np.sqrt(eigenvalues * (n - 1))) @ v.T + 3.0


# --------------------------------------------------------------------------- anisotropy


@pytest.mark.parametrize("n", [500, 9])  # n >= width: covariance eigvalsh; n < width: SVD
def test_spectrum_and_shares_equal_the_analytic_values(n):
    rng = np.random.default_rng(0)
    eigenvalues = np.array([9.0, 4.0, 2.0, 1.0, 1.0, 0.5, 0.25, 0.25])
    x = data_with_spectrum(n, eigenvalues, rng)
    spectrum = covariance_spectrum(x)
    np.testing.assert_allclose(spectrum[:8], eigenvalues, rtol=1e-9)
    np.testing.assert_allclose(spectrum[8:], 0.0, atol=1e-9)
    assert anisotropy(x) == pytest.approx(9.0 / 18.0, rel=1e-9)
    shares = top_k_shares(spectrum, (1, 5, 10))
    assert shares[5] == pytest.approx(17.0 / 18.0, rel=1e-9)
    assert shares[10] == pytest.approx(1.0, rel=1e-9)


def test_isotropic_gaussian_anisotropy_is_about_one_over_d():
    # top sample eigenvalue of an isotropic Gaussian sits at the Marchenko-Pastur edge (1 + sqrt(d/n))^2
    rng = np.random.default_rng(1)
    n, d = 40_000, 20
    x = rng.standard_normal((n, d))
    edge = (1 + np.sqrt(d / n)) ** 2
    assert anisotropy(x) * d == pytest.approx(edge, rel=0.02)


def test_anisotropy_ignores_a_common_offset_and_accepts_float16():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2000, 16)) * np.linspace(1, 3, 16)
    assert anisotropy((x + 100.0).astype(np.float16)) == pytest.approx(anisotropy(x), rel=2e-3)


# --------------------------------------------------------------------------- nearest neighbours


@pytest.mark.parametrize("block_size", [16, 100, 256, 10_000])
def test_blocked_neighbours_equal_brute_force(block_size):
    # 1001 points: no block size above divides it, and it is not a multiple of the group width
    x = hidden_state_like(1001, 96, np.random.default_rng(3))
    r1, r2 = two_nearest_neighbour_distances(x, block_size=block_size)
    e1, e2 = brute_two_nn(x)
    np.testing.assert_allclose(r1, e1, rtol=1e-12)
    np.testing.assert_allclose(r2, e2, rtol=1e-12)


@pytest.mark.parametrize("n", [3, 4, 17])
def test_neighbours_of_tiny_sets(n):
    x = np.random.default_rng(n).standard_normal((n, 5))
    r1, r2 = two_nearest_neighbour_distances(x, n_candidates=2)
    e1, e2 = brute_two_nn(x)
    np.testing.assert_allclose(r1, e1, rtol=1e-12)
    np.testing.assert_allclose(r2, e2, rtol=1e-12)


# --------------------------------------------------------------------------- TwoNN ground truth


@pytest.mark.parametrize(
    ("distribution", "d"),
    [("gaussian", 2), ("gaussian", 4), ("gaussian", 6), ("gaussian", 8), ("gaussian", 10),
     # On a cube TwoNN is biased low near the faces; with a few thousand points at d >= 7 most
     # points are near one (about -10% at d = 10): a property of the estimator, so cubes stop at 5.
     ("uniform", 2), ("uniform", 3), ("uniform", 5)],
)
def test_twonn_recovers_the_dimension_of_linearly_embedded_data(distribution, d):
    rng = np.random.default_rng(10 + d)
    n = 5000
    z = rng.standard_normal((n, d)) if distribution == "gaussian" else rng.uniform(size=(n, d))
    r1, r2 = two_nearest_neighbour_distances(embed(z, 500, rng))
    for estimator in ("linear", "mle"):
        assert twonn_from_distances(r1, r2, estimator=estimator).dimension == pytest.approx(d, rel=0.1)


def test_twonn_on_a_swiss_roll_is_two():
    z, _ = make_swiss_roll(5000, noise=0.0, random_state=0)
    result = twonn(embed(z, 500, np.random.default_rng(4)))
    assert result.dimension == pytest.approx(2.0, rel=0.1)
    assert result == TwoNNResult(
        dimension=result.dimension, n_points=5000, n_used=4500, n_duplicates=0,
        fraction=0.9, estimator="linear",
    )


def test_duplicates_are_merged_to_one_copy_and_counted():
    rng = np.random.default_rng(5)
    x = embed(rng.standard_normal((3000, 4)), 64, rng)
    with_copies = np.concatenate([x, x[:40], x[:5]])  # 35 pairs and 5 triples: 85 points with r1 = 0
    for estimator in ("linear", "mle"):
        clean = twonn(x, estimator=estimator)
        result = twonn(with_copies, estimator=estimator)
        assert result.n_duplicates == 85
        assert result.n_merged == 45  # the copies beyond the first of each vector
        assert result.n_points == 3045
        assert result.n_used == clean.n_used  # the estimate sees the 3,000 distinct vectors only
        assert result.dimension == pytest.approx(clean.dimension, rel=1e-12)


@pytest.mark.parametrize("estimator", ["linear", "mle"])
def test_planted_duplicates_give_the_known_dimension(estimator):
    """A 3-D Gaussian in 40 dimensions, 30% of its points given one copy each (as repeated tokens do at the
    embedding layer). Keeping one copy gives 3; dropping every copy (r1 = 0 has no ratio) leaves the points
    whose nearest neighbour was copied with mu = r2 / r1 = 1, and the estimate is far above 3."""
    rng = np.random.default_rng(21)
    x = embed(rng.standard_normal((4000, 3)), 40, rng)
    copied = rng.choice(4000, 1200, replace=False)
    with_copies = np.concatenate([x, x[copied]])
    result = twonn(with_copies, estimator=estimator)
    assert result.dimension == pytest.approx(3.0, rel=0.1)
    assert result.n_merged == 1200 and result.n_duplicates == 2400
    r1, r2 = two_nearest_neighbour_distances(with_copies)
    dropped = twonn_from_distances(r1, r2, estimator=estimator).dimension
    assert dropped > 1.3 * result.dimension  # the artefact the merge removes


# --------------------------------------------------------------------------- reference implementations


@pytest.fixture(scope="module")
def reference_data() -> np.ndarray:
    rng = np.random.default_rng(6)
    return embed(rng.standard_normal((2500, 7)), 500, rng)


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log")  # skdim's unused y_ at F = 1
@pytest.mark.parametrize("fraction", [0.9, 0.75])
def test_matches_scikit_dimension(reference_data, fraction):
    # skdim drops the `discard_fraction` largest ratios and fits -log(1 - i/N) on the rest with
    # N counting all ratios: our `fraction` is its 1 - discard_fraction. Its "mle" censors the
    # discarded ratios, so the plain (N - 1) / sum(log mu) is its discard_fraction = 0.
    skdim = pytest.importorskip("skdim")
    ours = twonn(reference_data, fraction=fraction)
    theirs = skdim.id.TwoNN(discard_fraction=1 - fraction).fit(reference_data).dimension_
    assert ours.dimension == pytest.approx(theirs, rel=0.01)
    ours_mle = twonn(reference_data, estimator="mle")
    theirs_mle = skdim.id.TwoNN(discard_fraction=0.0, method="mle").fit(reference_data).dimension_
    assert ours_mle.dimension == pytest.approx(theirs_mle, rel=0.01)


# --------------------------------------------------------------------------- per-layer driver


def test_batches_cover_every_vector_once_and_none_is_short():
    batches = batch_indices(1050, 250, np.random.default_rng(7))
    assert [len(b) for b in batches] == [250, 250, 250, 300]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(1050))
    assert [len(b) for b in batch_indices(100, 250, np.random.default_rng(7))] == [100]


def test_layer_table_is_tidy_and_deterministic_for_a_seed():
    x = hidden_state_like(1300, 48, np.random.default_rng(8))
    table = layer_geometry(x, layer=3, batch_size=400, seed=0)
    assert tuple(table.columns) == TABLE_COLUMNS
    assert tuple(table["metric"]) == METRICS
    assert (table["layer"] == 3).all()
    assert (table["n_batches"] == 3).all() and (table["n_vectors"] == 1300).all()
    assert table[["mean", "std"]].notna().all().all()
    pd.testing.assert_frame_equal(table, layer_geometry(x, layer=3, batch_size=400, seed=0))
    other = layer_geometry(x, layer=3, batch_size=400, seed=1).set_index("metric")
    same = table.set_index("metric")
    assert other.loc["twonn_id", "mean"] != same.loc["twonn_id", "mean"]


def test_layer_metrics_are_means_over_batches():
    x = hidden_state_like(900, 32, np.random.default_rng(9))
    table = layer_geometry(x, layer="final_norm", batch_size=300, seed=4).set_index("metric")
    batches = batch_indices(900, 300, np.random.default_rng(4))
    ids = [twonn(x[b]).dimension for b in batches]
    anis = [anisotropy(x[b]) for b in batches]
    assert table.loc["twonn_id", "mean"] == pytest.approx(np.mean(ids), rel=1e-12)
    assert table.loc["twonn_id", "std"] == pytest.approx(np.std(ids, ddof=1), rel=1e-9)
    assert table.loc["anisotropy", "mean"] == pytest.approx(np.mean(anis), rel=1e-12)
    assert table.loc["n_duplicates", "mean"] == 0


def test_fewer_vectors_than_a_batch_make_one_batch_with_undefined_std(caplog):
    x = np.random.default_rng(10).standard_normal((200, 16))
    table = layer_geometry(x, layer=0, batch_size=4096)
    assert (table["n_batches"] == 1).all() and table["std"].isna().all()
    assert "using one batch" in caplog.text


def test_duplicated_tokens_give_finite_layer_metrics():
    x = hidden_state_like(600, 32, np.random.default_rng(11))
    x[400:] = x[:200]  # 200 vectors twice: 400 points with r1 = 0
    table = layer_geometry(x, layer=1, batch_size=600).set_index("metric")
    assert np.isfinite(table["mean"]).all()
    assert table.loc["n_duplicates", "mean"] == 400


def test_geometry_table_stacks_layers():
    rng = np.random.default_rng(12)
    layers = {0: rng.standard_normal((300, 8)), "final_norm": rng.standard_normal((300, 8))}
    table = geometry_table(layers, batch_size=100, seed=0)
    assert list(table["layer"].unique()) == [0, "final_norm"]
    assert len(table) == 2 * len(METRICS)
    with pytest.raises(ValueError, match="^no layers given$"):
        geometry_table({})


def test_geometry_table_measures_every_layer_with_the_given_settings():
    """A line, a plane and a full 8-D cloud (300 vectors each) in batches of 100: three batches per layer,
    anisotropy 1 > about 1/2 > about 1/8 and TwoNN ID about 1 < 2 < 8, each layer
    exactly its own `layer_geometry` with the same settings."""
    rng = np.random.default_rng(21)
    frame, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    layers = {rank: rng.standard_normal((300, rank)) @ frame[:, :rank].T + 5.0 for rank in (1, 2, 8)}
    settings = dict(batch_size=100, seed=7, fraction=0.9, backend="numpy")
    table = geometry_table(layers, **settings)
    assert (table["n_batches"] == 3).all() and (table["n_vectors"] == 300).all()
    for rank, vectors in layers.items():
        pd.testing.assert_frame_equal(table[table["layer"] == rank].reset_index(drop=True),
                                      layer_geometry(vectors, layer=rank, **settings))
    wide = table.pivot(index="layer", columns="metric", values="mean")
    assert wide.loc[1, "anisotropy"] == pytest.approx(1.0, abs=1e-9)
    assert 0.5 <= wide.loc[2, "anisotropy"] < 0.75 and 0.125 <= wide.loc[8, "anisotropy"] < 0.3
    assert wide.loc[1, "twonn_id"] == pytest.approx(1.0, abs=0.3)
    assert wide.loc[2, "twonn_id"] == pytest.approx(2.0, abs=0.5)
    assert wide.loc[8, "twonn_id"] == pytest.approx(8.0, abs=2.0)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: twonn(np.zeros(10)), ValueError, "2-D array"),
        (lambda: twonn(np.eye(2)), ValueError, "at least 3 vectors"),
        (lambda: twonn(np.eye(5), fraction=0.0), ValueError, r"fraction must be in \(0, 1\]"),
        (lambda: twonn(np.eye(5), fraction=1.5), ValueError, r"fraction must be in \(0, 1\]"),
        (lambda: twonn(np.eye(5), estimator="ols"), ValueError, "unknown estimator"),
        (lambda: twonn(np.eye(5), backend="jax"), ValueError, "unknown backend"),
        (lambda: twonn(np.array([["a", "b"]] * 4)), TypeError, "numeric"),
        (lambda: twonn(np.full((5, 2), np.nan)), ValueError, "NaN or inf"),
        (lambda: twonn(np.ones((5, 3))), ValueError, "only 1 distinct vectors"),
        (lambda: twonn(np.eye(5) * 1e20), ValueError, "too large for float32"),
        (lambda: covariance_spectrum(np.zeros((4, 3, 2))), ValueError, "2-D array"),
        (lambda: covariance_spectrum(np.zeros((1, 4))), ValueError, "at least 2 vectors, got 1$"),
        (lambda: covariance_spectrum(np.zeros((4, 0))), ValueError, "width 0"),
        (lambda: layer_geometry(np.zeros(10), layer=0), ValueError, "2-D array"),
        (lambda: layer_geometry(np.eye(5), layer=0, fraction=2.0), ValueError, "fraction"),
        (lambda: layer_geometry(np.eye(5), layer=0, backend="gpu"), ValueError, "unknown backend"),
        (lambda: twonn_from_distances(np.ones(3), np.zeros(3)), ValueError, "r1 <= r2"),
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_bad_input_is_rejected_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_lists_and_a_single_dimension_are_valid_input():
    """Plain nested lists are arrays too; one dimension holds all of its variance (anisotropy 1)."""
    rows = np.random.default_rng(4).normal(size=(20, 3)) * [5.0, 1.0, 0.5]
    assert anisotropy(rows.tolist()) == anisotropy(rows)
    assert anisotropy(rows[:, :1]) == pytest.approx(1.0)
    np.testing.assert_allclose(covariance_spectrum(rows[:, :1]), [np.var(rows[:, 0], ddof=1)])


def test_linear_fit_on_exact_pareto_quantiles_returns_the_dimension():
    """mu_(i) = (1 - i/N)^(-1/d) puts every point of the fit exactly on the line y = d log mu (the linear
    estimator's own model), so the slope must be d to rounding: an off-by-one in the empirical CDF moves it."""
    n, d = 50, 4.0
    i = np.arange(1, n + 1, dtype=np.float64)
    mu = np.where(i < n, (1 - np.minimum(i, n - 1) / n) ** (-1 / d), 1e6)  # the last (infinite) one is never fitted
    for fraction in (0.5, 0.9, 1.0):
        assert twonn_from_distances(np.ones(n), mu, fraction=fraction).dimension == pytest.approx(d, rel=1e-12)


def test_mle_is_unbiased_on_small_samples():
    """(N - 1) / sum log mu is the unbiased Pareto-shape estimate: averaged over many 6-point samples it is d,
    where N / sum log mu would be d * 6/5."""
    rng, n, d = np.random.default_rng(11), 6, 3.0
    estimates = [twonn_from_distances(np.ones(n), np.exp(rng.exponential(1 / d, n)), estimator="mle").dimension
                 for _ in range(20000)]
    assert np.mean(estimates) == pytest.approx(d, rel=0.02)
    mle = twonn_from_distances(np.r_[0.0, np.ones(n)], np.r_[1.0, np.exp(rng.exponential(1 / d, n))], estimator="mle")
    assert mle.fraction == 1.0 and mle.n_used == n and mle.n_points == n + 1  # every ratio but the duplicate's


@pytest.mark.parametrize(
    ("r1", "r2", "kwargs", "message"),
    [
        ([0.0, 1.0, 1.0, 0.0], [1.0, 2.0, 3.0, 1.0], {}, "only 2 points with a non-zero"),
        ([1.0] * 5, [2.0, 3.0, 4.0, 5.0, 6.0], {"fraction": 0.3}, "keeps 1 ratios"),
        ([1.0] * 5, [1.0] * 5, {"estimator": "mle"}, "equidistant"),
        ([1.0] * 5, [1.0] * 5, {}, "all kept ratios are 1"),
    ],
)
def test_twonn_refuses_too_little_to_fit(r1, r2, kwargs, message):
    with pytest.raises(ValueError, match=message):
        twonn_from_distances(np.array(r1), np.array(r2), **kwargs)


def test_fraction_one_uses_every_ratio_but_the_infinite_one():
    r1 = np.ones(100)
    r2 = np.exp(np.random.default_rng(13).exponential(1 / 3.0, 100))  # log mu ~ Exp(rate d = 3)
    result = twonn_from_distances(r1, r2, fraction=1.0)
    assert result.n_used == 99 and np.isfinite(result.dimension)


# --------------------------------------------------------------------------- figures


def profile_table() -> pd.DataFrame:
    """Two models with known peaks: decoder anisotropy peaks at layer 2 of 4, encoder ID at layer 3 of 6."""
    rows = []
    models = {"dec": ("decoder", 4, [0.1, 0.3, 0.9, 0.5, 0.2]), "enc": ("encoder", 6, [0.2] * 7)}
    ids = {"dec": [5, 9, 7, 6, 4], "enc": [3, 4, 8, 12, 6, 5, 4]}
    for model, (kind, n_layers, anis) in models.items():
        for layer in range(n_layers + 1):
            for metric, value in (("anisotropy", anis[layer]), ("twonn_id", ids[model][layer])):
                rows.append(dict(model=model, kind=kind, n_layers=n_layers, layer=layer,
                                 metric=metric, mean=value, std=0.05 * value, n_batches=3, n_vectors=9000))
        rows.append(dict(model=model, kind=kind, n_layers=n_layers, layer="final_norm",
                         metric="anisotropy", mean=5.0, std=0.0, n_batches=3, n_vectors=9000))
    return pd.DataFrame(rows)


def data_lines(ax) -> list:
    """Plotted profiles, without seaborn's empty legend proxies."""
    return [line for line in ax.get_lines() if len(line.get_xdata())]


def test_anisotropy_figure_has_a_decoder_and_an_encoder_panel():
    fig = plot_anisotropy_profiles(profile_table())
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["decoders", "encoders"]
    assert [len(data_lines(ax)) for ax in axes] == [1, 1]
    assert [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes] == [["dec"], ["enc"]]
    x, y = data_lines(axes[0])[0].get_data()
    np.testing.assert_allclose(x, [0, 0.25, 0.5, 0.75, 1.0])  # relative depth; final_norm left out
    np.testing.assert_allclose(y, [0.1, 0.3, 0.9, 0.5, 0.2])


def test_intrinsic_dimension_figure_has_one_line_per_model():
    fig = plot_intrinsic_dimension_profiles(profile_table())
    (ax,) = fig.get_axes()
    assert len(data_lines(ax)) == 2
    assert "intrinsic dimension" in ax.get_ylabel()


def test_profile_summary_finds_the_peaks():
    summary = summarise_profiles(profile_table()).set_index(["model", "metric"])
    assert summary.loc[("dec", "anisotropy"), "peak_layer"] == 2
    assert summary.loc[("dec", "anisotropy"), "peak_relative_depth"] == 0.5
    assert summary.loc[("dec", "anisotropy"), "peak_value"] == 0.9
    assert summary.loc[("dec", "anisotropy"), "min_value"] == 0.1
    assert summary.loc[("enc", "twonn_id"), "peak_layer"] == 3
    assert summary.loc[("enc", "twonn_id"), "peak_relative_depth"] == 0.5
    assert summary.loc[("enc", "twonn_id"), "min_layer"] == 0


def test_standardised_anisotropy_ignores_a_single_outlier_dimension():
    """One dimension 100× larger makes raw anisotropy ≈ 1; on z-scored dimensions it is ≈ 1/d again."""
    rng = np.random.default_rng(3)
    d = 20
    x = rng.standard_normal((6000, d))
    x[:, 7] *= 100.0
    table = layer_geometry(x, layer=0, batch_size=6000, seed=0).set_index("metric")["mean"]
    assert table["anisotropy"] > 0.95
    assert table["anisotropy_standardised"] == pytest.approx(1 / d, rel=0.25)


# --------------------------------------------------------------------------- exact in float32


def far_clusters(rng: np.random.Generator, n: int = 4096, d: int = 5) -> np.ndarray:
    """Two tight clusters (spread 0.1) at +-500: float32 |a - b|^2 from the GEMM identity cancels
    ~10^6 against ~10^-2, the case massive activations produce."""
    centres = np.where(np.arange(n)[:, None] < n // 2, 500.0, -500.0)
    return centres + 0.1 * rng.standard_normal((n, d))


def with_duplicate_pairs(x: np.ndarray, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Copy n_pairs distinct rows of the first (far) cluster onto n_pairs others: 2 n_pairs rows
    with an identical twin."""
    picked = rng.choice(len(x) // 2, 2 * n_pairs, replace=False)
    y = x.copy()
    y[picked[n_pairs:]] = y[picked[:n_pairs]]
    return y


@pytest.mark.parametrize("backend", ["numpy", pytest.param("cupy", marks=pytest.mark.skipif(
    _cupy_with_device() is None, reason="no CUDA GPU with CuPy"))])
@pytest.mark.parametrize("n_pairs", [0, 300])
def test_neighbours_of_far_clusters_equal_a_float64_brute_force(backend, n_pairs):
    rng = np.random.default_rng(11)
    x = with_duplicate_pairs(far_clusters(rng), n_pairs, rng)
    r1, r2 = two_nearest_neighbour_distances(x, backend=backend)
    o1, o2 = brute_two_nn(x)
    np.testing.assert_allclose(r1, o1, rtol=1e-9, atol=0)
    np.testing.assert_allclose(r2, o2, rtol=1e-9, atol=0)
    assert int((r1 == 0).sum()) == int((o1 == 0).sum()) == 2 * n_pairs
    result = twonn(x, backend=backend)
    assert result.n_duplicates == 2 * n_pairs and result.n_merged == n_pairs
    u1, u2 = brute_two_nn(np.unique(x, axis=0))  # TwoNN keeps one copy of each vector
    assert abs(result.dimension - twonn_from_distances(u1, u2).dimension) < 1e-9


def test_twonn_of_far_clusters_is_their_dimension():
    """Before the certified shortlist, 3,941 of these r1 were wrong and TwoNN said 4.61."""
    assert twonn(far_clusters(np.random.default_rng(12))).dimension == pytest.approx(5.0, abs=0.15)


def test_well_conditioned_data_needs_no_fallback_and_far_data_does():
    rng = np.random.default_rng(13)
    near = _two_nn(rng.standard_normal((2000, 16)), np, 512, 8)
    far = _two_nn(far_clusters(rng, n=2000), np, 512, 8)
    assert near.n_fallback == 0
    assert far.n_fallback > 1000  # most rows cannot be certified from float32 there


@pytest.mark.parametrize("multiplicity", [2, 3, 5])
def test_copies_give_the_brute_force_r2_too(multiplicity):
    """A row with one copy has r2 = its nearest distinct row; with two or more copies r2 = 0; a row
    whose nearest distinct row has copies has r2 = r1."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((300, 4))
    x[1:multiplicity] = x[0]
    x[101:100 + multiplicity] = x[100]
    found = _two_nn(x, np, 64, 4)
    o1, o2 = brute_two_nn(x)
    np.testing.assert_allclose(found.r1, o1, rtol=1e-12, atol=0)
    np.testing.assert_allclose(found.r2, o2, rtol=1e-12, atol=0)
    assert found.n_duplicates == 2 * multiplicity


def test_negative_zero_is_a_duplicate_of_zero():
    x = np.random.default_rng(15).standard_normal((50, 3))
    x[0] = 0.0
    x[1] = -0.0
    assert _two_nn(x, np, 64, 4).n_duplicates == 2


def test_the_last_resort_brute_force_is_exact(monkeypatch):
    """Rows even the float64 shortlist cannot certify are compared with every row by differences."""
    monkeypatch.setattr(neighbours, "_float64_error_factor", lambda d: 1e6)
    monkeypatch.setattr(neighbours, "_float32_error_factor", lambda d: 1e6)
    x = far_clusters(np.random.default_rng(16), n=400)
    found = _two_nn(x, np, 64, 4)
    o1, o2 = brute_two_nn(x)
    assert found.n_fallback == 400
    np.testing.assert_allclose(found.r1, o1, rtol=1e-12, atol=0)
    np.testing.assert_allclose(found.r2, o2, rtol=1e-12, atol=0)


def test_a_hash_collision_falls_back_to_comparing_rows(monkeypatch):
    """With every row hashed alike, distinct rows must still not count as duplicates."""
    monkeypatch.setattr(neighbours, "_hash_multipliers", lambda d: np.zeros(d, dtype=np.uint64))
    x = np.random.default_rng(17).standard_normal((60, 3))
    x[5] = x[9]
    found = _two_nn(x, np, 64, 4)
    assert found.n_duplicates == 2
    np.testing.assert_allclose(found.r1, brute_two_nn(x)[0], rtol=1e-12, atol=0)


def test_dropped_counts_are_per_layer_numbers_and_fractions():
    """Layer 0 holds 300 vectors copied onto 300 others (300 copies merged of 2,000); layer 1 none."""
    rng = np.random.default_rng(18)
    embeddings = rng.standard_normal((2000, 8))
    embeddings[1000:1300] = embeddings[:300]
    table = geometry_table({0: embeddings, 1: rng.standard_normal((2000, 8))}, batch_size=2000, seed=0)
    sentence = dropped_sentence(table.assign(model="planted"))
    assert "layer~0 (the embedding output) merges 300 of 2000 vectors (15\\%)" in sentence
    assert "the other layers at most 0 (0\\%, layer 1)" in sentence
    assert "and 0 of its 4000 layer-vectors needed the float64 recomputation" in sentence


# --------------------------------------------------------------------------- standardised anisotropy, known answers
# Against its analytic value on data with large per-dimension means: the top eigenvalue share of the
# correlation matrix. Zero-mean data cannot tell the standard deviation from the raw RMS; with means far above
# the spread, dividing by the RMS gives (almost) the raw anisotropy instead.

N, D, RHO = 600, 8, 0.3


def planted(means: np.ndarray, scales: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rows whose sample correlation is exactly (1 - RHO) I + RHO 11ᵀ, scaled per dimension and shifted."""
    g = np.random.default_rng(seed).standard_normal((N, D))
    g -= g.mean(axis=0)
    w, v = np.linalg.eigh(g.T @ g / N)
    white = g @ v @ np.diag(w ** -0.5) @ v.T  # sample covariance exactly I
    corr = (1 - RHO) * np.eye(D) + RHO * np.ones((D, D))
    return white @ np.linalg.cholesky(corr).T * scales + means


def metric(table, name: str) -> float:
    return float(table.set_index("metric").loc[name, "mean"])


@pytest.mark.parametrize("mean_scale", [0.0, 50.0, 1e4])
def test_standardised_anisotropy_is_the_correlation_matrix_top_share(mean_scale):
    scales = 2.0 ** np.arange(D)  # one dimension dominates the raw spectrum
    means = mean_scale * np.linspace(1, 3, D)
    table = layer_geometry(planted(means, scales), layer=0, batch_size=N, seed=0, backend="numpy")
    # Correlation (1 - ρ) I + ρ 11ᵀ: top eigenvalue 1 + (D - 1) ρ out of a trace of D.
    assert metric(table, "anisotropy_standardised") == pytest.approx((1 + (D - 1) * RHO) / D, rel=1e-9)
    # The raw anisotropy is the top share of diag(s) R diag(s), whatever the means: it must differ.
    cov = np.outer(scales, scales) * ((1 - RHO) * np.eye(D) + RHO)
    raw = np.linalg.eigvalsh(cov)[-1] / np.trace(cov)
    assert metric(table, "anisotropy") == pytest.approx(raw, rel=1e-9)
    assert abs(raw - (1 + (D - 1) * RHO) / D) > 0.1


@pytest.mark.parametrize("unit", [1e-3, 1.0])
def test_standardised_anisotropy_rescales_small_dimensions_too(unit):
    """Dimensions with an RMS below 1 are z-scored as well: the correlation matrix's top share, whatever the units."""
    scales = unit * 2.0 ** np.arange(D)
    table = layer_geometry(planted(np.zeros(D), scales), layer=0, batch_size=N, seed=0, backend="numpy")
    assert metric(table, "anisotropy_standardised") == pytest.approx((1 + (D - 1) * RHO) / D, rel=1e-9)


# --------------------------------------------------------------------------- per-layer batches, known answers

def brute_distances(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and second nearest-neighbour distances by float64 differences of every pair."""
    dist = cdist(x.astype(np.float64), x.astype(np.float64))
    np.fill_diagonal(dist, np.inf)
    dist.sort(axis=1)
    return dist[:, 0], dist[:, 1]


def test_three_collinear_points_give_the_hand_computed_table():
    """Points at 0, 1 and 3 on a line (plus two constant dimensions): ratios r2/r1 = 3, 2, 3/2.
    Linear fit through the origin on the 2 = min(int(0.9 * 3), 3 - 1) smallest: xs = log 3/2, log 2 against
    ys = -log(1 - 1/3), -log(1 - 2/3); MLE (3 - 1) / log(3 * 2 * 3/2) = 2 / log 9. One direction holds all
    the variance, raw and z-scored (the constant dimensions have scale 0 and stay 0)."""
    x = np.array([[0.0, 5.0, 5.0], [1.0, 5.0, 5.0], [3.0, 5.0, 5.0]])
    table = layer_geometry(x, layer=4, batch_size=3, seed=0, backend="numpy").set_index("metric")
    xs, ys = np.log([1.5, 2.0]), np.array([np.log(1.5), np.log(3.0)])
    expected = {"anisotropy": 1.0, "top5_share": 1.0, "top10_share": 1.0, "anisotropy_standardised": 1.0,
                "twonn_id": (xs @ ys) / (xs @ xs), "twonn_mle_id": 2 / np.log(9.0),
                "n_duplicates": 0.0, "duplicate_fraction": 0.0, "n_merged": 0.0, "n_fallback": 0.0}
    for name, value in expected.items():
        assert table.loc[name, "mean"] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    assert table["std"].isna().all()
    assert (table["n_batches"] == 1).all() and (table["n_vectors"] == 3).all()


def test_batch_with_copies_reports_both_estimators_and_the_duplicate_fraction():
    """12 rows of 3-D, two of them copies of others: 4 rows with r1 = 0 (4 / 12 of the batch), 2 copies
    merged; twonn_id and twonn_mle_id are the linear and MLE fits on the 10 ratios of a brute force over
    the 10 distinct rows."""
    x = np.random.default_rng(30).standard_normal((12, 3))
    x[10], x[11] = x[0], x[1]
    table = layer_geometry(x, layer=0, batch_size=12, seed=0, backend="numpy").set_index("metric")["mean"]
    r1, r2 = brute_distances(x[:10])
    log_mu = np.sort(np.log(r2 / r1))
    n = log_mu.size
    assert n == 10
    used = int(0.9 * n)  # 9 = n - 1
    ys = -np.log(1 - np.arange(1, used + 1) / n)
    assert table["twonn_id"] == pytest.approx(log_mu[:used] @ ys / (log_mu[:used] @ log_mu[:used]), rel=1e-12)
    assert table["twonn_mle_id"] == pytest.approx((n - 1) / log_mu.sum(), rel=1e-12)
    assert table["n_duplicates"] == 4 and table["n_merged"] == 2
    assert table["duplicate_fraction"] == pytest.approx(4 / 12, rel=1e-15)


def test_no_layers_is_refused():
    with pytest.raises(ValueError, match="no layers given"):
        geometry_table({}, batch_size=3)


def test_one_batch_warning_names_the_layer_and_only_when_short(caplog):
    x = np.random.default_rng(31).standard_normal((10, 2))
    with caplog.at_level(logging.WARNING, logger="layerwise.geometry.layers"):
        layer_geometry(x, layer="L7", batch_size=10, backend="numpy")  # exactly one full batch
        assert caplog.records == []
        layer_geometry(x, layer="L7", batch_size=11, backend="numpy")
    assert [r.getMessage() for r in caplog.records] == ["layer L7: 10 vectors < batch_size 11; using one batch"]


@pytest.mark.parametrize("n, batch_size, sizes", [(9, 3, [3, 3, 3]), (3, 3, [3]), (3, 5, [3]), (11, 3, [3, 3, 5])])
def test_smallest_batches_are_allowed_and_cut_the_seeded_permutation(n, batch_size, sizes):
    batches = batch_indices(n, batch_size, np.random.default_rng(32))
    assert [len(b) for b in batches] == sizes
    np.testing.assert_array_equal(np.concatenate(batches), np.random.default_rng(32).permutation(n))


@pytest.mark.parametrize("n, batch_size, message", [(10, 2, "batch_size must be at least 3, got 2"),
                                                    (2, 3, "need at least 3 vectors, got 2")])
def test_too_small_batches_are_refused(n, batch_size, message):
    with pytest.raises(ValueError, match=message):
        batch_indices(n, batch_size, np.random.default_rng(0))


# --------------------------------------------------------------------------- spectrum, known answers


def test_rank_deficient_spectrum_has_no_negative_eigenvalue():
    """Rank 2 in 6 dimensions: eigvalsh of the exact-zero directions comes out at about -1e-14; the spectrum
    holds the 2 positive values and zeros, never negatives, and all the variance in the top 2."""
    rng = np.random.default_rng(33)
    x = rng.standard_normal((40, 2)) @ rng.standard_normal((2, 6))
    spectrum = covariance_spectrum(x, backend="numpy")
    assert spectrum.shape == (6,)
    assert (spectrum >= 0).all()
    assert spectrum[2:].max() < 1e-12 * spectrum[0]
    centred = x - x.mean(axis=0)
    assert spectrum.sum() == pytest.approx(np.trace(centred.T @ centred) / 39, rel=1e-12)


def test_top_k_shares_add_up_in_float64():
    """A float32 spectrum [1, 3e-8]: float32 rounds 1 + 3e-8 to 1 (half an ulp is 6e-8); float64 does not."""
    small = float(np.float32(3e-8))
    shares = top_k_shares(np.array([small, 1.0], dtype=np.float32), (1, 2))
    assert shares[1] == pytest.approx(1 / (1 + small), rel=1e-15)
    assert shares[1] < 1.0
    assert shares[2] == 1.0


@pytest.mark.parametrize("spectrum, ks, message", [
    (np.ones((2, 2)), (1,), "spectrum must be a non-empty 1-D array"),
    (np.array([]), (1,), "spectrum must be a non-empty 1-D array"),
    (np.zeros(3), (1,), "spectrum has zero total variance"),
    (np.ones(3), (0, 1), r"ks must be positive, got \(0, 1\)"),
])
def test_top_k_shares_refuses_what_has_no_share(spectrum, ks, message):
    with pytest.raises(ValueError, match=message):
        top_k_shares(spectrum, ks)


def test_anisotropy_uses_the_backend_it_is_given():
    with pytest.raises(ValueError, match="unknown backend 'abacus'"):
        anisotropy(np.eye(3), backend="abacus")


# --------------------------------------------------------------------------- the float64 recomputation


def two_far_clusters(rng: np.random.Generator, n: int = 60, d: int = 3) -> np.ndarray:
    """A tight cluster (spread 0.01) at +1e8 e_1 and a loose one (spread 1000) at -1e8 e_1. Centred norms are
    ~1e8, so a GEMM entry errs by up to ~(d + 4) u (2e8)^2: ~1e10 in float32 (neither cluster's gaps survive,
    every row falls back) and ~30 in float64 (the loose cluster's squared gaps, ~1e5, are certified; the tight
    one's, ~1e-4, are not: those rows, and only those, must be compared with every row by differences)."""
    tight = 1e8 * np.eye(d)[0] + 0.01 * rng.standard_normal((n, d))
    loose = -1e8 * np.eye(d)[0] + 1000.0 * rng.standard_normal((n, d))
    return np.concatenate([tight, loose])


def test_float64_recomputation_is_exact_and_brute_forces_only_what_it_cannot_certify(monkeypatch):
    x = two_far_clusters(np.random.default_rng(34))
    exact_two = neighbours._exact_two
    brute_forced = []

    def spy(rows_of, rows, cand, xp):
        if cand.shape[1] == rows_of.shape[0] - 1:  # compared with every other row
            brute_forced.append(rows_of[int(rows[0])].copy())
        return exact_two(rows_of, rows, cand, xp)

    monkeypatch.setattr(neighbours, "_exact_two", spy)
    found = _two_nn(x, np, 2048, 8)
    o1, o2 = brute_distances(x)
    np.testing.assert_allclose(found.r1, o1, rtol=1e-12, atol=0)
    np.testing.assert_allclose(found.r2, o2, rtol=1e-12, atol=0)
    assert found.n_fallback == 120 and found.n_duplicates == 0
    brute_forced = np.array(brute_forced)
    assert len(brute_forced) == 60 and (brute_forced[:, 0] > 0).all()  # the tight cluster, each row once
    assert len({row.tobytes() for row in brute_forced}) == 60


def test_float64_rows_are_exact_for_any_centre_and_shortlist():
    """Centred on the origin instead of the mean, six points 0.01 apart at 1e8 have float64 GEMM distances of
    pure rounding noise; with a shortlist of 4 of the 5 others the two nearest must still come out exact."""
    for seed in range(3):
        x = 1e8 + 0.01 * np.random.default_rng(seed).standard_normal((6, 2))
        norms_sq = np.einsum("ij,ij->i", x, x)
        d1, d2, near = _float64_rows(x, np.zeros(2), norms_sq, np.arange(6), 4, 6, np, _float64_error_factor(2))
        o1, o2 = brute_distances(x)
        np.testing.assert_allclose(np.sqrt(d1), o1, rtol=1e-12, atol=0)
        np.testing.assert_allclose(np.sqrt(d2), o2, rtol=1e-12, atol=0)
        dist = cdist(x, x)
        np.fill_diagonal(dist, np.inf)
        np.testing.assert_array_equal(near, dist.argmin(axis=1))


@pytest.mark.parametrize("d", [1, 64, 4096, 2**30])
def test_error_factors_are_the_documented_rounding_bounds(d):
    """Higham's gamma_n = n u / (1 - n u) for the (d + 2)-term dot product, plus u per rounded operand: 4 in
    float32 (two rows, two squared norms), 2 in float64 (the squared norms); times 1.01. (A width of 2^30 is
    absurd for float32 but makes gamma's denominator visible in float64.)"""
    def gamma(n: int, u: float) -> float:
        return n * u / (1 - n * u)
    u32, u64 = 2.0**-24, 2.0**-53
    if (d + 2) * u32 < 0.5:
        assert _float32_error_factor(d) == pytest.approx(1.01 * (gamma(d + 2, u32) + 4 * u32), rel=1e-12, abs=0)
    assert _float64_error_factor(d) == pytest.approx(1.01 * (gamma(d + 2, u64) + 2 * u64), rel=1e-12, abs=0)


# --------------------------------------------------------------------------- input checks that guard a number


@pytest.mark.parametrize("r1, r2", [([1.0, 1.0, 1.0], [2.0, 2.0]), (np.ones((3, 3)), 2 * np.ones((3, 3)))])
def test_distances_of_other_shapes_are_refused(r1, r2):
    with pytest.raises(ValueError, match="r1 and r2 must be 1-D of equal length"):
        twonn_from_distances(r1, r2)


def test_a_negative_distance_is_refused():
    with pytest.raises(ValueError, match="need 0 <= r1 <= r2 for every point"):
        twonn_from_distances([-1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0])


@pytest.mark.parametrize("kwargs, message", [(dict(block_size=0), "block_size must be positive, got 0"),
                                             (dict(n_candidates=1), "n_candidates must be at least 2, got 1")])
def test_twonn_passes_its_search_settings_on(kwargs, message):
    x = np.random.default_rng(35).standard_normal((20, 3))
    with pytest.raises(ValueError, match=message):
        twonn(x, backend="numpy", **kwargs)
    with pytest.raises(ValueError, match=message):
        two_nearest_neighbour_distances(x, backend="numpy", **kwargs)


def test_a_block_of_one_row_is_allowed_and_exact():
    x = np.random.default_rng(36).standard_normal((20, 3))
    r1, r2 = two_nearest_neighbour_distances(x, block_size=1, backend="numpy")
    o1, o2 = brute_distances(x)
    np.testing.assert_allclose(r1, o1, rtol=1e-12, atol=0)
    np.testing.assert_allclose(r2, o2, rtol=1e-12, atol=0)


def test_certification_is_the_documented_inequality_at_its_boundary():
    """|a| = 4, sqrt(d2) = 1, factor 1/16: the margin is (2 * 4 + 1)^2 / 16 = 81/16, so d2 = 1 is certified
    exactly when kth >= 1 + 81/16 = 6.0625 (all dyadic: no rounding)."""
    d2 = np.array([1.0, 1.0, 1.0])
    kth = np.array([6.0625, 6.0, 4.5])
    certified = neighbours._certified(d2, kth, np.full(3, 16.0), 1 / 16, np)
    np.testing.assert_array_equal(certified, [True, False, False])


def test_geometry_inputs_are_refused_with_their_whole_message():
    from layerwise.geometry.intrinsic import twonn_from_distances
    from layerwise.geometry.spectrum import covariance_spectrum, top_k_shares

    with pytest.raises(ValueError, match=r"^vectors have width 0$"):
        covariance_spectrum(np.zeros((5, 0)))
    with pytest.raises(ValueError, match=r"^spectrum must be a non-empty 1-D array$"):
        top_k_shares(np.zeros(0))
    with pytest.raises(ValueError, match=r"^spectrum has zero total variance \(all vectors identical\?\)$"):
        top_k_shares(np.zeros(3))
    with pytest.raises(ValueError, match=r"^need 0 <= r1 <= r2 for every point$"):
        twonn_from_distances(np.array([1.0, 2.0, 1.0]), np.array([2.0, 1.0, 3.0]))
