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
    from layerwise.probes.controls import normalize_rows

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(600, 12)) * rng.uniform(0.5, 3.0, size=(600, 1))).astype(np.float32)
    y = np.repeat(np.arange(6), 100)
    keep = y > 0
    common = dict(methods=("pca",), n_per_layer=20, seed=3)
    for kwargs, copied in [(dict(keep=keep), X[keep]), (dict(transform=normalize_rows), normalize_rows(X)),
                           (dict(keep=keep, transform=normalize_rows), normalize_rows(X)[keep])]:
        expected = reduction_table(copied, y[kwargs["keep"]] if "keep" in kwargs else y, **common)
        pd.testing.assert_frame_equal(reduction_table(X, y, **common, **kwargs), expected)
    assert not reduction_table(X, y, keep=keep, **common)["layer"].eq(0).any()
    with pytest.raises(ValueError, match="boolean mask"):
        reduction_table(X, y, keep=np.flatnonzero(keep), **common)
