"""Study 2's claim-to-verdict mapping (`layerwise.lens.claims`) on planted lens tables whose curves are known: a
post-like model must reproduce every claim, a SmolLM2-like one (the curves of issue 30) must fail exactly the
claims it contradicts, and noise that straddles a bound must leave the claim undecided."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerwise.lens.decode import FINAL
from layerwise.lens.claims import (bootstrap, copy_positions, first_depth_above, lens_claims, n_blocks, per_text,
                                   resolved_depth)
from layerwise.verdicts import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, verdict_frame

N = 8  # blocks


def dataset_table(agreement, kl_final, kl_input, input_rank, *, n_texts=12, n_tokens=10, noise=0.0, seed=0,
                  subblocks=False):
    """A lens table of `n_texts` texts whose per-depth means (depth 0..N) are the given curves: agreement as the
    share of agreeing tokens of every text, KLs and input ranks as constants per depth (plus per-text noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    layers = [("0", 0.0)]
    for i in range(1, N + 1):
        if subblocks:
            layers.append((f"{i}.attn", i - 0.5))
        layers.append((f"{i}.mlp" if subblocks else str(i), float(i)))
    layers.append((FINAL, N + 1.0))
    for t in range(n_texts):
        shift = rng.normal(0, noise)
        for label, depth in layers:
            d = min(int(np.ceil(depth)), N)
            k = round(agreement[d] * n_tokens) if label != FINAL else n_tokens
            for p in range(n_tokens):
                rows.append({"text": f"t{t}", "layer": label, "depth": depth, "position": p,
                             "top1_id": 5 if p < k else 6, "final_top1_id": 5,
                             "final_top1_rank": 1 if p < k else 50,
                             "kl_final": kl_final[d] + shift if label != FINAL else 0.0,
                             "kl_input": kl_input[d] + shift, "input_token_rank": input_rank[d],
                             "next_token_logprob": -1.0})
    return pd.DataFrame(rows)


def example_table(copy_agree_from, first_rank):
    """The plasma text: 'x plasma x x plasma' (positions 0..4); at position 3 (next token: the second plasma) the
    layers agree with the final top-1 from block `copy_agree_from` on; the first plasma has input rank
    `first_rank` at every block."""
    tokens = ["x", " plasma", " x", " say", " plasma"]
    rows = []
    for label, depth in [("0", 0.0), *[(str(i), float(i)) for i in range(1, N + 1)], (FINAL, N + 1.0)]:
        for p, tok in enumerate(tokens):
            agree = p != 3 or depth >= copy_agree_from
            rows.append({"text": "plasma", "layer": label, "depth": depth, "position": p, "input_token": tok,
                         "top1_id": 7 if agree else 8, "final_top1_id": 7, "next_token_id": 7 if p == 3 else 9,
                         "input_token_rank": first_rank if p == 1 and depth > 0 else 1})
    return pd.DataFrame(rows)


POST_LIKE = dict(agreement=[0, .1, .3, .6, .7, .8, .9, .95, 1], kl_final=[100, 8, 6, 5, 4, 3, 2, 1, 0],
                 kl_input=[0, 5, 8, 10, 12, 14, 16, 18, 20], input_rank=[1, 150, 300, 500, 800, 900, 1000, 2000, 3000])
SMOL_LIKE = dict(agreement=[0, .05, .05, .1, .1, .2, .3, .4, .9], kl_final=[100, 12, 14, 16, 17, 15, 10, 5, 0],
                 kl_input=[0, 20, 30, 34, 33, 32, 31, 30, 30],
                 input_rank=[1, 6000, 8000, 9000, 12000, 15000, 19000, 20000, 20000])


def verdicts(dataset, example, **kw):
    frame = verdict_frame(lens_claims(dataset, example, data_setting="planted", n_boot=200, **kw))
    return dict(zip(frame["key"], frame["verdict"]))


def test_post_like_curves_reproduce_every_claim():
    got = verdicts(dataset_table(**POST_LIKE), example_table(copy_agree_from=7, first_rank=300))
    assert got == {k: REPRODUCED for k in got}
    assert len(got) == 9


def test_smollm2_like_curves_fail_the_claims_they_contradict():
    got = verdicts(dataset_table(**SMOL_LIKE), example_table(copy_agree_from=8, first_rank=12000))
    assert got == {"good-guess-mid": NOT_REPRODUCED, "converges-early": NOT_REPRODUCED, "input-drop": REPRODUCED,
                   "smooth-after": NOT_REPRODUCED, "input-jump-smaller": REPRODUCED,
                   "kl30-absent": NOT_REPRODUCED, "input-ranks": NOT_REPRODUCED, "plasma-late": REPRODUCED,
                   "plasma-preserved": NOT_REPRODUCED}


def test_an_early_copy_and_a_kept_first_instance_flip_the_plasma_verdicts():
    got = verdicts(dataset_table(**POST_LIKE), example_table(copy_agree_from=2, first_rank=12000))
    assert got["plasma-late"] == NOT_REPRODUCED and got["plasma-preserved"] == NOT_REPRODUCED


def test_noise_straddling_a_bound_is_not_testable():
    # KL(final) from layer 1 to mid-depth: planted +0 change, texts shifted by noise in opposite layers' favour
    curves = dict(POST_LIKE, kl_final=[100, 8, 8, 8, 8, 3, 2, 1, 0])
    table = dataset_table(**curves, noise=0.0)
    # per-text noise on layer 4 only: half the texts rise, half fall, the mean change is 0 with a wide interval
    texts = sorted(table["text"].unique())
    bump = {t: (3.0 if i % 2 else -3.0) for i, t in enumerate(texts)}
    at_mid = (table["depth"] == N // 2) & (table["layer"] != FINAL)
    table.loc[at_mid, "kl_final"] += table.loc[at_mid, "text"].map(bump)
    got = verdicts(table, example_table(copy_agree_from=7, first_rank=300))
    assert got["smooth-after"] == NOT_TESTABLE


def test_the_sub_block_lens_does_not_change_the_claims_numbers():
    plain = verdict_frame(lens_claims(dataset_table(**SMOL_LIKE), example_table(8, 12000), data_setting="p",
                                      n_boot=50))
    sub = verdict_frame(lens_claims(dataset_table(**SMOL_LIKE, subblocks=True), example_table(8, 12000),
                                    data_setting="p", n_boot=50))
    pd.testing.assert_frame_equal(plain, sub)


def test_helpers_on_known_answers():
    table = dataset_table(**POST_LIKE, n_texts=3)
    assert n_blocks(table) == N
    depths, sums, counts = per_text(table, "kl_final")
    assert depths.tolist() == list(range(N + 1))
    np.testing.assert_allclose(sums[:, 0] / counts[:, 0], POST_LIKE["kl_final"])
    assert first_depth_above(np.array([0, .2, .6, .9]), 0.5) == pytest.approx(2 / 3)
    assert first_depth_above(np.array([0, .2, .4, .4]), 0.5) == pytest.approx(4 / 3)
    ex = example_table(copy_agree_from=6, first_rank=10)
    assert copy_positions(ex) == (1, 3)
    assert resolved_depth(ex, 3) == pytest.approx(6 / N)
    ev = bootstrap(lambda m: m("kl_final")[1] - m("kl_final")[0], table, n_boot=50)
    assert ev.estimate == pytest.approx(8 - 100) and ev.low == ev.high == pytest.approx(-92)


def test_a_text_without_two_instances_is_refused():
    ex = example_table(copy_agree_from=6, first_rank=10)
    ex.loc[ex["position"] == 4, "input_token"] = " other"
    with pytest.raises(ValueError, match="instance"):
        copy_positions(ex)


def test_a_text_cut_before_the_copy_leaves_the_plasma_claims_not_testable():
    ex = example_table(copy_agree_from=6, first_rank=10)
    got = verdicts(dataset_table(**POST_LIKE), ex[ex["position"] < 4])
    assert got["plasma-late"] == NOT_TESTABLE and got["plasma-preserved"] == NOT_TESTABLE
    assert got["input-drop"] == REPRODUCED


def test_verdict_macros_count_the_verdicts_and_discuss_only_what_did_not_reproduce():
    from layerwise.lens.claims import claim_units
    from layerwise.narrative.lens import lens_verdict_macros
    frame = verdict_frame(lens_claims(dataset_table(**SMOL_LIKE), example_table(8, 12000), data_setting="planted",
                                      n_boot=100))
    macros = lens_verdict_macros(frame, units=claim_units(), model_name="Smol_LM")
    assert str(macros["LensVerdictOpening"]).startswith(
        "Of the post's 9 claims tested here, 3 reproduced, 6 did not, 0 differ in setting and 0 could not be decided")
    discussion = str(macros["LensVerdictDiscussion"])
    assert discussion.count("is not reproduced: ours is") == 6
    assert "rises before it falls" in discussion       # the smooth-path reason, only because it failed
    assert "One big drop" not in discussion             # reproduced: not discussed as a disagreement
    table = str(macros["LensVerdictTable"])
    assert table.count(r"\textbf{not reproduced}") == 6 and "Smol\\_LM" in table
    assert "> 0.5" in table and "< 0 nats" in table  # T1 encoding prints them as themselves
    assert "-88 nats" in table                          # the planted drop 12 - 100, its interval a point


def test_the_smooth_path_reason_is_not_given_when_the_claim_reproduces():
    from layerwise.lens.claims import claim_units
    from layerwise.narrative.lens import lens_verdict_macros
    frame = verdict_frame(lens_claims(dataset_table(**POST_LIKE), example_table(7, 300), data_setting="p", n_boot=50))
    macros = lens_verdict_macros(frame, units=claim_units(), model_name="M")
    assert str(macros["LensVerdictDiscussion"]) == ""
    assert "9 reproduced, 0 did not" in str(macros["LensVerdictOpening"])


def test_the_input_rank_reason_follows_the_side_the_claim_fails_on():
    from layerwise.lens.claims import claim_units
    from layerwise.narrative.lens import lens_verdict_macros
    for ranks, side in (([1, 20000] + [30000] * 7, "in the 10000s or beyond"), ([1] + [20] * 8, "below 100")):
        frame = verdict_frame(lens_claims(dataset_table(**dict(POST_LIKE, input_rank=ranks)), example_table(7, 300),
                                          data_setting="p", n_boot=50))
        text = str(lens_verdict_macros(frame, units=claim_units(), model_name="M")["LensVerdictDiscussion"])
        assert f"outside the post's 100s to 1000s ({side})" in text
