"""Standardised anisotropy against its analytic value on data with large per-dimension means: the top
eigenvalue share of the correlation matrix. Zero-mean data cannot tell the standard deviation from the raw
RMS; with means far above the spread, dividing by the RMS gives (almost) the raw anisotropy instead."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.geometry import layer_geometry

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

import logging  # noqa: E402

from scipy.spatial.distance import cdist  # noqa: E402

from layerwise.geometry import (  # noqa: E402
    anisotropy, batch_indices, covariance_spectrum, geometry_table, top_k_shares, two_nearest_neighbour_distances,
    twonn, twonn_from_distances,
)
from layerwise.geometry import neighbours  # noqa: E402
from layerwise.geometry.neighbours import (  # noqa: E402
    _float32_error_factor, _float64_error_factor, _float64_rows, _two_nn,
)


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
