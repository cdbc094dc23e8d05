"""How a store becomes the probe's dataset (`layerwise.probes.features`): the post setting's last class keeps
the last layer's label, `include_position0` / `final_norm_last` reach the split, the pre-norm last layer is the
default, a wrong-shaped `out` is refused."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.probes.features import layer_dataset, split_layer_dataset, split_layer_datasets

from tests.probes.planted import make_store


# make_store: 4 texts x 5 positions, width 3, layers 0..2 (+ the final norm); every value of layer l is
# l + 10 * text, the final norm's -1 + 10 * text.


def layer_value(data) -> np.ndarray:
    """The planted layer value of each row (its first coordinate less the text's offset)."""
    return data.X[:, 0] - 10 * data.text_ids


def test_post_setting_last_class_keeps_the_last_layers_label(tmp_path):
    store = make_store(tmp_path / "gpt", has_final_norm=True)
    data = layer_dataset(store, final_norm_last=True)
    assert np.unique(data.y).tolist() == [0, 1, 2] and np.bincount(data.y).tolist() == [16, 16, 16]
    np.testing.assert_array_equal(layer_value(data), np.where(data.y == 2, -1, data.y))
    assert data.X.dtype == np.float32 and data.y.dtype == np.int64


@pytest.mark.parametrize("position0, rows_per_layer", [(False, 16), (True, 20)])
def test_split_reads_position0_and_the_post_norm_last_class_as_asked(tmp_path, position0, rows_per_layer):
    store = make_store(tmp_path / "s", has_final_norm=True)
    train, test = split_layer_dataset(store, 0.25, seed=1, include_position0=position0, final_norm_last=True)
    for part in (train, test):
        np.testing.assert_array_equal(layer_value(part), np.where(part.y == 2, -1, part.y))
        assert (part.positions == 0).any() == position0
    assert len(train.y) + len(test.y) == 3 * rows_per_layer
    # the joint loader splits and stacks each store the same way
    joint, (train_a, train_b), (test_a, test_b) = split_layer_datasets(
        [store, store], 0.25, seed=1, include_position0=position0, final_norm_last=True)
    for got in (train_a, train_b):
        np.testing.assert_array_equal(got.X, train.X)
        np.testing.assert_array_equal(got.y, train.y)
    for got in (test_a, test_b):
        np.testing.assert_array_equal(got.X, test.X)
    assert joint.X.dtype == np.float32 and len(joint.y) == 2 * len(train.y)


def test_split_layer_datasets_defaults_to_the_pre_norm_last_layer(tmp_path):
    store = make_store(tmp_path / "s", has_final_norm=True)
    joint, _, (test,) = split_layer_datasets([store], 0.25, seed=1)
    for part in (joint, test):
        np.testing.assert_array_equal(layer_value(part), part.y)


def test_split_layer_datasets_needs_a_store():
    with pytest.raises(ValueError, match="need at least one store"):
        split_layer_datasets([], 0.25, seed=0)


def test_stack_refuses_an_out_of_the_wrong_shape_or_dtype(tmp_path):
    from layerwise.probes.features import _sources, _stack

    store = make_store(tmp_path / "s", has_final_norm=True)
    rows, sources = store.position_mask(False), _sources(store, (), False)
    right = (int(rows.sum()) * len(sources), 3)
    _stack(store, rows, sources, out=np.empty(right, np.float32))
    for shape, dtype in (((right[0] - 1, 3), np.float32), (right, np.float64)):
        with pytest.raises(ValueError, match=r"out must be float32 of shape \(48, 3\)"):
            _stack(store, rows, sources, out=np.empty(shape, dtype))
