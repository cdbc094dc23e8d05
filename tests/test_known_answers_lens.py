"""Known-answer tests of study 2 (the logit lens): the torch statistics path against hand-computed KL values and a
plain-numpy brute force, ranks with ties, and the dataset statistics (`summarize_lens`, `layer_change`,
`first_layer_above`, `select_positions`) on planted tables whose answers are known by construction.

Bootstrap intervals are checked against an explicit resampling loop (texts drawn with the module's seeded
multiplicities, their tokens concatenated, the mean recomputed, then the textbook percentiles), never against
copied numbers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import layerwise.lens.decode as lens
from layerwise.lens.decode import (FINAL, _kl_from, _layer_stats_torch, _log_partition, _references, logit_lens,
                                   logit_lens_texts, token_rank)
from layerwise.lens.stats import (SUMMARY_VALUE_COLUMNS, _multiplicities, first_layer_above, layer_change,
                                  select_positions, summarize_lens, token_metrics)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


# --- ranks ----------------------------------------------------------------------------------------------------------

def test_token_rank_on_batched_logits_counts_ties_against_the_token():
    """[B, T, V] logits: rank = #{v : logit_v >= logit_token}, worked out by hand per row."""
    logits = torch.tensor([[[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-5.0, 7.0, 1.0, 7.0]],
                           [[0.0, 0.0, 9.0, 0.0], [4.0, 3.0, 2.0, 1.0], [1e4, -1e4, 0.0, 1e4]]])
    ids = torch.tensor([[1, 3, 0], [2, 0, 1]])
    # row (0,0): token 1 ties token 2 at the top -> 2; (0,1): all four tied -> 4; (0,2): -5 is last -> 4
    # row (1,0): unique top -> 1; (1,1): unique top -> 1; (1,2): -1e4 is last -> 4
    assert token_rank(logits, ids).tolist() == [[2, 4, 4], [1, 1, 4]]
    assert token_rank(logits, torch.tensor([[0, 0, 2], [3, 3, 3]])).tolist() == [[3, 4, 3], [4, 4, 2]]


def test_token_rank_writes_the_comparison_into_the_callers_scratch():
    """The documented memory contract: `scratch` receives the comparison (no fresh [positions x vocab] mask)."""
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 0.0, 5.0, 2.0]])
    scratch = torch.full_like(logits, -7.0)
    assert token_rank(logits, torch.tensor([0, 3]), scratch).tolist() == [3, 3]
    assert scratch.tolist() == [[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0]]


# --- KL with known values -------------------------------------------------------------------------------------------

def _kl_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """[2, 2, 2] two-token logits: references (final, input) and a layer, with KLs worked out by hand.

    uniform p = (1/2, 1/2) vs q = softmax(0, ln 3) = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3);
    one-hot p = (1, 0) vs the same q: KL = -ln(1/4) = ln 4; KL(q || q) = 0; q vs uniform: 1/4 ln(1/2) + 3/4 ln(3/2).
    """
    ln3 = math.log(3.0)
    uniform, onehot, q = [0.0, 0.0], [0.0, -500.0], [0.0, ln3]
    final = torch.tensor([[uniform, onehot], [q, uniform]])
    layer0 = torch.tensor([[q, uniform], [onehot, q]])
    layer = torch.tensor([[q, q], [q, [5.0, 5.0]]])  # the last row is uniform, shifted by 5
    kl_uq, kl_oq, kl_qu = 0.5 * math.log(4 / 3), math.log(4.0), 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    expected_final = np.array([[kl_uq, kl_oq], [0.0, 0.0]])
    expected_input = np.array([[0.0, kl_uq], [kl_oq, kl_qu]])
    return final, layer0, layer, expected_final, expected_input


def test_kl_from_equals_hand_computed_values_on_batched_two_token_vocabularies():
    final, layer0, layer, expected_final, expected_input = _kl_case()
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    centred = layer - layer.amax(-1, keepdim=True)
    kl = _kl_from(references, centred, _log_partition(centred.clone(), scratch), scratch)
    assert kl.shape == (2, 2, 2)
    np.testing.assert_allclose(kl[..., 0].numpy(), expected_final, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kl[..., 1].numpy(), expected_input, rtol=1e-5, atol=1e-6)
    # the cross terms are elementwise products written into the caller's scratch (last: the input reference)
    torch.testing.assert_close(scratch, references[0][..., 1, :] * centred)


def test_torch_layer_stats_equal_hand_computed_kl_and_log_probabilities():
    final, layer0, layer, expected_final, expected_input = _kl_case()
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    zeros = torch.zeros(2, 2, dtype=torch.long)
    ones = torch.ones(2, 2, dtype=torch.long)
    stats = _layer_stats_torch(layer.clone(), zeros, ones, ones, references, scratch)
    np.testing.assert_allclose(stats["kl_final"].numpy(), expected_final, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["kl_input"].numpy(), expected_input, rtol=1e-5, atol=1e-6)
    # log q(token 1) = ln 3/4 where q = (1/4, 3/4), ln 1/2 in the uniform row
    ln34 = math.log(0.75)
    np.testing.assert_allclose(stats["next_token_logprob"].numpy(), [[ln34, ln34], [ln34, math.log(0.5)]], rtol=1e-6)
    assert stats["top1_id"].tolist() == [[1, 1], [1, 0]]  # the uniform row's tie goes to the first token
    assert stats["final_top1_rank"].tolist() == [[2, 2], [2, 2]]
    assert stats["input_token_rank"].tolist() == [[1, 1], [1, 2]]


# --- the torch path against a plain-numpy brute force ---------------------------------------------------------------

def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _brute_stats(logits, final, layer0, final_top1, input_ids, next_ids) -> dict[str, np.ndarray]:
    """Every statistic of one layer from its definition, in float64 numpy."""
    x = logits.double().numpy()
    lq = _log_softmax(x)

    def kl(reference):
        lp = _log_softmax(reference.double().numpy())
        p = np.exp(lp)
        return np.where(p > 0, p * (lp - lq), 0.0).sum(-1)

    def rank(ids):
        target = np.take_along_axis(x, ids.numpy()[..., None], -1)
        return (x >= target).sum(-1)

    return {"top1_id": x.argmax(-1), "top1_logit": x.max(-1), "final_top1_rank": rank(final_top1),
            "input_token_rank": rank(input_ids), "next_token_rank": rank(next_ids), "kl_final": kl(final),
            "kl_input": kl(layer0),
            "next_token_logprob": np.take_along_axis(lq, next_ids.numpy()[..., None], -1)[..., 0]}


def _planted_cases():
    """[2, 3, 5] logits with ties (four-way at the top, all equal), raw SmolLM2-sized and extreme values."""
    layer = torch.tensor([[[3.0, 3.0, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, 2.0, 2.0], [250.0, 249.5, -1e4, 0.0, 30.0]],
                          [[0.0, 1.0, 2.0, 3.0, 4.0], [-1e4, 1e4, 1e4, 0.0, 1.0], [0.1, -0.2, 0.1, 0.3, -0.3]]])
    final = torch.tensor([[[0.0, 2.0, 0.0, 1.0, 0.0], [5.0, 0.0, 0.0, 0.0, 0.0], [200.0, 201.0, 150.0, 0.0, 1.0]],
                          [[4.0, 3.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 9.0]]])
    layer0 = torch.tensor([[[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0, 0.0], [-3.0, 2.0, 0.5, 0.5, 1.0]],
                           [[0.0, 0.0, 0.0, 0.0, 0.0], [2.0, 1.0, 0.0, -1.0, -2.0], [0.0, 0.0, 0.0, 0.0, 50.0]]])
    final_top1 = final.argmax(-1)
    input_ids = torch.tensor([[2, 4, 0], [3, 2, 1]])  # (0,0) inside the four-way tie, (0,1) in the all-equal row
    next_ids = torch.tensor([[0, 1, 1], [4, 0, 3]])
    return layer, final, layer0, final_top1, input_ids, next_ids


def test_torch_layer_stats_equal_numpy_brute_force_on_batched_planted_logits():
    layer, final, layer0, final_top1, input_ids, next_ids = _planted_cases()
    expected = _brute_stats(layer, final, layer0, final_top1, input_ids, next_ids)
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    stats = _layer_stats_torch(layer.clone(), final_top1, input_ids, next_ids, references, scratch)
    assert set(stats) == set(expected)
    for key, value in expected.items():
        assert stats[key].shape == (2, 3), key
        np.testing.assert_allclose(stats[key].double().numpy(), value, rtol=1e-5, atol=1e-4, err_msg=key)
    assert stats["input_token_rank"][0, 0] == 4 and stats["input_token_rank"][0, 1] == 5  # ties count against


def test_fused_cpu_layer_stats_equal_numpy_brute_force_on_planted_logits():
    """The CPU path (`_layer_stats`, fused kernel) on the same planted rows, flattened to [positions, vocab]."""
    layer, final, layer0, final_top1, input_ids, next_ids = (t.reshape(6, *t.shape[2:]) for t in _planted_cases())
    expected = _brute_stats(layer, final, layer0, final_top1, input_ids, next_ids)
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    stats = lens._layer_stats(layer.clone(), final_top1, input_ids, next_ids, references, scratch)
    assert set(stats) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(stats[key].double().numpy(), value, rtol=1e-5, atol=1e-4, err_msg=key)


def test_chunk_rows_fits_six_float32_arrays_in_an_eighth_of_memory():
    vocab = 1000
    per_row = lens.CHUNK_ARRAYS * vocab * 4  # bytes of one position in every array of a chunk
    assert lens.CHUNK_ARRAYS == 6
    assert lens.chunk_rows(vocab, available_bytes=8 * per_row * 7) == 7
    assert lens.chunk_rows(vocab, available_bytes=8 * per_row * 7 + 8 * per_row - 1) == 7
    assert lens.chunk_rows(vocab, available_bytes=8 * per_row - 1) == 1 and lens.chunk_rows(vocab, 0) == 1


def test_torch_layer_stats_of_the_final_logits_are_trivial():
    """Decoding the model's own logits: KL(final || final) = 0, the final top-1 ranks first and is the top-1."""
    layer, final, layer0, final_top1, input_ids, next_ids = _planted_cases()
    scratch = torch.empty_like(final)
    references = _references(final.clone(), layer0.clone(), scratch)
    stats = _layer_stats_torch(final.clone(), final_top1, input_ids, next_ids, references, scratch)
    np.testing.assert_allclose(stats["kl_final"].numpy(), 0.0, atol=1e-5)
    unique = (final == final.amax(-1, keepdim=True)).sum(-1) == 1
    assert (stats["final_top1_rank"][unique] == 1).all() and (stats["top1_id"] == final_top1).all()


def test_torch_layer_stats_reuse_the_callers_scratch(monkeypatch):
    """No fresh [positions x vocab] buffers per reduction: every rank, the partition and the KL get `scratch`."""
    seen = []

    def spy(name, fn, position):
        def wrapped(*args, **kwargs):
            given = args[position] if len(args) > position else kwargs.get("scratch")
            seen.append((name, given is scratch))
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(lens, "token_rank", spy("token_rank", lens.token_rank, 2))
    monkeypatch.setattr(lens, "_log_partition", spy("_log_partition", lens._log_partition, 1))
    monkeypatch.setattr(lens, "_kl_from", spy("_kl_from", lens._kl_from, 3))
    layer, final, layer0, final_top1, input_ids, next_ids = _planted_cases()
    scratch = torch.empty_like(layer)
    references = _references(final.clone(), layer0.clone(), scratch)
    seen.clear()
    lens._layer_stats_torch(layer.clone(), final_top1, input_ids, next_ids, references, scratch)
    assert sorted(seen) == sorted([("token_rank", True)] * 3 + [("_log_partition", True), ("_kl_from", True)])


def test_torch_path_lens_of_a_model_ends_at_its_own_logits(monkeypatch):
    """The whole lens through the torch statistics (the GPU path): the last block decoded with `full` is the
    model's own output, so KL(final || last) = 0 and top-1 agreement is 1 there and on the final row."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2, bos_token_id=0,
                                       eos_token_id=0)).eval()
    monkeypatch.setattr(lens, "_layer_stats", lens._layer_stats_torch)
    ids = torch.tensor([[3, 17, 5, 9, 22, 1]])
    table = logit_lens(model, ids)
    with torch.no_grad():
        own = model(ids).logits[0].double().numpy()
    for label in ("2", FINAL):
        rows = table[table["layer"] == label].sort_values("position")
        np.testing.assert_allclose(rows["kl_final"], 0.0, atol=1e-5)
        assert (rows["top1_id"] == rows["final_top1_id"]).all() and (rows["final_top1_rank"] == 1).all()
        assert rows["top1_id"].tolist() == own.argmax(-1).tolist()
        np.testing.assert_allclose(rows["top1_logit"], own.max(-1), rtol=1e-5, atol=1e-5)
        lq = _log_softmax(own)
        np.testing.assert_allclose(rows["next_token_logprob"].iloc[:-1], lq[np.arange(5), ids[0, 1:].numpy()],
                                   rtol=1e-5, atol=1e-5)
    first = table[table["layer"] == "0"]
    np.testing.assert_allclose(first["kl_input"], 0.0, atol=1e-5)  # the input row is its own reference


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


# --- logit_lens_texts ----------------------------------------------------------------------------------------------

class _BosTokenizer:
    """Bytes, preceded by a BOS id (250) when special tokens are added; truncates as transformers does (to
    `max_length` unless truncation is explicitly False)."""

    def __call__(self, text, add_special_tokens=True, truncation=None, max_length=None):
        ids = ([250] if add_special_tokens else []) + list(text.encode())
        return {"input_ids": ids[:max_length] if max_length is not None and truncation is not False else ids}

    def decode(self, ids):
        return "".join("<s>" if i == 250 else chr(i) for i in ids)


def test_logit_lens_texts_adds_special_tokens_and_allows_two_tokens():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=0,
                                       eos_token_id=0)).eval()
    table = logit_lens_texts(model, _BosTokenizer(), {"t": "abc"})
    first = table[(table["layer"] == FINAL)].sort_values("position")
    assert first["input_token_id"].tolist() == [250, 97, 98, 99] and first["input_token"].iloc[0] == "<s>"
    for id_column, text_column in (("input_token_id", "input_token"), ("top1_id", "top1_token"),
                                   ("final_top1_id", "final_top1_token"), ("next_token_id", "next_token")):
        expected = [_BosTokenizer().decode([int(i)]) if pd.notna(i) else None for i in table[id_column]]
        assert [t if isinstance(t, str) else None for t in table[text_column]] == expected, text_column
    assert table["next_token"].isna().sum() == table["layer"].nunique()  # the last position of each layer
    sub = logit_lens_texts(model, _BosTokenizer(), {"t": "abc"}, subblocks=True, batch_size=2)
    assert sub["layer"].unique().tolist() == ["0", "1.attn", "1.mlp", FINAL]
    two_texts = logit_lens_texts(model, _BosTokenizer(), {"t": "abc", "u": "de"}, batch_size=1)
    assert two_texts.index.equals(pd.RangeIndex(len(two_texts)))  # one table, not the batches' indexes
    assert two_texts.groupby("text").size().to_dict() == {"t": 4 * 3, "u": 3 * 3}
    two = logit_lens_texts(model, _BosTokenizer(), {"t": "abc"}, max_tokens=2, add_special_tokens=False)
    assert sorted(two["position"].unique()) == [0, 1] and two[two["layer"] == FINAL]["input_token_id"].tolist() == [97, 98]
    with pytest.raises(ValueError, match="max_tokens must be at least 2"):
        logit_lens_texts(model, _BosTokenizer(), {"t": "abc"}, max_tokens=1)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        logit_lens_texts(model, _BosTokenizer(), {"t": "abc"}, batch_size=0)
    with pytest.raises(ValueError, match="text 'e' tokenizes to nothing"):
        logit_lens_texts(model, _BosTokenizer(), {"t": "abc", "e": ""}, add_special_tokens=False)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        lens.logit_lens_sequences(model, [[1, 2]], ["a"], batch_size=0)
    with pytest.raises(ValueError, match="2 sequences but 1 names"):
        lens.logit_lens_sequences(model, [[1, 2], [3, 4]], ["a"])


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
