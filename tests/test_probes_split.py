"""split_by_text: no text on both sides, the asked-for fraction of texts, one split per seed."""

import numpy as np
import pytest

from layerwise.probes.split import split_by_text


def test_no_text_is_on_both_sides_and_every_row_is_used():
    text_ids = np.repeat(np.arange(50), 7)[np.random.default_rng(0).permutation(350)]
    train, test = split_by_text(text_ids, test_fraction=0.2, seed=3)
    assert not np.intersect1d(text_ids[train], text_ids[test]).size
    np.testing.assert_array_equal(train, ~test)
    assert np.unique(text_ids[test]).size == 10  # round(0.2 * 50) texts


def test_same_seed_same_split_other_seed_other_split():
    text_ids = np.repeat(np.arange(40), 3)
    a, b, c = (split_by_text(text_ids, 0.25, seed)[1] for seed in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_split_does_not_depend_on_row_order():
    text_ids = np.repeat(np.arange(30), 4)
    order = np.random.default_rng(1).permutation(text_ids.size)
    test = split_by_text(text_ids, 0.3, seed=5)[1]
    shuffled_test = split_by_text(text_ids[order], 0.3, seed=5)[1]
    assert set(text_ids[test]) == set(text_ids[order][shuffled_test])


def test_both_sides_keep_at_least_one_text():
    train, test = split_by_text(np.array([7, 7, 9, 9]), test_fraction=0.01)
    assert train.sum() == 2 and test.sum() == 2


@pytest.mark.parametrize("text_ids, fraction, message", [
    (np.arange(10), 0.0, "test_fraction"), (np.arange(10), 1.0, "test_fraction"),
    (np.zeros(5, int), 0.5, "two distinct texts"), (np.zeros((2, 3), int), 0.5, "1-D"),
    (np.array([], int), 0.5, "non-empty"),
])
def test_bad_inputs(text_ids, fraction, message):
    with pytest.raises(ValueError, match=message):
        split_by_text(text_ids, fraction)
