"""score_table and confusion_table against hand-computed values."""

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
