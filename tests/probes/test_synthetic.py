"""Synthetic layers: layout of rows, distance between consecutive layer means, seeding."""

import numpy as np
import pytest

from layerwise.probes.synthetic import make_layered_vectors


def test_layout_of_rows():
    data = make_layered_vectors(n_texts=3, n_positions=4, n_layers=2, width=5, seed=0)
    assert data.X.shape == (3 * 4 * 3, 5) and data.X.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(data.y), [12, 12, 12])
    np.testing.assert_array_equal(np.bincount(data.text_ids), [12, 12, 12])
    # every (text, position) pair carries all layers once
    keys = set(zip(data.text_ids, data.positions, data.y))
    assert len(keys) == data.y.size


def test_consecutive_layer_means_are_layer_step_apart():
    data = make_layered_vectors(n_texts=400, n_positions=25, n_layers=3, width=8, layer_step=2.5, seed=1)
    means = np.stack([data.X[data.y == layer].mean(0) for layer in range(4)])
    # text offsets are shared by all layers and cancel; the noise mean over 10,000 rows is ~0.01 per dimension
    np.testing.assert_allclose(np.linalg.norm(np.diff(means, axis=0), axis=1), 2.5, atol=0.1)


def test_zero_step_gives_identical_layers_and_seed_is_honoured():
    data = make_layered_vectors(n_texts=400, n_positions=25, n_layers=2, width=4, layer_step=0.0, seed=2)
    means = np.stack([data.X[data.y == layer].mean(0) for layer in range(3)])
    assert np.abs(means - means[0]).max() < 0.1
    np.testing.assert_array_equal(make_layered_vectors(seed=3).X, make_layered_vectors(seed=3).X)
    assert not np.array_equal(make_layered_vectors(seed=3).X, make_layered_vectors(seed=4).X)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_texts=0), "n_texts"), (dict(width=0), "width"), (dict(n_layers=0), "n_layers"),
    (dict(noise=-1.0), ">= 0"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_layered_vectors(**kwargs)
