"""`make verify`: moved or missing numbers are reported, unchanged ones pass."""

import math

from layerwise.workflow.macros import render_macros
from layerwise.workflow.verify import check_values, parse_number, read_macros


def test_round_trip_through_generated_macros(tmp_path):
    path = tmp_path / "macros.tex"
    path.write_text(render_macros({"ProbeAccuracy": 0.8324, "NTokens": 25000, "Missing": float("nan")}, "t"))
    macros = read_macros(path)
    assert parse_number(macros["ProbeAccuracy"]) == 0.832
    assert parse_number(macros["NTokens"]) == 25000
    assert math.isnan(parse_number(macros["Missing"]))


def test_moved_missing_and_nan_numbers_fail():
    macros = {"A": "0.832", "B": "12.5", "C": "n/a"}
    expected = {"A": {"value": 0.83, "abs_tol": 0.01}, "B": {"value": 10.0, "rel_tol": 0.1},
                "C": {"value": 1.0, "abs_tol": 10}, "D": {"value": 1.0, "abs_tol": 1}}
    result = {c.name: c.ok for c in check_values(macros, expected)}
    assert result == {"A": True, "B": False, "C": False, "D": False}
