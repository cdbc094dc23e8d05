"""score_table and confusion_table against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.probes.metrics import confusion_table, score_table


Y_TRUE = np.array([0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 2, 0, 2])


def test_scores_match_hand_computation():
    row = score_table(Y_TRUE, Y_PRED, labels=np.arange(4)).iloc[0]
    assert row["accuracy"] == pytest.approx(6 / 8)
    # per-class F1: layer 0: P=1/2 R=1/2 -> 1/2; layer 1: P=2/3 R=1 -> 4/5; layer 2: P=1 R=3/4 -> 6/7; layer 3: 0
    assert row["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 6 / 7 + 0) / 4)
    assert row["chance"] == pytest.approx(1 / 4)
    assert (row["n_vectors"], row["n_layers"]) == (8, 4)


def test_labels_default_to_those_seen():
    assert score_table(Y_TRUE, Y_PRED).iloc[0]["chance"] == pytest.approx(1 / 3)


def test_confusion_counts_and_row_fractions():
    table = confusion_table(Y_TRUE, Y_PRED, labels=np.arange(4))
    assert list(table.columns) == ["true_layer", "predicted_layer", "count", "fraction"]
    counts = table.pivot(index="true_layer", columns="predicted_layer", values="count").to_numpy()
    np.testing.assert_array_equal(counts, [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 3, 0], [0, 0, 0, 0]])
    fractions = table.groupby("true_layer")["fraction"].sum()
    np.testing.assert_allclose(fractions, [1, 1, 1, 0])  # an absent layer has no fractions, not NaN
    assert table.set_index(["true_layer", "predicted_layer"]).loc[(2, 0), "fraction"] == pytest.approx(0.25)


def test_bad_inputs():
    with pytest.raises(ValueError, match="equal length"):
        score_table(Y_TRUE, Y_PRED[:-1])
    with pytest.raises(ValueError, match="not in `labels`"):
        confusion_table(Y_TRUE, Y_PRED, labels=[0, 1])


# --------------------------------------------------------------------------- known answers

# --- metrics -----------------------------------------------------------------------------------------------


def test_score_table_without_labels_counts_a_layer_that_is_only_predicted():
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    row = score_table(y_true, y_pred).iloc[0]
    # layers = {0, 1, 2} (2 is only predicted). F1: layer 0 P=1 R=1/2 -> 2/3; layer 1 P=R=1 -> 1;
    # layer 2 one false positive, no true vector -> 0 (zero_division=0).
    assert row["accuracy"] == pytest.approx(3 / 4)
    assert row["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert row["chance"] == pytest.approx(1 / 3)
    assert (row["n_vectors"], row["n_layers"]) == (4, 3)


def test_confusion_table_names_layers_by_label_and_normalises_by_the_true_layer():
    y_true, y_pred = np.array([4, 4, 4, 9, 1]), np.array([4, 9, 9, 9, 4])
    table = confusion_table(y_true, y_pred, labels=np.array([1, 4, 9]))
    assert table["true_layer"].tolist() == [1, 1, 1, 4, 4, 4, 9, 9, 9]
    assert table["predicted_layer"].tolist() == [1, 4, 9] * 3
    # true 1: once predicted 4; true 4: 4 once, 9 twice; true 9: 9 once
    np.testing.assert_array_equal(table["count"], [0, 1, 0, 0, 1, 2, 0, 0, 1])
    np.testing.assert_allclose(table["fraction"], [0, 1, 0, 0, 1 / 3, 2 / 3, 0, 0, 1])
    row = score_table(y_true, y_pred, labels=np.array([1, 4, 9])).iloc[0]
    assert row["accuracy"] == pytest.approx(2 / 5) and row["chance"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("y_true, y_pred", [
    (np.zeros((2, 2), int), np.zeros((2, 2), int)),  # 2-D
    (np.array([], int), np.array([], int)),  # empty
])
def test_metrics_refuse_arrays_that_are_not_non_empty_vectors(y_true, y_pred):
    for table in (score_table, confusion_table):
        with pytest.raises(ValueError, match="non-empty 1-D"):
            table(y_true, y_pred)


def test_confusion_table_row_of_a_layer_never_seen_is_zero_not_nan():
    table = confusion_table(np.array([1, 1, 4]), np.array([1, 4, 4]), labels=np.array([1, 4, 9]))
    unseen = table[table["true_layer"] == 9]
    assert (unseen["count"] == 0).all() and (unseen["fraction"] == 0.0).all()
