"""Controls: unit norms, moment-matched random vectors, label permutations, punctuation removal."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.probes.controls import (LayerMoments, layer_moments, matched_random_vectors, normalise_rows,
                                       shuffled_labels)
from layerwise.resources.punctuation import strip_punctuation


def test_normalise_rows_gives_unit_norms_and_keeps_directions():
    X = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32) * 7
    unit = normalise_rows(X)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(unit * np.linalg.norm(X, axis=1, keepdims=True), X, rtol=1e-5)
    with pytest.raises(ValueError, match="zero norm"):
        normalise_rows(np.vstack([X, np.zeros((1, 6))]))


def test_matched_random_vectors_keep_layer_moments_and_drop_correlations():
    rng = np.random.default_rng(1)
    n = 20000
    y = np.repeat([0, 1], n // 2)
    base = rng.standard_normal(n)
    # dims 0 and 1 strongly correlated; layer 1 has another mean and scale
    X = np.stack([base, base + 0.1 * rng.standard_normal(n), rng.standard_normal(n)], axis=1)
    X[y == 1] = 4.0 + 3.0 * X[y == 1]
    X = X.astype(np.float32)
    fake = matched_random_vectors(X, y, seed=0)
    for layer in (0, 1):
        real, drawn = X[y == layer], fake[y == layer]
        se = real.std(0) / np.sqrt(len(real))
        assert (np.abs(drawn.mean(0) - real.mean(0)) < 5 * se).all()
        np.testing.assert_allclose(drawn.std(0), real.std(0), rtol=0.05)
        assert np.corrcoef(real[:, 0], real[:, 1])[0, 1] > 0.99
        assert abs(np.corrcoef(drawn[:, 0], drawn[:, 1])[0, 1]) < 0.05
    np.testing.assert_array_equal(fake, matched_random_vectors(X, y, seed=0))
    assert not np.array_equal(fake, matched_random_vectors(X, y, seed=1))


def test_shuffled_labels_is_a_seeded_permutation():
    y = np.repeat(np.arange(5), 20)
    a, b, c = shuffled_labels(y, 3), shuffled_labels(y, 3), shuffled_labels(y, 4)
    np.testing.assert_array_equal(np.sort(a), y)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, y)
    with pytest.raises(ValueError, match="1-D"):
        shuffled_labels(y.reshape(10, 10))


@pytest.mark.parametrize("text, expected", [
    ("Hello, world! It's 5 o'clock.", "Hello world Its 5 oclock"),
    ("A great film<br /><br />Really -- great.", "A great filmbr br Really great"),
    ("«Très» bien… (vraiment)", "Très bien vraiment"),
    ("line one.\nline two ;", "line one\nline two"),
    ("no punctuation here", "no punctuation here"),
    ("", ""),
])
def test_strip_punctuation(text, expected):
    assert strip_punctuation(text) == expected


def test_strip_punctuation_rejects_non_strings():
    with pytest.raises(TypeError, match="str"):
        strip_punctuation(b"bytes")


def test_layer_moments_scalar_is_one_mean_and_variance_of_unit_norm_entries():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(1.0, 0.1, (200, 8)), 50 * rng.normal(0.0, 1.0, (200, 8))]).astype(np.float32)
    y = np.repeat([0, 1], 200)
    moments = layer_moments(X, y, "scalar")
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    np.testing.assert_allclose(moments.mean[:, 0], [unit[:200].mean(), unit[200:].mean()], rtol=1e-5)
    np.testing.assert_allclose(moments.std[:, 0], [unit[:200].std(), unit[200:].std()], rtol=1e-5)
    fake = moments.sample(y, seed=0)
    # the raw norms differ 50-fold; the scalar control keeps only unit-norm-scale entries for both layers
    norms = np.linalg.norm(fake, axis=1)
    assert 0.7 < norms[:200].mean() < 1.3 and 0.7 < norms[200:].mean() < 1.3
    per_dim = layer_moments(X, y, "per_dimension")
    assert per_dim.mean.shape == (2, 8) and abs(np.linalg.norm(per_dim.sample(y, 0)[200:], axis=1).mean() - 140) < 20
    with pytest.raises(ValueError, match="random control"):
        layer_moments(X, y, "bogus")


def test_covariance_control_keeps_each_layers_mean_and_covariance():
    from layerwise.probes.controls import layer_moments
    rng = np.random.default_rng(0)
    n, width = 20000, 3
    y = np.repeat(np.arange(2), n)
    mixing = [np.array([[1.0, 0, 0], [0.9, 0.3, 0], [0, 0, 0.0]]), np.array([[2.0, 0, 0], [-1.0, 1.0, 0], [0, 0.5, 1]])]
    X = np.concatenate([rng.standard_normal((n, width)) @ m.T + 5 * i for i, m in enumerate(mixing)]).astype(np.float32)
    moments = layer_moments(X, y, "covariance")
    Z = moments.sample(y, seed=1)
    for layer, m in enumerate(mixing):
        rows = Z[y == layer].astype(np.float64)
        np.testing.assert_allclose(rows.mean(0), 5 * layer, atol=0.05)
        # the correlations survive (the per-dimension control drops them); a constant dimension stays constant
        np.testing.assert_allclose(np.cov(rows, rowvar=False), m @ m.T, rtol=0.05, atol=0.03)
    assert np.ptp(Z[y == 0, 2]) < 1e-3
    per_dim = layer_moments(X, y, "per_dimension").sample(y, seed=1)
    assert abs(np.corrcoef(per_dim[y == 0, :2], rowvar=False)[0, 1]) < 0.05


# --------------------------------------------------------------------------- known answers

# --- controls -----------------------------------------------------------------------------------------------


def test_normalise_rows_by_hand_and_in_place():
    X = np.array([[3.0, 4.0], [0.0, -2.0], [1.0, 0.0]], dtype=np.float32)
    unit = normalise_rows(X)
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, -1.0], [1.0, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(X[0], [3.0, 4.0])  # a copy
    same = normalise_rows(X, overwrite=True)
    assert same is X
    np.testing.assert_allclose(X, unit, rtol=1e-6)


def test_layer_moments_scalar_by_hand():
    # layer 2: unit rows (.6 .8 0 0) and (0 0 0 1): entries sum 2.4 over 8 -> mean .3; squares sum 2 -> E x^2 = .25;
    # var = .25 - .09 = .16 -> std .4 (population). layer 5: unit (1 0 0 0), (0 1 0 0): mean .25, var .25 - .0625
    X = np.array([[1.0, 0.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0], [0.0, 1.0, 0.0, 0.0]],
                 dtype=np.float32)
    y = np.array([5, 2, 2, 5])
    moments = layer_moments(X, y, "scalar")
    np.testing.assert_array_equal(moments.layers, [2, 5])
    assert moments.mean.shape == (2, 1) and moments.std.shape == (2, 1) and moments.width == 4
    np.testing.assert_allclose(moments.mean[:, 0], [0.3, 0.25], rtol=1e-6)
    np.testing.assert_allclose(moments.std[:, 0], [0.4, np.sqrt(0.1875)], rtol=1e-6)


def test_layer_moments_per_dimension_by_hand():
    # layer 0: rows (1 2), (3 6), (5 10): mean (3 6); population var (4 + 0 + 4) / 3 = 8/3 and 4x that
    # layer 1: rows (-1 0), (1 0): mean (0 0), std (1 0)
    X = np.array([[1.0, 2.0], [-1.0, 0.0], [3.0, 6.0], [1.0, 0.0], [5.0, 10.0]], dtype=np.float32)
    y = np.array([0, 1, 0, 1, 0])
    moments = layer_moments(X, y, "per_dimension")
    np.testing.assert_allclose(moments.mean, [[3.0, 6.0], [0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(moments.std, [[np.sqrt(8 / 3), 2 * np.sqrt(8 / 3)], [1.0, 0.0]], rtol=1e-6)


def test_sampled_vectors_have_each_layers_planted_moments():
    moments = LayerMoments("per_dimension", np.array([3, 8]), np.array([[10.0, -5.0, 0.0], [0.0, 2.0, 100.0]]),
                           np.array([[1.0, 3.0, 0.5], [2.0, 0.1, 4.0]]), 3)
    y = np.tile([8, 3], 4000)  # interleaved labels that are not row indices
    drawn = moments.sample(y, seed=1)
    assert drawn.dtype == np.float32 and drawn.shape == (8000, 3)
    for i, layer in enumerate([3, 8]):
        rows = drawn[y == layer].astype(np.float64)
        # 4000 draws: the mean is within 5 standard errors, the std within 5%
        assert (np.abs(rows.mean(0) - moments.mean[i]) < 5 * moments.std[i] / np.sqrt(4000)).all()
        np.testing.assert_allclose(rows.std(0), moments.std[i], rtol=0.05)
    np.testing.assert_array_equal(moments.sample(y, seed=1), drawn)
    assert not np.array_equal(moments.sample(y, seed=2), drawn)
    out = np.zeros((8000, 3), dtype=np.float32)
    assert moments.sample(y, seed=1, out=out) is out
    np.testing.assert_array_equal(out, drawn)
    with pytest.raises(ValueError, match="out must be float32"):
        moments.sample(y, seed=1, out=np.zeros((8000, 3)))
    with pytest.raises(ValueError, match="out must be float32"):
        moments.sample(y, seed=1, out=np.zeros((8000, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"without moments: \[4\]"):
        moments.sample(np.array([3, 4]))


def test_scalar_moments_give_every_coordinate_the_same_distribution():
    moments = LayerMoments("scalar", np.array([0, 1]), np.array([[0.5], [-0.2]]), np.array([[0.1], [0.3]]), 5)
    y = np.repeat([0, 1], 4000)
    drawn = moments.sample(y, seed=0).astype(np.float64)
    for layer, mean, std in ((0, 0.5, 0.1), (1, -0.2, 0.3)):
        rows = drawn[y == layer]
        assert (np.abs(rows.mean(0) - mean) < 5 * std / np.sqrt(4000)).all()
        np.testing.assert_allclose(rows.std(0), std, rtol=0.05)
