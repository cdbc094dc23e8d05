"""The logit lens's dataset statistics (`layerwise.lens.stats`: `summarize_lens`, `layer_change`,
`first_layer_above`, `select_positions`, sub-block steps, position buckets, top-1 overlap) on planted tables whose
answers are known by construction.

Bootstrap intervals are checked against an explicit resampling loop (texts drawn with the module's seeded
multiplicities, their tokens concatenated, the mean recomputed, then the textbook percentiles), never against
copied numbers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from layerwise.lens.decode import FINAL
from layerwise.lens.stats import (SUMMARY_VALUE_COLUMNS, _multiplicities, first_layer_above, layer_change,
                                  select_positions, summarize_lens, token_metrics)


pytestmark = pytest.mark.usefixtures("single_torch_thread")


# --- planted lens tables --------------------------------------------------------------------------------------------

def _row(text, layer, kl_final=0.0, kl_input=0.0, **extra) -> dict:
    base = {"text": text, "layer": layer, "depth": 0.0 if layer == "0" else 1.0, "position": 1, "top1_id": 0,
            "final_top1_id": 0, "final_top1_rank": 1, "kl_final": kl_final, "kl_input": kl_input,
            "input_token_rank": 1, "next_token_logprob": 0.0}
    return {**base, **extra}


def _many_texts_table() -> pd.DataFrame:
    """15 texts with irregular values: the bootstrap distribution has no repeated atoms at its tails."""
    rng = np.random.default_rng(0)
    return pd.DataFrame([_row(f"t{i:02d}", layer, v, 2 * v) for i in range(15) for layer in ("0", "1")
                         for v in rng.gamma(2.0, 3.0 if layer == "0" else 1.0, size=1 + i % 3)])


def _planted_change_table() -> pd.DataFrame:
    """Five texts (in unsorted order) with 1-3 tokens each and distinct per-token KLs in layers 0 and 1."""
    per_text = {"d": ([9.0, 11.0], [2.0]), "b": ([14.0], [1.0, 4.5, 2.5]), "a": ([7.0, 8.0, 6.5], [3.0, 0.5]),
                "e": ([20.0], [6.0]), "c": ([10.0, 13.0], [2.2, 1.7])}
    rows = []
    for text, (layer0, layer1) in per_text.items():
        rows += [_row(text, "0", v, 0.5 * v) for v in layer0]
        rows += [_row(text, "1", v, 20.0 - v) for v in layer1]
    return pd.DataFrame(rows)


def _brute_change(group: pd.DataFrame, units: list, weights: np.ndarray, metric: str, from_layer: str,
                  to_layer: str, percentiles: list[float]) -> dict:
    """Means, paired bootstrap interval and counts by explicit resampling: each resample concatenates the tokens
    of every drawn text (as often as it is drawn) and takes the difference of the two layers' means."""
    tokens = {(u, layer): group[(group["text"] == u) & (group["layer"] == layer)][metric].dropna().tolist()
              for u in units for layer in (from_layer, to_layer)}

    def mean(values):
        return np.mean(values) if values else np.nan

    boots = []
    for draw in weights:
        picked = [u for u, times in zip(units, draw) for _ in range(int(times))]
        boots.append(mean([v for u in picked for v in tokens[u, to_layer]])
                     - mean([v for u in picked for v in tokens[u, from_layer]]))
    low, high = np.nanpercentile(boots, percentiles)
    all0 = [v for u in units for v in tokens[u, from_layer]]
    all1 = [v for u in units for v in tokens[u, to_layer]]
    n_texts = sum(bool(tokens[u, from_layer]) and bool(tokens[u, to_layer]) for u in units)
    return {"mean_from": np.mean(all0), "mean_to": np.mean(all1), "change": np.mean(all1) - np.mean(all0),
            "ci_low": low if n_texts >= 2 else np.nan, "ci_high": high if n_texts >= 2 else np.nan,
            "n_texts": n_texts, "n_tokens": len(all1)}


@pytest.mark.parametrize("confidence, percentiles", [(0.95, [2.5, 97.5]), (0.8, [10.0, 90.0])])
def test_layer_change_equals_an_explicit_paired_bootstrap(confidence, percentiles):
    for table in (_many_texts_table().sample(frac=1.0, random_state=1), _planted_change_table()):
        units = sorted(table["text"].unique())  # the seeded draw's columns are the texts in sorted order
        weights = _multiplicities(len(units), 300, 11)
        change = layer_change(table, n_boot=300, seed=11, confidence=confidence).set_index("metric")
        for metric in ("kl_final", "kl_input"):
            expected = _brute_change(table, units, weights, metric, "0", "1", percentiles)
            got = change.loc[metric]
            assert (got["from_layer"], got["to_layer"]) == ("0", "1")
            for column, value in expected.items():
                assert got[column] == pytest.approx(value, rel=1e-9, abs=1e-12), (metric, column)
    # by construction KL(final || .) drops and KL(input || .) rises in every text: the intervals exclude 0
    assert change.loc["kl_final", "ci_high"] < 0 < change.loc["kl_input", "ci_low"]


def test_layer_change_does_not_depend_on_row_order_and_is_seeded():
    table = _planted_change_table()
    base = layer_change(table, n_boot=200, seed=4)
    shuffled = layer_change(table.sample(frac=1.0, random_state=2).reset_index(drop=True), n_boot=200, seed=4)
    pd.testing.assert_frame_equal(shuffled, base, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(layer_change(table, n_boot=200, seed=4), base)
    assert not layer_change(table, n_boot=200, seed=5)["ci_low"].equals(base["ci_low"])


def test_layer_change_defaults_are_the_papers_2000_resamples_with_seed_0():
    table = _many_texts_table()
    pd.testing.assert_frame_equal(layer_change(table), layer_change(table, n_boot=2000, seed=0))
    change = layer_change(table).set_index("metric")
    assert (change["from_layer"] == "0").all() and (change["to_layer"] == "1").all()
    assert list(change.index) == ["kl_final", "kl_input"]


def test_layer_change_per_group_with_texts_missing_from_groups_and_layers():
    """Groups listed in order of appearance; a group's texts are a subset of all texts (the others weigh nothing);
    a text with rows in only one of the two layers counts in that layer's mean but not in n_texts. Resamples that
    draw none of a group's texts are dropped silently (no 0/0 warnings)."""
    rows = []
    for text, v0, v1 in (("p", [10.0, 12.0], [4.0]), ("q", [8.0], [1.0, 2.0]), ("r", [11.0], [6.0])):
        rows += [_row(text, "0", v, model="m2") for v in v0] + [_row(text, "1", v, model="m2") for v in v1]
    rows += [_row("x", "0", 30.0, model="m2"), _row("y", "1", 0.0, model="m2"), _row("y", "1", 0.25, model="m2")]
    for text, v0, v1 in (("a", [5.0], [2.0]), ("b", [7.0, 3.0], [1.0])):
        rows += [_row(text, "0", v, model="m1") for v in v0] + [_row(text, "1", v, model="m1") for v in v1]
    table = pd.DataFrame(rows)
    units = sorted(table["text"].unique())
    weights = _multiplicities(len(units), 250, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        change = layer_change(table, by=("model",), n_boot=250, seed=3)
    assert change["model"].tolist() == ["m2", "m2", "m1", "m1"]
    assert change.columns.tolist()[:2] == ["model", "metric"]
    for model in ("m2", "m1"):
        got = change[(change["model"] == model) & (change["metric"] == "kl_final")].iloc[0]
        expected = _brute_change(table[table["model"] == model], units, weights, "kl_final", "0", "1", [2.5, 97.5])
        for column, value in expected.items():
            assert got[column] == pytest.approx(value, rel=1e-9, abs=1e-12), (model, column)
    m2 = change[(change["model"] == "m2") & (change["metric"] == "kl_final")].iloc[0]
    assert m2["mean_from"] == pytest.approx((10 + 12 + 8 + 11 + 30) / 5)  # x counts in layer 0
    assert m2["mean_to"] == pytest.approx((4 + 1 + 2 + 6 + 0 + 0.25) / 6)  # y counts in layer 1
    assert m2["n_texts"] == 3 and m2["n_tokens"] == 6
    with pytest.raises(ValueError, match=r"no rows of layer '7' for \{'model': 'm2'\}"):
        layer_change(table, by=("model",), to_layer="7", n_boot=10)


def test_layer_change_of_one_text_has_no_interval():
    table = pd.DataFrame([_row("a", "0", 5.0), _row("a", "0", 7.0), _row("a", "1", 1.0)])
    change = layer_change(table, n_boot=50).set_index("metric")
    assert change.loc["kl_final", "change"] == pytest.approx(1.0 - 6.0)
    assert change["ci_low"].isna().all() and change["ci_high"].isna().all()
    assert (change["n_texts"] == 1).all() and (change["n_tokens"] == 1).all()


def test_layer_change_rejects_unknown_metrics_and_missing_columns():
    table = _planted_change_table()
    with pytest.raises(ValueError, match=r"unknown metrics \['bogus'\]"):
        layer_change(table, metrics=("kl_final", "bogus"), n_boot=10)
    with pytest.raises(ValueError, match=r"lens table lacks columns \['model'\]"):
        layer_change(table, by=("model",), n_boot=10)
    with pytest.raises(ValueError, match=r"lens table lacks columns \['text'\]"):
        layer_change(table.drop(columns="text"), n_boot=10)


# --- summarize_lens ------------------------------------------------------------------------------------------------

def _planted_summary_table() -> pd.DataFrame:
    per_text = {"c": [1.0, 4.0], "a": [2.5], "d": [8.0, 0.5, 3.0], "b": [6.0, 7.5]}
    return pd.DataFrame([_row(t, "1", v) for t, values in per_text.items() for v in values])


@pytest.mark.parametrize("confidence, percentiles", [(0.95, [2.5, 97.5]), (0.5, [25.0, 75.0])])
def test_summary_interval_equals_an_explicit_text_bootstrap(confidence, percentiles):
    small = _planted_summary_table()
    large = _many_texts_table().sample(frac=1.0, random_state=0)  # texts in scrambled order
    large = large[large["layer"] == "1"]
    for table, n_texts in ((small, 4), (large, 15)):
        units = sorted(table["text"].unique())
        weights = _multiplicities(len(units), 300, 7)
        row = summarize_lens(table, n_boot=300, seed=7, confidence=confidence).set_index("metric").loc["kl_final"]
        tokens = {u: table[table["text"] == u]["kl_final"].tolist() for u in units}
        boots = [np.mean([v for u, times in zip(units, draw) for _ in range(int(times)) for v in tokens[u]])
                 for draw in weights]
        low, high = np.percentile(boots, percentiles)
        assert row["mean"] == pytest.approx(np.mean(table["kl_final"]))
        assert row["ci_low"] == pytest.approx(low, rel=1e-9) and row["ci_high"] == pytest.approx(high, rel=1e-9)
        assert (row["n_texts"], row["n_tokens"]) == (n_texts, len(table))


def test_summary_defaults_are_the_papers_2000_resamples_with_seed_0():
    table = _many_texts_table()
    pd.testing.assert_frame_equal(summarize_lens(table), summarize_lens(table, n_boot=2000, seed=0))


def test_summary_with_one_resample_reports_that_resample():
    table = _planted_summary_table()
    units = sorted(table["text"].unique())
    draw = _multiplicities(len(units), 1, 2)[0]
    values = [v for u, times in zip(units, draw) for _ in range(int(times))
              for v in table[table["text"] == u]["kl_final"]]
    row = summarize_lens(table, n_boot=1, seed=2).set_index("metric").loc["kl_final"]
    assert row["ci_low"] == pytest.approx(np.mean(values)) and row["ci_high"] == pytest.approx(np.mean(values))


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1])
def test_summary_rejects_confidence_outside_the_open_unit_interval(confidence):
    with pytest.raises(ValueError, match=r"confidence must lie in \(0, 1\)"):
        summarize_lens(_planted_summary_table(), confidence=confidence, n_boot=10)


def test_summary_rejects_no_resamples_and_empty_tables():
    with pytest.raises(ValueError, match="n_boot must be positive"):
        summarize_lens(_planted_summary_table(), n_boot=0)
    with pytest.raises(ValueError, match="empty lens table"):
        summarize_lens(_planted_summary_table().iloc[:0], n_boot=10)


def test_summary_per_group_with_texts_missing_from_groups():
    """Groups in order of appearance; each group's mean and interval use its own texts only (the others weigh
    nothing in a resample); resamples that draw none of a group's texts are dropped silently."""
    rows = [_row(t, "1", v, model="z") for t, v in (("q", 1.0), ("q", 2.0), ("p", 6.0), ("r", 4.0))]
    rows += [_row(t, "1", v, model="a") for t, v in (("b", 10.0), ("a", 20.0), ("a", 26.0))]
    table = pd.DataFrame(rows)
    units = sorted(table["text"].unique())
    weights = _multiplicities(len(units), 250, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = summarize_lens(table, by=("model", "layer", "depth"), n_boot=250, seed=5)
    assert summary["model"].drop_duplicates().tolist() == ["z", "a"]
    for model, mean, n_texts, n_tokens in (("z", 13 / 4, 3, 4), ("a", 56 / 3, 2, 3)):
        row = summary[(summary["model"] == model) & (summary["metric"] == "kl_final")].iloc[0]
        tokens = {u: table[(table["model"] == model) & (table["text"] == u)]["kl_final"].tolist() for u in units}
        boots = []
        for draw in weights:
            values = [v for u, times in zip(units, draw) for _ in range(int(times)) for v in tokens[u]]
            boots.append(np.mean(values) if values else np.nan)
        low, high = np.nanpercentile(boots, [2.5, 97.5])
        assert row["mean"] == pytest.approx(mean) and (row["n_texts"], row["n_tokens"]) == (n_texts, n_tokens)
        assert row["ci_low"] == pytest.approx(low, rel=1e-9) and row["ci_high"] == pytest.approx(high, rel=1e-9)


def test_summary_rejects_tables_mixing_decoders_or_models():
    table = pd.concat([_planted_summary_table().assign(decoder=d) for d in ("full", "norm_only")])
    with pytest.raises(ValueError, match=r"mixes several decoders \['full', 'norm_only'\]: add 'decoder' to by"):
        summarize_lens(table, n_boot=10)
    assert len(summarize_lens(table, by=("decoder", "layer", "depth"), n_boot=10)) == 2 * 7
    with pytest.raises(ValueError, match="mixes several models"):
        summarize_lens(_planted_summary_table().assign(model=["x", "y"] * 4), n_boot=10)


def test_token_metrics_at_the_top5_boundary_and_rejects_missing_columns():
    table = pd.DataFrame([_row("a", "1", final_top1_rank=r, input_token_rank=r) for r in (1, 4, 5, 6, 1000)])
    metrics = token_metrics(table)
    assert metrics["top5"].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]  # "within the top 5" includes rank 5
    np.testing.assert_allclose(metrics["log10_rank"], np.log10([1, 4, 5, 6, 1000]))
    with pytest.raises(ValueError, match=r"lens table lacks columns \['input_token_rank', 'kl_input'\]"):
        token_metrics(table.drop(columns=["kl_input", "input_token_rank"]))


def test_multiplicities_draw_each_resample_of_n_texts_with_replacement():
    weights = _multiplicities(5, 400, 9)
    assert weights.shape == (400, 5) and (weights >= 0).all() and (weights == np.round(weights)).all()
    assert (weights.sum(1) == 5).all()  # each resample draws as many texts as there are
    assert np.array_equal(weights, _multiplicities(5, 400, 9)) and not np.array_equal(weights, _multiplicities(5, 400, 8))
    assert weights.mean() == pytest.approx(1.0, abs=0.05) and (weights.max(0) >= 3).all()


# --- select_positions ---------------------------------------------------------------------------------------------

def test_select_positions_drops_exactly_position_0_unless_asked():
    table = pd.DataFrame({"position": [0, 1, 2, 0, 1, 0], "text": list("aaabbc")})
    assert select_positions(table, include_position0=False)["position"].tolist() == [1, 2, 1]
    assert select_positions(table, include_position0=True).equals(table)
    with pytest.raises(ValueError, match="lens table lacks column 'position'"):
        select_positions(table.drop(columns="position"), include_position0=True)


# --- first_layer_above ----------------------------------------------------------------------------------------------

def _summary(rows: list[tuple], groups: tuple[str, ...] = ("model",), metric: str = "agreement") -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[*groups, "layer", "depth", "mean"])
    return frame.assign(metric=metric, ci_low=np.nan, ci_high=np.nan, n_texts=3, n_tokens=30)


def test_first_layer_above_at_and_around_planted_means():
    # rows deliberately out of depth order; "z" before "a" (groups keep the order of the summary)
    rows = [("z", "2", 2.0, 0.7), ("z", "0", 0.0, 0.2), ("z", "1", 1.0, 0.7), ("z", FINAL, 3.0, 1.0),
            ("a", "1", 1.0, 0.3), ("a", "0", 0.0, 0.9), ("a", FINAL, 2.0, 1.0)]
    summary = _summary(rows)
    first = first_layer_above(summary, threshold=0.5)
    assert first["model"].tolist() == ["z", "a"]
    assert first["layer"].tolist() == ["1", "0"] and first["depth"].tolist() == [1.0, 0.0]  # tie -> shallower; layer 0
    at = first_layer_above(summary, threshold=0.7).set_index("model")  # 0.7 is not above 0.7
    assert pd.isna(at.loc["z", "layer"]) and np.isnan(at.loc["z", "depth"]) and at.loc["a", "layer"] == "0"
    just_below = first_layer_above(summary, threshold=0.7 - 1e-9).set_index("model")
    assert just_below.loc["z", "layer"] == "1"
    last = first_layer_above(_summary([("m", "0", 0.0, 0.1), ("m", "1", 1.0, 0.2), ("m", "2", 2.0, 0.8),
                                       ("m", FINAL, 3.0, 1.0)]), threshold=0.5)
    assert last["layer"].tolist() == ["2"]
    never = first_layer_above(summary, threshold=0.95)  # only the final rows reach it, and they are ignored
    assert never["layer"].isna().all() and never["depth"].isna().all()


def test_first_layer_above_without_group_columns_and_other_metrics():
    rows = [("0", 0.0, 2.0), ("1", 1.0, 2.5), ("2", 2.0, 3.5), (FINAL, 3.0, 4.0)]
    summary = _summary(rows, groups=(), metric="log10_input_rank")
    first = first_layer_above(summary, metric="log10_input_rank", threshold=math.log10(200))
    assert first.columns.tolist() == ["layer", "depth"] and first.iloc[0].tolist() == ["1", 1.0]
    with pytest.raises(ValueError, match="unknown metric 'bogus'"):
        first_layer_above(summary, metric="bogus")
    with pytest.raises(ValueError, match="no non-final rows for metric 'agreement'"):
        first_layer_above(summary)


def test_first_layer_above_uses_every_non_value_column_as_a_group():
    rows = [("m", "full", "0", 0.0, 0.1), ("m", "full", "1", 1.0, 0.6), ("m", "norm_only", "0", 0.0, 0.1),
            ("m", "norm_only", "1", 1.0, 0.4), ("m", "norm_only", "2", 2.0, 0.55)]
    summary = _summary(rows, groups=("model", "decoder"))
    assert set(SUMMARY_VALUE_COLUMNS) <= set(summary.columns)
    first = first_layer_above(summary)
    assert first.values.tolist() == [["m", "full", "1", 1.0], ["m", "norm_only", "2", 2.0]]


# --- the sub-block lens: attention and MLP steps ---------------------------------------------------------------------

def test_subblock_steps_split_each_block_into_attention_and_mlp():
    """Planted KL(final||.) means: input 100, 1.attn 40, 1.mlp 10, 2.attn 12, 2.mlp 5, final 0: block 1's
    attention moves it by -60 and its MLP by -30; block 2's attention +2 (from 1.mlp) and MLP -7."""
    from layerwise.lens.stats import subblock_steps
    labels = ["0", "1.attn", "1.mlp", "2.attn", "2.mlp", FINAL]
    summary = pd.DataFrame({"layer": labels * 2, "metric": ["kl_final"] * 6 + ["agreement"] * 6,
                            "mean": [100, 40, 10, 12, 5, 0, .0, .1, .2, .3, .4, 1.]})
    steps = subblock_steps(summary)
    assert steps.to_dict("list") == {"block": [1, 2], "attn": [-60, 2], "mlp": [-30, -7]}
    assert subblock_steps(summary, "agreement")["mlp"].round(6).tolist() == [0.1, 0.1]
    plain = summary.assign(layer=summary["layer"].str.replace(".mlp", "", regex=False))
    assert subblock_steps(plain[~plain["layer"].str.endswith(".attn")]).empty
    with pytest.raises(ValueError, match="several"):
        subblock_steps(pd.concat([summary, summary]))


def test_position_buckets_are_half_open_and_drop_positions_outside():
    from layerwise.lens.stats import position_buckets
    got = position_buckets(pd.Series([0, 1, 15, 16, 63, 64, 255, 256]), [1, 16, 64, 256])
    assert got.tolist() == [pd.NA, "1-15", "1-15", "16-63", "16-63", "64-255", "64-255", pd.NA]
    with pytest.raises(ValueError, match="ascending"):
        position_buckets(pd.Series([1]), [4, 4])


def test_top1_overlap_counts_shared_top1_per_block():
    """Planted: two decoders over 2 texts x 2 positions; at layer 1 they share the top-1 at 3 of 4 rows, at
    layer 0 at all; the final row is left out; tables of different rows are refused."""
    from layerwise.lens.stats import top1_overlap
    rows = [(t, layer, float(layer) if layer != FINAL else 2.0, p) for t in "ab" for layer in ("0", "1", FINAL)
            for p in (0, 1)]
    base = pd.DataFrame(rows, columns=["text", "layer", "depth", "position"]).assign(top1_id=7)
    other = base.copy()
    other.loc[(other["layer"] == "1") & (other["text"] == "b") & (other["position"] == 1), "top1_id"] = 8
    got = top1_overlap({"x": base, "y": other}, [("x", "y")])
    assert got[["layer", "agree", "n"]].to_dict("list") == {"layer": ["0", "1"], "agree": [1.0, 0.75], "n": [4, 4]}
    with pytest.raises(ValueError, match="same rows"):
        top1_overlap({"x": base, "y": other.iloc[1:]}, [("x", "y")])
