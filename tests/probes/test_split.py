"""split_by_text: no text on both sides, the asked-for fraction of texts, one split per seed."""

from __future__ import annotations

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


# --------------------------------------------------------------------------- known answers

# --- split by text ------------------------------------------------------------------------------------------

# 10 texts with ids 3, 10, ..., 66; text k (id 7k + 3) has k + 1 rows; rows interleaved
TEXT_IDS = np.repeat(np.arange(10) * 7 + 3, np.arange(1, 11))[np.random.default_rng(0).permutation(55)]


@pytest.mark.parametrize("fraction, n_test", [
    (0.34, 3),  # round(3.4)
    (0.36, 4),  # round(3.6): rounded, not truncated
    (0.04, 1),  # round(0.4) = 0, raised to the minimum of one test text
    (0.96, 9),  # round(9.6) = 10, capped so that one text stays in train
])
def test_split_puts_the_rounded_fraction_of_texts_in_test_with_all_their_rows(fraction, n_test):
    train, test = split_by_text(TEXT_IDS, fraction, seed=2)
    test_texts, train_texts = np.unique(TEXT_IDS[test]), np.unique(TEXT_IDS[train])
    assert test_texts.size == n_test and train_texts.size == 10 - n_test
    assert not np.intersect1d(test_texts, train_texts).size
    assert test.sum() == sum((t - 3) // 7 + 1 for t in test_texts)  # every row of every test text
    np.testing.assert_array_equal(train, ~test)


def test_split_is_seeded_and_each_seed_draws_its_own_texts():
    ids = np.repeat(np.arange(20), 3)
    drawn = [tuple(np.unique(ids[split_by_text(ids, 0.25, seed)[1]])) for seed in range(6)]
    assert drawn == [tuple(np.unique(ids[split_by_text(ids, 0.25, seed)[1]])) for seed in range(6)]
    assert all(len(texts) == 5 for texts in drawn)
    assert len(set(drawn)) == 6  # 15,504 possible test sets: six seeds, six sets
