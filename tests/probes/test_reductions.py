"""2-D maps: balanced subsample, PCA against an SVD, neighbourhoods kept by t-SNE and UMAP."""

import numpy as np
import pandas as pd
import pytest

from layerwise.probes.reductions import embed_2d, reduction_table, subsample_per_layer


def clusters(n_per_layer=40, n_layers=3, width=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_layers), n_per_layer)
    centres = rng.standard_normal((n_layers, width)) * 10
    return (centres[y] + rng.standard_normal((y.size, width))).astype(np.float32), y


def same_layer_neighbour_rate(coords, y):
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.mean(y[d.argmin(1)] == y)


def test_subsample_is_balanced_seeded_and_keeps_small_layers_whole():
    y = np.array([0] * 50 + [1] * 5 + [2] * 30)
    rows = subsample_per_layer(y, 10, seed=0)
    np.testing.assert_array_equal(np.bincount(y[rows]), [10, 5, 10])
    np.testing.assert_array_equal(rows, subsample_per_layer(y, 10, seed=0))
    assert not np.array_equal(rows, subsample_per_layer(y, 10, seed=1))
    with pytest.raises(ValueError, match="n_per_layer"):
        subsample_per_layer(y, 0)


def test_pca_matches_the_top_singular_vectors():
    X, _ = clusters()
    centred = X.astype(np.float64) - X.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    coords = embed_2d(X, "pca")
    for k in range(2):  # each component is defined up to its sign
        sign = np.sign(coords[:, k] @ expected[:, k])
        np.testing.assert_allclose(sign * coords[:, k], expected[:, k], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_nonlinear_maps_keep_layers_apart_and_follow_the_seed(method):
    X, y = clusters()
    coords = embed_2d(X, method, seed=0, perplexity=10, n_neighbors=10)
    assert coords.shape == (y.size, 2) and np.isfinite(coords).all()
    assert same_layer_neighbour_rate(coords, y) > 0.95
    np.testing.assert_allclose(coords, embed_2d(X, method, seed=0, perplexity=10, n_neighbors=10))


def test_reduction_table_is_long_and_labelled():
    X, y = clusters(n_per_layer=30)
    table = reduction_table(X, y, methods=("pca",), n_per_layer=10, seed=2, variant="normalised")
    assert list(table.columns) == ["x", "y", "layer", "method", "variant", "row"]
    assert len(table) == 30 and set(table["method"]) == {"pca"} and set(table["variant"]) == {"normalised"}
    np.testing.assert_array_equal(table["layer"], y[table["row"]])
    with pytest.raises(ValueError, match="unknown methods"):
        reduction_table(X, y, methods=("isomap",))
    with pytest.raises(ValueError, match="method must be"):
        embed_2d(X, "isomap")


def test_a_kept_and_transformed_subsample_is_the_table_of_the_copied_matrix():
    """`keep` and `transform` only avoid copies: the table equals the one of transform(X[keep]), rows included."""
    from layerwise.probes.controls import normalise_rows

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(600, 12)) * rng.uniform(0.5, 3.0, size=(600, 1))).astype(np.float32)
    y = np.repeat(np.arange(6), 100)
    keep = y > 0
    common = dict(methods=("pca",), n_per_layer=20, seed=3)
    for kwargs, copied in [(dict(keep=keep), X[keep]), (dict(transform=normalise_rows), normalise_rows(X)),
                           (dict(keep=keep, transform=normalise_rows), normalise_rows(X)[keep])]:
        expected = reduction_table(copied, y[kwargs["keep"]] if "keep" in kwargs else y, **common)
        pd.testing.assert_frame_equal(reduction_table(X, y, **common, **kwargs), expected)
    assert not reduction_table(X, y, keep=keep, **common)["layer"].eq(0).any()
    with pytest.raises(ValueError, match="boolean mask"):
        reduction_table(X, y, keep=np.flatnonzero(keep), **common)


def test_one_row_per_layer_is_a_valid_subsample():
    y = np.array([0, 0, 0, 1, 1, 2])
    rows = subsample_per_layer(y, 1, seed=0)
    np.testing.assert_array_equal(np.bincount(y[rows]), [1, 1, 1])


def test_subsample_draws_each_row_at_most_once():
    """Layers no larger than n_per_layer come whole, each row once; larger ones give distinct rows."""
    y = np.array([1] * 3 + [0] * 7 + [2] * 40)
    rows = subsample_per_layer(y, 7, seed=0)
    np.testing.assert_array_equal(rows[:10], np.arange(10))  # layers 0 and 1 (7 and 3 rows), complete
    assert np.unique(rows).size == rows.size == 17 and (y[rows[10:]] == 2).all()


def planted_spectrum():
    """8 rows (two layers, interleaved) whose centred coordinates in an orthonormal frame of R^6 are
    Hadamard columns scaled by 5, 2 and 0.5: an exact covariance spectrum 25 > 4 > 0.25, so PCA's
    first axis is 5 h1 and its second 2 h2 (each up to sign)."""
    from scipy.linalg import hadamard

    h = hadamard(8).astype(np.float64)[:, 1:4]  # zero-mean, mutually orthogonal ±1 columns
    coefficients = h * np.array([5.0, 2.0, 0.5])
    frame, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((6, 3)))
    X = 3.0 + coefficients @ frame.T
    return X, np.tile([0, 1], 4), coefficients


def test_pca_table_puts_the_first_component_on_x_and_the_second_on_y():
    X, y, coefficients = planted_spectrum()
    table = reduction_table(X, y, methods=("pca",), n_per_layer=4, seed=0)
    np.testing.assert_array_equal(table["row"], np.arange(8))  # both layers whole, each row once
    for column, k, variance in (("x", 0, 25.0), ("y", 1, 4.0)):
        got, expected = table[column].to_numpy(), coefficients[table["row"], k]
        np.testing.assert_allclose(np.sign(got @ expected) * got, expected, atol=1e-4)
        assert np.mean(got**2) == pytest.approx(variance, rel=1e-5)


def test_table_maps_the_seeded_subsample_with_the_given_parameters():
    """`seed` picks the subsample and seeds each map; `params` reach the map (UMAP's n_neighbors here);
    the method blocks stack under one running index."""
    X, y = clusters(n_per_layer=30)
    table = reduction_table(X, y, methods=("pca", "umap"), n_per_layer=10, seed=1, n_neighbors=5)
    rows = subsample_per_layer(y, 10, seed=1)
    assert not np.array_equal(rows, subsample_per_layer(y, 10, seed=0))
    pd.testing.assert_index_equal(table.index, pd.RangeIndex(2 * rows.size))
    for method in ("pca", "umap"):
        block = table[table["method"] == method]
        np.testing.assert_array_equal(block["row"], rows)
        np.testing.assert_allclose(block[["x", "y"]].to_numpy(),
                                   embed_2d(X[rows], method, seed=1, n_neighbors=5), rtol=1e-5, atol=1e-5)
    umap_seed0 = embed_2d(X[rows], "umap", seed=0, n_neighbors=5)
    umap_default = embed_2d(X[rows], "umap", seed=1)
    for other in (umap_seed0, umap_default):  # the comparison above can tell seed and n_neighbors apart
        assert not np.allclose(table.loc[table["method"] == "umap", ["x", "y"]].to_numpy(), other, atol=1e-3)


@pytest.mark.parametrize("bad", ["short", "integer", "indices"])
def test_keep_must_be_a_boolean_mask_of_every_row(bad):
    """A mask of another length (another data set's) or an integer array (indices or 0/1) is refused."""
    X, y = clusters(n_per_layer=10)
    keep = y > 0
    keep = {"short": keep[:-1], "integer": keep.astype(int), "indices": np.flatnonzero(keep)}[bad]
    with pytest.raises(ValueError):
        reduction_table(X, y, methods=("pca",), n_per_layer=5, keep=keep)
