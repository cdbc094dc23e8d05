"""Study 3's claims on planted numbers: the bell rule on planted profiles (bell, spike-then-decay, flat, U),
per batch, in the source's setting and ours, and the over-training claims; each verdict from the numbers
that call for it."""

import numpy as np
import pandas as pd
import pytest

from layerwise.geometry.claims import (anisotropy_growth, geometry_claims, id_rise_and_fall, layer_claims,
                                       median_interval, slug, training_claims)
from layerwise.geometry.shape import batch_bell_scores, bell_score
from layerwise.verdicts import DIFFERS, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, verdict_frame

N_LAYERS = 30
DEPTH = np.arange(N_LAYERS + 1) / N_LAYERS


def bell(depth=DEPTH):
    return 0.1 + 0.5 * np.exp(-((depth - 0.5) / 0.15) ** 2)


def spike_then_decay(depth=DEPTH):
    """The issue's SmolLM2 shape: a spike at layer 3 of 30 (depth 0.10), then a slow decay."""
    return np.where(depth < 0.1, 0.1 + 5 * depth, 0.6 * np.exp(-(depth - 0.1) * 3))


def flat(depth=DEPTH):
    return 0.2 + 0.005 * np.sin(7 * depth)


def u_shape(depth=DEPTH):
    return 0.1 + 0.5 * (depth - 0.5) ** 2


@pytest.mark.parametrize("profile, passes", [(bell, True), (spike_then_decay, False), (flat, False), (u_shape, False)])
def test_bell_rule_on_planted_profiles(profile, passes):
    parts = bell_score(DEPTH, profile())
    assert (parts["score"] > 0.1) is passes
    if profile is spike_then_decay:
        assert parts["peak_depth"] == pytest.approx(0.1) and parts["score"] < 0  # the outside exceeds the inside
    if profile is u_shape:
        assert parts["rise"] < 0 and parts["fall"] < 0


def test_bell_score_is_the_smaller_of_rise_and_fall_over_the_peak():
    depth = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    parts = bell_score(depth, [0.2, 0.5, 1.0, 0.6, 0.4])
    assert parts["rise"] == pytest.approx(0.8) and parts["fall"] == pytest.approx(0.6)
    assert parts["score"] == pytest.approx(0.6)
    # a peak outside the band: negative by how far it exceeds the interior peak
    assert bell_score(depth, [0.2, 0.5, 0.4, 0.3, 1.0])["score"] == pytest.approx(-0.5)


def test_the_first_or_last_layer_cannot_be_an_interior_peak():
    with pytest.raises(ValueError, match="interior"):
        bell_score(DEPTH, bell(), interior=(0.0, 0.9))
    with pytest.raises(ValueError, match="inside and outside"):
        bell_score(np.array([0.4, 0.5, 0.6]), [1.0, 2.0, 1.0])


def batches_of(profile_fn, n_batches=5, noise=0.005, seed=0, spike=None, **columns):
    """Per-batch rows (layer, batch, anisotropy ...): the planted profile plus small noise per batch;
    `spike=(batch, layer, value)` plants one batch's outlier-carried value at one layer."""
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_batches):
        values = profile_fn() + noise * rng.standard_normal(DEPTH.size)
        if spike is not None and spike[0] == b:
            values[spike[1]] = spike[2]
        for layer, v in enumerate(values):
            rows.append({"layer": layer, "batch": b, "anisotropy": v, **{k: f()[layer] for k, f in columns.items()}})
    return pd.DataFrame(rows)


def test_one_batch_cannot_carry_the_verdict():
    """The issue's layer 12: four batches near 0.095, one at 0.93 (one outlier token). The median over batches
    keeps the bell score of the other four; the mean profile would have a peak at layer 12."""
    rows = batches_of(flat, spike=(2, 12, 0.93))
    scores = batch_bell_scores(rows, "anisotropy", N_LAYERS)
    assert (scores["score"] > 0.5).sum() == 1 and (scores["score"] < 0.1).sum() == 4
    evidence = median_interval(scores["score"], seed=0)
    assert evidence.estimate < 0.1
    mean_profile = rows.groupby("layer")["anisotropy"].mean().to_numpy()
    assert bell_score(DEPTH, mean_profile)["score"] > 0.1  # what averaging over batches would have said


def table_for(model, kind, faithful_fn, ours_fn, without_fn=None, zscored_fn=None):
    pos0 = batches_of(faithful_fn, seed=1).assign(position0=True)
    extra = {}
    if without_fn is not None:
        extra["anisotropy_without_outliers"] = without_fn
    if zscored_fn is not None:
        extra["anisotropy_standardised"] = zscored_fn
    ours = batches_of(ours_fn, seed=2, **extra).assign(position0=False)
    return pd.concat([pos0, ours], ignore_index=True).assign(model=model, kind=kind, n_layers=N_LAYERS)


def verdicts(claims):
    frame = verdict_frame(claims)
    return dict(zip(frame["key"], frame["verdict"]))


def test_decoder_bell_verdicts_in_the_source_setting_and_ours():
    """Spike-then-decay with position 0 kept (as the source ran it) and in ours: not reproduced; without
    outlier tokens it becomes a bell: differs in setting; z-scored flat: not reproduced."""
    table = table_for("SmolLM2 135M", "decoder", spike_then_decay, spike_then_decay, without_fn=bell, zscored_fn=flat)
    got = verdicts(layer_claims(table, margin=0.1, seed=0))
    assert got == {"bell_smollm2-135m": NOT_REPRODUCED, "bell_smollm2-135m_no_outliers": DIFFERS,
                   "bell_smollm2-135m_zscored": NOT_REPRODUCED}


def test_a_planted_bell_is_reproduced_and_an_encoder_u_is_no_bell():
    table = pd.concat([table_for("dec", "decoder", bell, bell, without_fn=bell, zscored_fn=bell),
                       table_for("enc", "encoder", flat, u_shape)], ignore_index=True)
    got = verdicts(layer_claims(table))
    assert got["bell_dec"] == got["bell_dec_no_outliers"] == got["bell_dec_zscored"] == REPRODUCED
    assert got["flat_enc"] == REPRODUCED
    encoder_bell = verdicts(layer_claims(table_for("enc", "encoder", bell, bell)))
    assert encoder_bell["flat_enc"] == NOT_REPRODUCED


def test_noisy_batches_leave_the_bell_undecided():
    """Batches that disagree (two bells, three flat) give an interval across the margin: not testable."""
    rows = pd.concat([batches_of(bell, n_batches=2, seed=3),
                      batches_of(flat, n_batches=3, seed=4).assign(batch=lambda t: t["batch"] + 2)])
    table = rows.assign(model="m", kind="decoder", n_layers=N_LAYERS, position0=True)
    claims = layer_claims(table)
    assert claims[0].faithful.low < 0.1 < claims[0].faithful.high
    assert verdicts(claims)["bell_m"] == NOT_TESTABLE


def training_table(id_profile, anisotropy_start=0.05, anisotropy_end=0.3, n_batches=3, seed=0):
    """Per-batch checkpoint rows: 2 layers (+ layer 0), steps 0..800; anisotropy from start to end."""
    rng = np.random.default_rng(seed)
    steps = [0, 1, 2, 4, 8, 15, 29, 56, 109, 212, 412, 800]
    anis = np.linspace(anisotropy_start, anisotropy_end, len(steps))
    rows = []
    for b in range(n_batches):
        for i, step in enumerate(steps):
            for layer in (0, 1, 2):
                rows.append({"kind": "decoder", "step": step, "layer": layer, "batch": b, "n_layers": 2,
                             "anisotropy": anis[i] + 0.001 * rng.standard_normal(),
                             "twonn_id": id_profile[i] + 0.05 * rng.standard_normal() + (50 if layer == 0 else 0)})
    return pd.DataFrame(rows)


def test_training_claims_on_planted_checkpoints():
    rise_fall = np.array([5, 8, 12, 16, 20, 22, 24, 22, 18, 15, 14, 13.0])
    table = training_table(rise_fall)
    growth = anisotropy_growth(table)
    assert growth == pytest.approx([0.25] * 3, abs=0.01)
    scores = id_rise_and_fall(table)
    assert scores == pytest.approx([11 / 24] * 3, abs=0.02)  # min(24 - 5, 24 - 13) / 24; layer 0 left out
    assert verdicts(training_claims(table)) == {"anisotropy_training": REPRODUCED, "anisotropy_stabilises": REPRODUCED,
                                                "id_training": REPRODUCED}
    rising = training_table(np.linspace(5, 24, 12), anisotropy_start=0.3, anisotropy_end=0.1)
    assert verdicts(training_claims(rising)) == {"anisotropy_training": NOT_REPRODUCED,
                                                 "anisotropy_stabilises": NOT_REPRODUCED,  # 2/3 below its peak
                                                 "id_training": NOT_REPRODUCED}


def test_training_intervals_are_over_seeds_not_batches():
    """Three seeds whose batches agree closely within each run: per seed the ID bell score is 11/24 (rise and fall)
    for two seeds and a monotone rise (no fall) for the third. Over batches of all runs pooled, the many agreeing
    batches would look decided; over seeds, one of three disagrees and the interval reaches below the margin."""
    from layerwise.geometry.claims import per_run
    bell_run = np.array([5, 8, 12, 16, 20, 22, 24, 22, 18, 15, 14, 13.0])
    rising = np.linspace(5, 24, 12)
    runs = [training_table(bell_run, seed=0), training_table(bell_run, seed=1), training_table(rising, seed=2)]
    training = pd.concat([t.assign(seed=s) for s, t in enumerate(runs)], ignore_index=True)
    scores = per_run(training, id_rise_and_fall)
    assert scores.shape == (3,)  # one value per seed, not 3 seeds x 3 batches
    assert scores[:2] == pytest.approx([11 / 24] * 2, abs=0.02) and scores[2] < 0.05
    claim = {c.key: c for c in training_claims(training)}["id_training"]
    assert claim.faithful.low < 0.1 < claim.faithful.high and claim.verdict()[0] == NOT_TESTABLE
    same = pd.concat([training_table(bell_run, seed=s).assign(seed=s) for s in range(3)], ignore_index=True)
    assert verdicts(training_claims(same))["id_training"] == REPRODUCED


def test_missing_training_is_not_testable_and_keys_are_unique():
    table = table_for("A b", "decoder", bell, bell)
    claims = geometry_claims(table, None)
    got = verdicts(claims)
    assert got["anisotropy_training"] == got["id_training"] == NOT_TESTABLE
    assert slug("SmolLM2-135M-Instruct (Q4_1)") == "smollm2-135m-instruct-q4-1"


def test_too_few_layers_or_checkpoints_give_no_number_rather_than_an_error():
    rows = pd.DataFrame({"layer": [0, 1] * 2, "batch": [0, 0, 1, 1], "anisotropy": [0.1, 0.2, 0.1, 0.3]})
    table = rows.assign(model="one", kind="decoder", n_layers=1, position0=True)
    assert verdicts(layer_claims(table)) == {"bell_one": NOT_TESTABLE}
    two_steps = training_table(np.linspace(5, 24, 12))
    two_steps = two_steps[two_steps["step"].isin([0, 800])]
    assert verdicts(training_claims(two_steps))["id_training"] == NOT_TESTABLE


# --------------------------------------------------------------------------- sentences and figure on planted batches

def issue_batches():
    """Layer 12 of the issue: batches 0.096, 0.093, 0.928, 0.095, 0.095, the third carried by one outlier token;
    every other layer 0.1 in every batch."""
    rows = []
    at12 = [0.096, 0.093, 0.928, 0.095, 0.095]
    share = [0.0, 0.0, 0.999, 0.0, 0.0]
    for layer in range(N_LAYERS + 1):
        for b in range(5):
            rows.append({"layer": layer, "batch": b, "position0": False, "anisotropy": at12[b] if layer == 12 else 0.1,
                         "anisotropy_without_outliers": 0.09, "outlier_sigma1_share": share[b] if layer == 12 else 0.0,
                         "twonn_id": 10.0 + b, "twonn_mle_id": 11.0 + b})
            rows.append({"layer": layer, "batch": b, "position0": True, "anisotropy": 0.998 if layer == 12 else 0.5})
    return pd.DataFrame(rows).assign(model="SmolLM2", kind="decoder", n_layers=N_LAYERS)


def test_batch_sentence_gives_every_batch_and_the_outliers_share():
    from layerwise.narrative.geometry import batch_sentence
    text = batch_sentence(issue_batches())
    assert ("In SmolLM2 the batches disagree most at layer 12: its 5 batches give anisotropy 0.096, 0.093, 0.928, "
            "0.095, 0.095 (median 0.095); the outlier tokens carry 0\\%, 0\\%, 99.9\\%, 0\\%, 0\\% of each "
            "batch's $\\sigma_1^2$.") in text


def test_position0_sentence_follows_the_manifest_and_the_kept_variant():
    from layerwise.narrative.geometry import position0_sentence
    p0 = pd.DataFrame({"layer": [3, 12], "n_position0": [168, 168], "n_outliers": [168, 160],
                       "median_norm_ratio": [40.0, 12.0], "position0_is_special": [False, False]})
    text = position0_sentence({"SmolLM2": p0}, issue_batches())
    assert "position~0 is a content token" in text and "special token" not in text.split(";")[0]
    assert "at layer 3, 168 of its 168 vectors are outliers" in text
    # the default profile's median peak is layer 0 (0.1; layer 12's median is 0.095); kept, 0.998 at layer 12
    assert "a median anisotropy of 0.5 at layer 0 (against 0.1 without it) and 0.998 at most (layer 12)" in text
    special = position0_sentence({"SmolLM2": p0.assign(position0_is_special=True)}, issue_batches())
    assert "position~0 is a special token" in special


def test_anisotropy_figure_draws_every_batch_at_printed_size():
    from layerwise.plots.geometry import plot_anisotropy_batches, plot_intrinsic_dimension_batches
    batches = issue_batches()
    fig = plot_anisotropy_batches(batches)
    decoders = fig.axes[0]
    dots = decoders.collections[0].get_offsets()
    assert len(dots) == 5 * (N_LAYERS + 1)  # every (layer, batch), none averaged away
    assert max(dots[:, 1]) == pytest.approx(0.928)
    median = decoders.lines[0].get_ydata()
    assert median[12] == pytest.approx(0.095)  # the line is the median, not the mean (0.261)
    assert fig.get_size_inches()[0] == pytest.approx(6.3)
    texts = [t for ax in fig.axes for t in [ax.xaxis.label, ax.yaxis.label, ax.title, *ax.get_xticklabels()]]
    assert min(t.get_fontsize() for t in texts) >= 7
    id_fig = plot_intrinsic_dimension_batches(batches)
    labels = [line.get_label() for line in id_fig.axes[0].lines]
    assert labels == ["SmolLM2, linear fit", "SmolLM2, MLE"]


def test_sweep_removes_what_each_threshold_and_top_m_mark():
    """Three planted giants (norms 1000, 100, 20 x the rest) in 300 isotropic rows: k = 200 removes one,
    k = 50 two, k = 10 three; top-1 and top-3 remove the largest one and all three. Without all three the batch is
    the isotropic rest (anisotropy near 1/16); with the largest kept it holds nearly all the variance."""
    from layerwise.geometry import layer_batches
    from layerwise.geometry.layers import removal_masks
    rng = np.random.default_rng(40)
    x = rng.standard_normal((300, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[0] *= 1000
    x[1] *= 100
    x[2] *= 20
    masks = removal_masks(x, k_sweep=(200, 50, 10), top_m=(1, 3))
    assert {k: int(m.sum()) for k, m in masks.items()} == {
        "anisotropy_without_k200": 1, "anisotropy_without_k50": 2, "anisotropy_without_k10": 3,
        "anisotropy_without_top1": 1, "anisotropy_without_top3": 3}
    assert masks["anisotropy_without_top1"][0] and not masks["anisotropy_without_top1"][1:].any()
    row = layer_batches(x, layer=0, batch_size=300, k_sweep=(200, 10), top_m=(3,), with_twonn=False).iloc[0]
    assert row["anisotropy"] > 0.99
    assert row["anisotropy_without_k10"] == pytest.approx(row["anisotropy_without_top3"])
    assert row["anisotropy_without_k10"] < 0.2
    assert 0.5 < row["anisotropy_without_k200"] < 0.99  # the 100x giant is left and dominates


def test_sweep_sentence_counts_the_settings_that_pass():
    from layerwise.geometry.claims import sweep_evidence
    from layerwise.narrative.geometry import sweep_sentence
    table = table_for("Dec", "decoder", spike_then_decay, spike_then_decay)
    ours = table["position0"] == False  # noqa: E712
    for name, fn in (("anisotropy_without_k3", bell), ("anisotropy_without_k5", flat),
                     ("anisotropy_without_top10", spike_then_decay)):
        table.loc[ours, name] = np.tile(fn(), 5)
    sweep = sweep_evidence(table)
    assert list(sweep["removal"]) == ["k3", "k5", "top10"]
    text = sweep_sentence(sweep, margin=0.1)
    assert "The rule passes in 1, fails in 2 and is undecided in 0 of these 3 settings." in text
    assert "$k$=3: 0.83 [0.83, 0.83]" in text  # (0.6 - 0.1) / 0.6 on the planted bell


def test_growth_without_stabilising_and_a_pair_without_contrast():
    """The baseline's decoder: anisotropy 0.086 at step 0, 0.42 at step 29, 0.189 at the end: it grows (last above
    first) but does not stabilise (55% below its peak); a trained pair ending at 0.189 and 0.187 per batch shows
    no contrast (interval across 0), while a pretrained pair 0.6 against 0.1 does."""
    steps = [0, 1, 2, 4, 8, 15, 29, 56, 109, 212, 412, 800]
    dec = [0.086, 0.085, 0.084, 0.08, 0.122, 0.406, 0.42, 0.293, 0.268, 0.225, 0.229, 0.189]
    rng = np.random.default_rng(5)
    rows = []
    for b in range(3):
        for i, step in enumerate(steps):
            for kind, top in (("decoder", dec[i]), ("encoder", 0.187 if i == len(steps) - 1 else 0.1)):
                for layer in (0, 1, 2):
                    noise = 0.004 * rng.standard_normal()
                    rows.append({"kind": kind, "step": step, "layer": layer, "batch": b, "n_layers": 2,
                                 "anisotropy": top + noise if layer == 2 else 0.05, "twonn_id": 5.0 + i % 3})
    training = pd.DataFrame(rows)
    got = verdicts(training_claims(training))
    assert got["anisotropy_training"] == REPRODUCED and got["anisotropy_stabilises"] == NOT_REPRODUCED
    pretrained = pd.concat([table_for("D", "decoder", bell, bell), table_for("E", "encoder", flat, flat)])
    from layerwise.geometry.claims import contrast_claim
    claim = contrast_claim(pretrained, training)
    assert claim.faithful.low > 0  # 0.6 against 0.2: decoders higher
    assert claim.ours.low < 0 < claim.ours.high or abs(claim.ours.estimate) < 0.01
    # the pretrained pair differs in far more than decoder/encoder: only the controlled pair can confirm, and
    # it cannot decide
    verdict, reason = claim.verdict()
    assert verdict == NOT_TESTABLE and "confounded" in reason


def test_contrast_sentence_says_no_contrast_when_the_pair_interval_contains_zero():
    from layerwise.geometry.claims import contrast_claim
    from layerwise.narrative.geometry import contrast_sentence
    rows = []
    for b in range(3):
        for kind, top in (("decoder", 0.189 + 0.003 * (b - 1)), ("encoder", 0.187 - 0.003 * (b - 1))):
            rows += [{"kind": kind, "step": 800, "layer": layer, "batch": b, "anisotropy": top if layer else 0.05}
                     for layer in (0, 1, 2)]
    training = pd.DataFrame(rows)
    pretrained = pd.concat([table_for("D", "decoder", bell, bell), table_for("E", "encoder", flat, flat)])
    frame = verdict_frame([contrast_claim(pretrained, training)])
    text = contrast_sentence(frame, training)
    assert "ends at 0.189 (decoder) against 0.187 (encoder)" in text
    assert "no contrast: the interval of the difference contains 0" in text


def test_the_verdict_table_fits_the_text_width():
    """11 pt article, 2.5 cm margins: 430 pt of text. The columns' shares of the line plus 14 column gaps must fit
    (the first layout ran 27 pt into the margin), and the verdict column must hold a bold 'reproduced' (~44 pt)."""
    import re
    from layerwise.narrative.geometry import verdict_macros
    table_rows = table_for("D", "decoder", bell, bell)
    frame = verdict_frame(layer_claims(table_rows))
    table = str(verdict_macros(frame, table_rows, {}, margin=0.1, interior=(0.2, 0.8))["GeometryVerdictTable"])
    widths = [float(w) for w in re.findall(r"p\{([\d.]+)\\linewidth\}", table)]
    gap = re.search(r"\\tabcolsep\}\{([\d.]+)pt\}", table)
    assert len(widths) == 7
    assert 430 * sum(widths) + 14 * (float(gap.group(1)) if gap else 6.0) <= 430
    assert 430 * widths[-1] >= 44


def test_a_bell_carried_by_outlier_tokens_is_said_to_differ_in_setting():
    """The run's SmolLM2 case: a bell with every token kept (reproduced as the source ran it), none without the
    outlier tokens: the sentence must not stop at "reproduced"."""
    from layerwise.narrative.geometry import bell_sentences
    table = table_for("SmolLM2 x", "decoder", bell, bell, without_fn=spike_then_decay)
    frame = verdict_frame(layer_claims(table, margin=0.1))
    text = bell_sentences(frame, margin=0.1, interior=(0.2, 0.8))
    assert ("the source's claim of a bell is \\emph{reproduced} as the source ran it, and \\emph{differs in "
            "setting} without outlier tokens: the peak rests on a few tokens of extreme norm") in text
    plain = bell_sentences(verdict_frame(layer_claims(table_for("B", "decoder", bell, bell, without_fn=bell))),
                           margin=0.1, interior=(0.2, 0.8))
    assert "rests on a few tokens" not in plain
