"""Study 1's verdict sentences: the words of agreement come from the numbers (planted both ways)."""

import numpy as np
import pandas as pd

from layerwise.narrative.probes import probe_verdict_macros
from layerwise.probes.claims import CLAIMS, FAITHFUL, OURS, evidence_table, probe_claims
from layerwise.verdicts import verdict_frame


def _macros(norm_faithful, norm_ours, mask_delta, random_deltas, early, late, converged=True):
    points = [
        dict(quantity="normalised_delta", setting=FAITHFUL, estimate=norm_faithful),
        dict(quantity="normalised_delta", setting=OURS, estimate=norm_ours),
        dict(quantity="mask_delta", setting=FAITHFUL, estimate=mask_delta),
        dict(quantity="early_positive_share", setting=FAITHFUL, estimate=early),
        dict(quantity="late_positive_share", setting=FAITHFUL, estimate=late),
        dict(quantity="transfer_delta", setting=FAITHFUL, estimate=-10.0),
    ]
    evidence = evidence_table(fits={}, points=points)
    verdicts = verdict_frame(probe_claims(evidence, chance=1 / 31))
    scores = pd.DataFrame({"condition": ["post_faithful"], "accuracy": [0.9]})
    fits = pd.DataFrame({"condition": ["raw", "post_faithful"], "model": "M", "converged": [True, converged],
                         "epochs": [40, 100], "grad_norm": [5e-5, 6.7e-3]})
    return probe_verdict_macros(verdicts, evidence, faithful_scores=scores,
                                random_masks=pd.DataFrame({"delta_pp": random_deltas}), masked_dims=[1, 2, 3, 4],
                                model="M", units={c.key: c.test.unit for c in CLAIMS}, fits=fits)


def test_norm_direction_and_masking_words_follow_the_numbers():
    agree = _macros(-3.0, -2.0, -0.1, np.linspace(-1.0, 0.2, 50), 20.0, 80.0)
    text = str(agree["ProbeFaithfulAblations"])
    assert "unit norm lowers it" in text and "as the post reports" in text and "agree in direction" in text
    assert "carry no more than random ones" in text
    assert "(the post's pattern)" in text
    opposite = str(_macros(-3.0, 0.7, -7.3, np.full(50, -0.05), 60.0, 40.0)["ProbeFaithfulAblations"])
    assert "the two settings disagree in direction" in opposite and "raises it (+0.7 points)" in opposite
    assert "carry more of the layer signal than random ones" in opposite
    assert "(not the post's pattern)" in opposite


def test_verdict_table_and_opening_count_every_claim():
    macros = _macros(-3.0, 0.7, -7.3, np.zeros(10), 20.0, 80.0)
    assert str(macros["ProbeVerdictTable"]).count(r"\textbf{") == len(CLAIMS)
    opening = str(macros["ProbeVerdictOpening"])
    assert f"Of the post's {len(CLAIMS)} claims" in opening and "differs in setting" in opening


def test_unconverged_fits_are_named():
    stopped = str(_macros(-3.0, -2.0, 0.0, np.zeros(5), 20.0, 80.0, converged=False)["ProbeConvergence"])
    assert stopped.startswith("1 of the 2 logistic fits") and "post faithful (100 epochs" in stopped
    done = str(_macros(-3.0, -2.0, 0.0, np.zeros(5), 20.0, 80.0)["ProbeConvergence"])
    assert done == "All 2 logistic fits reported here converged to the gradient tolerance."


def test_discussion_names_every_row_not_reproduced_and_no_other():
    from layerwise.narrative.probes import verdict_discussion
    verdicts = pd.DataFrame({"key": ["layer", "norm_drop", "random"], "claim": ["A", "B", "C"],
                             "verdict": ["reproduced", "differs in setting", "not reproduced"],
                             "reason": ["r1", "holds in the source's setting, fails in ours", "r3"]})
    text = str(verdict_discussion(verdicts))
    assert "\\emph{A}" not in text
    assert "\\emph{B}: differs in setting (holds in the source's setting, fails in ours)" in text
    assert "\\emph{C}: not reproduced (r3)" in text and "cannot succeed by construction" in text
    assert str(verdict_discussion(verdicts.iloc[:1])) == "Every claim of the post tested here is reproduced."


def test_our_settings_masking_is_set_against_its_own_random_draws():
    points = [dict(quantity="mask_delta", setting=OURS, estimate=-7.3)]
    evidence = evidence_table(fits={}, points=points)
    verdicts = verdict_frame(probe_claims(evidence, chance=1 / 31))
    fits = pd.DataFrame({"condition": ["raw"], "model": "M", "converged": [True], "epochs": [40], "grad_norm": [5e-5]})
    common = dict(faithful_scores=pd.DataFrame({"condition": ["post_faithful"], "accuracy": [0.9]}),
                  random_masks=pd.DataFrame({"delta_pp": []}), masked_dims=[1], model="M", units={}, fits=fits)
    text = str(probe_verdict_macros(verdicts, evidence, random_masks_ours=pd.DataFrame(
        {"delta_pp": np.linspace(-0.5, 0.1, 40)}), **common)["ProbeFaithfulAblations"])
    assert "changes the accuracy by -7.3 points" in text and "more than random dimensions." in text
    text = str(probe_verdict_macros(verdicts, evidence, random_masks_ours=pd.DataFrame(
        {"delta_pp": np.linspace(-9.0, 0.1, 40)}), **common)["ProbeFaithfulAblations"])
    assert "no more than random dimensions." in text


def test_verdict_table_fits_the_text_width():
    """Columns at most 0.9 linewidth plus 7 x 4 pt of separation (0.06 of the 455 pt A4 text width)."""
    import re
    table = str(_macros(-3.0, 0.7, -7.3, np.zeros(10), 20.0, 80.0)["ProbeVerdictTable"])
    assert r"\setlength{\tabcolsep}{2pt}" in table
    widths = [float(w) for w in re.findall(r"p\{([\d.]+)\\linewidth\}", table)]
    assert len(widths) == 7 and sum(widths) + 7 * 4 / 455 <= 1.0
    assert min(widths[-1:]) >= 0.105  # a bold "reproduced" at scriptsize fits its column
