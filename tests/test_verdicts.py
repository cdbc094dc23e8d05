"""The verdict rules on planted numbers: each verdict must come out of the numbers that call for it."""

import math

import numpy as np
import pytest

from layerwise.verdicts import (DIFFERS, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, Claim, Evidence, Test,
                                bootstrap_interval, format_evidence, judge, verdict_counts, verdict_frame,
                                verdict_table_latex)


@pytest.mark.parametrize("test, evidence, outcome", [
    (Test("above", 50), Evidence(60, 55, 65), "holds"),
    (Test("above", 50), Evidence(40, 35, 45), "fails"),
    (Test("above", 50), Evidence(52, 45, 58), "undecided"),
    (Test("below", 0), Evidence(-3, -4, -1), "holds"),
    (Test("below", 0), Evidence(3, 1, 4), "fails"),
    (Test("between", (100, 1000)), Evidence(400, 300, 600), "holds"),
    (Test("between", (100, 1000)), Evidence(6000, 5000, 19000), "fails"),
    (Test("between", (100, 1000)), Evidence(900, 800, 1200), "undecided"),
    (Test("near", 0.0, tol=0.5), Evidence(-0.2, -0.4, 0.1), "holds"),
    (Test("near", 0.0, tol=0.5), Evidence(-7.3, -8.0, -6.5), "fails"),
    (Test("above", 50), Evidence(math.nan), "missing"),
    (Test("above", 50), None, "missing"),
])
def test_outcome_of_interval_against_the_claims_range(test, evidence, outcome):
    assert test.outcome(evidence) == outcome


def test_a_point_without_interval_is_its_own_interval():
    assert Test("above", 1).outcome(Evidence(1.5)) == "holds"
    assert Test("above", 1).outcome(Evidence(0.5)) == "fails"


def test_a_confounded_source_setting_needs_the_controlled_comparison_to_decide():
    above, holds, fails, undecided = Test("above", 0), Evidence(0.9, 0.8, 1.0), Evidence(-0.5, -0.6, -0.4), \
        Evidence(-0.02, -0.05, 0.01)
    assert judge(above, holds, undecided)[0] == REPRODUCED  # the plain rule: ours merely lacks power
    verdict, reason = judge(above, holds, undecided, confounded=True)
    assert verdict == NOT_TESTABLE and "confounded" in reason and "cannot decide" in reason
    assert judge(above, holds, None, confounded=True)[0] == NOT_TESTABLE
    assert judge(above, holds, Evidence(0.3, 0.2, 0.4), confounded=True)[0] == REPRODUCED
    assert judge(above, holds, fails, confounded=True)[0] == DIFFERS
    assert judge(above, fails, undecided, confounded=True)[0] == NOT_REPRODUCED
    claim = Claim(key="c", text="t", source="s", test=above, faithful=holds, ours=undecided, confounded=True)
    assert verdict_frame([claim])["verdict"].iloc[0] == NOT_TESTABLE


def test_four_verdicts_from_planted_numbers():
    above = Test("above", 50)
    assert judge(above, Evidence(60, 55, 65))[0] == REPRODUCED
    assert judge(above, Evidence(60, 55, 65), Evidence(70, 65, 75))[0] == REPRODUCED
    assert judge(above, Evidence(40, 35, 45))[0] == NOT_REPRODUCED
    assert judge(above, Evidence(40, 35, 45), Evidence(40, 35, 45))[0] == NOT_REPRODUCED
    # holds where the source ran it, fails in ours (and the reverse): the setting makes the difference
    assert judge(above, Evidence(60, 55, 65), Evidence(40, 35, 45)) == (DIFFERS, "holds in the source's setting, fails in ours")
    assert judge(above, Evidence(40, 35, 45), Evidence(60, 55, 65))[0] == DIFFERS
    # an interval that contains the bound decides nothing
    assert judge(above, Evidence(52, 45, 58))[0] == NOT_TESTABLE
    assert judge(above, None)[0] == NOT_TESTABLE
    assert judge(above, Evidence(math.nan))[0] == NOT_TESTABLE
    # only our setting run: it is our setting's answer, not the source's
    assert judge(above, None, Evidence(60, 55, 65))[0] == DIFFERS
    assert judge(above, None, Evidence(50, 45, 55)) == (
        NOT_TESTABLE, "only our setting was run, and its interval contains the claim's bound")


def test_undecided_ours_does_not_override_a_decided_faithful_run():
    assert judge(Test("above", 50), Evidence(60, 55, 65), Evidence(50, 45, 55))[0] == REPRODUCED


def test_evidence_refuses_an_interval_without_its_estimate():
    with pytest.raises(ValueError, match="does not contain"):
        Evidence(5, 6, 7)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "over", "bound": 1}, "unknown test kind"),
    ({"kind": "between", "bound": (2, 1)}, "lo <= hi"),
    ({"kind": "above", "bound": (1, 2)}, "one number"),
    ({"kind": "near", "bound": 1, "tol": -1}, "tol"),
])
def test_bad_tests_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Test(**kwargs)


def test_frame_and_latex_table_carry_each_claim_and_verdict():
    claims = [Claim("a", "accuracy far above chance", "100%", Test("above", 50, unit="%"), Evidence(97, 96, 98)),
              Claim("b", "unit norm lowers accuracy", "-19 pp", Test("below", 0, unit="pp"), Evidence(0.7, 0.2, 1.1),
                    setting="last layer pre-norm")]
    frame = verdict_frame(claims)
    assert list(frame["verdict"]) == [REPRODUCED, NOT_REPRODUCED]
    assert verdict_counts(frame) == {REPRODUCED: 1, NOT_REPRODUCED: 1, DIFFERS: 0, NOT_TESTABLE: 0}
    tex = verdict_table_latex(frame, "Verdicts", "tab:v")
    assert tex.count(r"\textbf{reproduced}") == 1 and tex.count(r"\textbf{not reproduced}") == 1
    assert "97 [96, 98]" in tex and "last layer pre-norm" in tex
    with pytest.raises(ValueError, match="unique"):
        verdict_frame(claims + claims[:1])


def test_format_evidence():
    assert format_evidence(12.34, 11.9, 12.8, "pp") == "12.3 [11.9, 12.8] pp"
    assert format_evidence(3.0, 3.0, 3.0) == "3"
    assert format_evidence(math.nan, math.nan, math.nan) == "—"
    assert format_evidence(19000.0, 6000.0, 19500.0) == "19,000 [6,000, 19,500]"


def test_bootstrap_interval_covers_the_known_mean():
    rng = np.random.default_rng(1)
    values = rng.normal(3.0, 1.0, size=400)
    ev = bootstrap_interval(values, seed=2)
    assert ev.low < 3.0 < ev.high
    assert ev.high - ev.low == pytest.approx(2 * 1.96 / 20, rel=0.25)  # ± 1.96 σ/√n
    assert bootstrap_interval(values, seed=2) == ev  # seeded
    assert bootstrap_interval(np.array([5.0])) == Evidence(5.0)
    assert bootstrap_interval(np.array([])).missing


def test_summary_sentence_counts_each_studys_verdicts():
    from layerwise.verdicts import summary_sentence

    a = verdict_frame([Claim("x", "x", "", Test("above", 0), Evidence(1)), Claim("y", "y", "", Test("above", 0), Evidence(-1)),
                       Claim("z", "z", "", Test("above", 0), Evidence(-2))])
    b = verdict_frame([Claim("w", "w", "", Test("above", 0), None)])
    assert summary_sentence({"Study 1": a, "Study 2": b}) == (
        "Study 1: 1 of 3 claims reproduced, 2 not reproduced; Study 2: 1 of 1 claims not testable here.")
    assert summary_sentence({"Study 3": verdict_frame([])}) == "Study 3: no claim tested."


def test_verdict_table_fits_the_text_width():
    import re

    tex = verdict_table_latex(verdict_frame([Claim("a", "c", "s", Test("above", 0), Evidence(1))]), "V", "tab:v")
    separation = float(re.search(r"\\tabcolsep\}\{([\d.]+)pt\}", tex).group(1))
    widths = [float(w) for w in re.findall(r"p\{([\d.]+)\\linewidth\}", tex)]
    assert len(widths) == 7 and sum(widths) + 7 * 2 * separation / 455 <= 1.0  # 455 pt: the A4 text width
    assert widths[-1] >= 0.105  # a bold "reproduced" at scriptsize fits its column
