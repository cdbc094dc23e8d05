"""Study 1's claims → verdicts on planted numbers: each verdict must come out of the numbers that call for it,
and the evidence table must compute the numbers (accuracies, paired differences, weight signs) it says."""

import numpy as np
import pandas as pd
import pytest

from layerwise.probes.claims import (CLAIMS, FAITHFUL, OURS, accuracy_interval, difference_interval,
                                     evidence_table, per_text, positive_weight_shares, probe_claims)
from layerwise.verdicts import DIFFERS, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, verdict_frame


def _ev(rows):
    return pd.DataFrame([{"quantity": q, "setting": s, "estimate": e, "low": lo, "high": hi, "converged": c,
                          "note": ""} for q, s, e, lo, hi, c in rows])


def _verdicts(evidence, chance=1 / 31):
    frame = verdict_frame(probe_claims(evidence, chance=chance))
    return dict(zip(frame["key"], frame["verdict"])), dict(zip(frame["key"], frame["setting"]))


def test_each_verdict_from_planted_numbers():
    evidence = _ev([
        # far above chance in both settings: reproduced
        ("accuracy", FAITHFUL, 90.0, 89.0, 91.0, True), ("accuracy", OURS, 96.0, 95.5, 96.5, True),
        # unit norm: drops by the post's size in the post's setting, rises in ours -> differs in setting
        ("normalised_delta", FAITHFUL, -19.0, -21.0, -17.0, True), ("normalised_delta", OURS, 0.7, 0.5, 0.9, True),
        # masking costs 7 points in the post's setting: not reproduced
        ("mask_delta", FAITHFUL, -7.3, -8.0, -6.6, True),
        # the transfer interval straddles the -5 point bound: not testable here
        ("transfer_delta", FAITHFUL, -5.0, -9.0, -1.0, True),
        # random vectors at chance (3.2% + 5 points bound)
        ("random_scalar_accuracy", FAITHFUL, 3.3, 3.0, 3.6, True),
    ])
    verdict, setting = _verdicts(evidence)
    assert verdict["layer"] == REPRODUCED
    assert verdict["norm_drop"] == DIFFERS
    assert verdict["mask"] == NOT_REPRODUCED
    assert verdict["transfer"] == NOT_TESTABLE
    assert verdict["random"] == REPRODUCED
    # no number at all: not testable; the model-size claim has none here
    assert verdict["larger_model"] == NOT_TESTABLE and "one size per family" in setting["larger_model"]
    assert verdict["norm_not_only"] == NOT_TESTABLE
    assert setting["layer"] == ""  # both settings run and converged: nothing to flag


def test_a_drop_far_smaller_than_the_posts_does_not_reproduce_it():
    """The post reads unit norm's 19-point drop as an effect: a drop of a third of a point (SmolLM2, post's setting)
    is on the claim's side of zero but not a "decrease" (the bound is 5 points, as for the transfer)."""
    evidence = _ev([("normalised_delta", FAITHFUL, -0.33, -0.40, -0.26, True),
                    ("normalised_delta", OURS, 0.27, 0.21, 0.32, True)])
    assert _verdicts(evidence)[0]["norm_drop"] == NOT_REPRODUCED


def test_random_control_bound_follows_chance():
    evidence = _ev([("random_scalar_accuracy", FAITHFUL, 12.0, 11.0, 13.0, True)])
    assert _verdicts(evidence, chance=1 / 31)[0]["random"] == NOT_REPRODUCED  # 12% > 3.2% + 5
    assert _verdicts(evidence, chance=1 / 7)[0]["random"] == REPRODUCED  # 12% < 14.3% + 5


def test_unconverged_fit_is_named_in_the_setting_column():
    evidence = _ev([("accuracy", FAITHFUL, 90.0, 89.0, 91.0, False), ("accuracy", OURS, 96.0, 95.5, 96.5, True)])
    setting = _verdicts(evidence)[1]["layer"]
    assert setting == "not converged (post)"


def test_only_our_setting_is_said():
    evidence = _ev([("n_effect", OURS, 4.0, 3.0, 5.0, pd.NA)])
    verdict, setting = _verdicts(evidence)
    assert verdict["more_texts"] == DIFFERS and "ours only" in setting["more_texts"]


def test_duplicate_evidence_is_refused():
    evidence = _ev([("accuracy", OURS, 96.0, 95.5, 96.5, True)] * 2)
    with pytest.raises(ValueError, match="one expected"):
        probe_claims(evidence, chance=0.1)


def test_every_claim_key_is_unique():
    assert len({c.key for c in CLAIMS}) == len(CLAIMS)


def test_per_text_counts_and_pooled_accuracy():
    texts = per_text(np.array([3, 3, 1, 1, 1, 2]), np.array([1, 0, 1, 1, 1, 0]))
    assert texts.to_dict("list") == {"text_id": [1, 2, 3], "n": [3, 1, 2], "correct": [3, 0, 1]}
    ev = accuracy_interval(texts, n_boot=500)
    assert ev.estimate == pytest.approx(100 * 4 / 6)
    assert 0 <= ev.low <= ev.estimate <= ev.high <= 100


def test_paired_difference_is_tight_when_every_text_moves_alike():
    rng = np.random.default_rng(0)
    n = np.full(200, 30)
    base = rng.integers(10, 30, size=200)
    a = pd.DataFrame({"text_id": np.arange(200), "n": n, "correct": base})
    b = a.assign(correct=base - 3)  # every text loses 3 of 30 vectors: exactly -10 points
    ev = difference_interval(b, a, n_boot=500)
    assert ev.estimate == pytest.approx(-10.0)
    assert ev.low == pytest.approx(-10.0) and ev.high == pytest.approx(-10.0)
    # on different texts the difference is resampled independently: a real interval around it
    c = b.assign(text_id=np.arange(200, 400))
    ev = difference_interval(c, a, n_boot=500)
    assert ev.low < -10.0 < ev.high


def _attribution(signs_per_layer):
    rows = []
    for layer, signs in enumerate(signs_per_layer):
        for dim, sign in enumerate(signs):
            rows.append({"layer": layer, "dim": dim, "variant": "input_x_weight", "share": 10.0 - dim,
                         "signed": 1.0, "sign": 1, "rank": dim + 1})  # the mean contribution: always positive
            rows.append({"layer": layer, "dim": dim, "variant": "weight", "share": 1.0, "signed": float(sign),
                         "sign": int(sign), "rank": dim + 1})
    return pd.DataFrame(rows)


def test_weight_signs_not_contribution_signs():
    # 4 layers, top-2 dims: early layers (0, 1) negative weights, late (2, 3) positive
    table = _attribution([[-1, -1, 1], [-1, 1, 1], [1, 1, -1], [1, 1, -1]])
    shares = positive_weight_shares(table, top_n=2)
    assert shares.set_index("layer")["positive_share"].to_dict() == {0: 0.0, 1: 50.0, 2: 100.0, 3: 100.0}
    assert shares.set_index("layer")["half"].to_dict() == {0: "early", 1: "early", 2: "late", 3: "late"}
    evidence = evidence_table(fits={}, attribution={OURS: table}, top_n=2, n_boot=200)
    est = evidence.set_index("quantity")["estimate"]
    assert est["early_positive_share"] == pytest.approx(25.0) and est["late_positive_share"] == pytest.approx(100.0)
    verdict = _verdicts(evidence)[0]
    assert verdict["late_positive"] == DIFFERS  # only our setting run: holds there
    # the opposite pattern fails the claim
    flipped = evidence_table(fits={}, attribution={OURS: _attribution([[1, 1], [1, 1], [-1, -1], [-1, -1]])}, top_n=2)
    est = flipped.set_index("quantity")["estimate"]
    assert est["early_positive_share"] == 100.0 and est["late_positive_share"] == 0.0


def test_odd_layer_count_leaves_the_middle_layer_out():
    shares = positive_weight_shares(_attribution([[1], [1], [1]]), top_n=1)
    assert shares["half"].tolist() == ["early", "middle", "late"]


def test_evidence_table_from_planted_fits():
    ids = np.arange(100)
    raw = pd.DataFrame({"text_id": ids, "n": 10, "correct": 9})
    fits = {(FAITHFUL, "raw"): (raw, True), (FAITHFUL, "normalised"): (raw.assign(correct=6), False),
            (OURS, "raw"): (raw.assign(correct=10), True)}
    grid = {(100, 10): raw.assign(correct=5), (100, 30): raw.assign(correct=7),
            (300, 10): raw.assign(correct=6, text_id=ids + 100), (300, 30): raw.assign(correct=8, text_id=ids + 100)}
    overlap = pd.DataFrame({"scope": ["frequent", "frequent", "top_per_layer"], "jaccard": [1.0, 0.6, 0.1]})
    dims = pd.DataFrame({"variant": "input_x_weight", "threshold": 90, "n_dims": [100, 110, 120]})
    ev = evidence_table(fits=fits, grid=grid, stability_overlap=overlap, dims_for_share={FAITHFUL: dims}, n_boot=300)
    by = ev.set_index(["quantity", "setting"])
    assert by.loc[("accuracy", FAITHFUL), "estimate"] == pytest.approx(90.0)
    assert by.loc[("accuracy", OURS), "estimate"] == pytest.approx(100.0)
    assert by.loc[("normalised_delta", FAITHFUL), "estimate"] == pytest.approx(-30.0)
    assert not by.loc[("normalised_delta", FAITHFUL), "converged"]  # one of the two fits did not converge
    assert by.loc[("n_effect", OURS), "estimate"] == pytest.approx(10.0)  # N=300 minus N=100 at L=30
    assert by.loc[("l_effect", OURS), "estimate"] == pytest.approx(20.0)  # L=30 minus L=10 at N=300
    assert by.loc[("frequent_jaccard", OURS), ["estimate", "low", "high"]].tolist() == [0.8, 0.6, 1.0]
    assert by.loc[("cumulative_spread", FAITHFUL), "estimate"] == pytest.approx(20 / 110)
    assert ("normalised_delta", OURS) not in by.index


def test_points_enter_without_interval_and_say_so():
    ev = evidence_table(fits={}, points=[{"quantity": "mask_delta", "setting": OURS, "estimate": -7.3,
                                          "converged": False}])
    row = ev.iloc[0]
    assert (row["estimate"], row["low"], row["high"]) == (-7.3, -7.3, -7.3)
    assert row["note"] == "point"
    setting = _verdicts(ev)[1]["mask"]
    assert setting == "ours only; not converged (ours); point"


def test_our_setting_points_from_the_summary():
    from layerwise.probes.claims import our_setting_points
    acc = pd.Series({"raw": 0.968, "normalised": 0.975, "masked_at_test": 0.895, "transfer gap": 0.12,
                     "random_scalar_trained": 0.04})
    points = {p["quantity"]: p for p in our_setting_points(acc, {"raw": False, "normalised": True})}
    assert points["normalised_delta"]["estimate"] == pytest.approx(0.7)
    assert points["normalised_delta"]["converged"] is False  # one of the two fits stopped at its cap
    assert points["mask_delta"]["estimate"] == pytest.approx(-7.3)
    assert points["transfer_delta"]["estimate"] == pytest.approx(-12.0)  # the gap is A minus B
    assert points["random_scalar_accuracy"]["converged"] is True
    verdict = _verdicts(evidence_table(fits={}, points=list(points.values())))[0]
    assert verdict["norm_drop"] == DIFFERS and verdict["mask"] == DIFFERS  # only ours run: fails there


def test_transfer_texts_are_never_paired_with_the_main_datasets():
    ids = np.arange(200)
    raw = pd.DataFrame({"text_id": ids, "n": 10, "correct": np.where(ids % 2 == 0, 5, 9)})
    # the other dataset's test texts carry the same indices but are other texts: pairing them would make the
    # difference look exact (every "pair" differs by one vector)
    target = pd.DataFrame({"text_id": ids, "n": 10, "correct": np.where(ids % 2 == 0, 4, 8)})
    ev = evidence_table(fits={(FAITHFUL, "raw"): (raw, True), (FAITHFUL, "transfer_target"): (target, True)},
                        n_boot=500).set_index("quantity").loc["transfer_delta"]
    assert ev["estimate"] == pytest.approx(-10.0)
    paired = difference_interval(target, raw, n_boot=500)
    assert paired.low == pytest.approx(-10.0) and paired.high == pytest.approx(-10.0)
    assert ev["low"] < -11.0 and ev["high"] > -9.0


def test_norm_growth_claims_from_planted_per_text_norms():
    """Our setting: mean norms 1.5^layer, the last layer 4x the one before: exponential and much larger, both
    reproduced. The post's setting: the final norm's output (norm 2) is the last layer: not larger, so that
    claim differs in setting, and the rising fit survives the one low last point only if R^2 stays above 0.9."""
    rng = np.random.default_rng(1)
    rows = []
    for text in range(60):
        factor = rng.uniform(0.9, 1.1)
        profile = [factor * 1.5 ** l for l in range(9)] + [factor * 4 * 1.5 ** 8]
        rows += [{"text": text, "layer": str(l), "norm": v, "setting": "ours"} for l, v in enumerate(profile)]
        rows += [{"text": text, "layer": str(l), "norm": v, "setting": "faithful"} for l, v in enumerate(profile)]
        rows.append({"text": text, "layer": "final_norm", "norm": 2.0, "setting": "faithful"})
    norms = {s: t.drop(columns="setting") for s, t in pd.DataFrame(rows).groupby("setting")}
    ev = evidence_table(fits={}, norms=norms, n_boot=300)
    by = ev.set_index(["quantity", "setting"])
    assert by.loc[("norm_last_ratio", OURS), "estimate"] == pytest.approx(4.0, rel=1e-6)
    assert by.loc[("norm_last_ratio", FAITHFUL), "estimate"] < 1.0
    assert by.loc[("norm_exponential_fit", OURS), "note"].startswith("+")
    verdicts, _ = _verdicts(ev)
    assert verdicts["norm_last"] == DIFFERS
    assert verdicts["norm_exponential"] in (REPRODUCED, DIFFERS)
    fit = by.loc[("norm_exponential_fit", FAITHFUL), "estimate"]
    assert (verdicts["norm_exponential"] == REPRODUCED) == (by.loc[("norm_exponential_fit", FAITHFUL), "low"] > 0.9)
    assert fit < by.loc[("norm_exponential_fit", OURS), "estimate"]
