"""The training summary (`layerwise.training.summary`) from planted checkpoint tables: ID peak step, "grows
monotonically" (a dip within 5%), anisotropy trend and peak layer; peaks at the first or last layer or step,
ties (the first wins), flat profiles."""

from __future__ import annotations

import pytest

from layerwise.training.summary import is_monotonic, training_summary

from tests.helpers.planted_training import training_table


@pytest.mark.parametrize("values, expected", [
    ([1, 2, 3], True), ([3, 3, 3], True), ([1, 0.96, 2], True),  # flat; a dip within 5%
    ([1, 0.9, 2], False), ([3, 2, 1], False)])
def test_monotonic_up_to_five_percent(values, expected):
    assert is_monotonic(values, tolerance=0.05) is expected


@pytest.mark.parametrize("id_by_step, peak_step, peak_value", [
    # layer 0 is left out of the average: its huge values must not move the peak
    ({0: [99, 4, 6], 100: [0, 8, 10], 200: [0, 5, 5]}, 100, 9.0),   # peak in the middle
    ({0: [0, 9, 9], 100: [99, 4, 4], 200: [0, 2, 2]}, 0, 9.0),      # at the first step
    ({0: [0, 1, 1], 100: [0, 2, 2], 200: [0, 7, 3]}, 200, 5.0),     # at the last step
    ({0: [0, 1, 1], 100: [0, 6, 6], 200: [0, 6, 6]}, 100, 6.0),     # tie: the first
])
def test_training_summary_id_peak_step(id_by_step, peak_step, peak_value):
    an = {s: [0.1, 0.2, 0.3] for s in id_by_step}
    row = training_summary(training_table(id_by_step, an)).iloc[0]
    assert row["id_peak_step"] == peak_step and row["id_peak_value"] == pytest.approx(peak_value)
    assert row["id_first"] == pytest.approx(sum(id_by_step[0][1:]) / 2)
    assert row["id_last"] == pytest.approx(sum(id_by_step[200][1:]) / 2)


@pytest.mark.parametrize("an_by_step, monotonic, peak_layer", [
    ({0: [0.1, 0.2, 0.1], 100: [0.1, 0.4, 0.2], 200: [0.1, 0.6, 0.5]}, True, 1),
    ({0: [0.1, 0.2, 0.1], 100: [0.1, 0.6, 0.2], 200: [0.9, 0.3, 0.2]}, True, 0),   # peak at the first layer
    ({0: [0.1, 0.2, 0.1], 100: [0.1, 0.9, 0.2], 200: [0.1, 0.3, 0.5]}, False, 2),  # falls; last layer
    ({0: [0.5, 0.5, 0.5], 100: [0.5, 0.5, 0.5], 200: [0.5, 0.5, 0.5]}, True, 0),   # flat: first layer
])
def test_training_summary_anisotropy_trend_and_peak_layer(an_by_step, monotonic, peak_layer):
    ids = {s: [1, 1, 1] for s in an_by_step}
    row = training_summary(training_table(ids, an_by_step)).iloc[0]
    assert bool(row["anisotropy_monotonic"]) is monotonic
    assert row["anisotropy_first"] == pytest.approx(max(an_by_step[0]))
    assert row["anisotropy_last"] == pytest.approx(max(an_by_step[200]))
    assert row["anisotropy_peak_layer"] == peak_layer
    assert row["anisotropy_peak_relative_depth"] == pytest.approx(peak_layer / 2)
