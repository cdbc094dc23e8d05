"""The post's ablations in the post's setting, and the random-dimension masking baseline, on planted data."""

import numpy as np
import pytest

from layerwise.probes.faithful import faithful_ablations
from layerwise.probes.features import LayerDataset
from layerwise.probes.logistic import TorchLogisticProbe
from layerwise.probes.masks import mask_ablation, masked_predictions, random_mask_baseline
from layerwise.probes.synthetic import one_hot_layers
from layerwise.probes.training import fit_probe




def _run(width=8):
    X, y = one_hot_layers(n=6000, width=width)
    train = np.arange(6000) < 4000
    return fit_probe(X[train], y[train], X[~train], y[~train], TorchLogisticProbe(device="cpu"))


def test_random_masks_match_full_masking_and_draw_seeded():
    run = _run()
    table = random_mask_baseline(run, 2, 30, seed=5)
    assert len(table) == 30 and table["draw"].tolist() == list(range(30))
    # each draw's accuracy is what masking those columns and predicting gives (the fast path is exact)
    for _, row in table.head(5).iterrows():
        dims = [int(d) for d in row["dims"].split(",")]
        expected = mask_ablation(run, dims).set_index("condition").loc["masked_at_test", "accuracy"]
        assert row["accuracy"] == pytest.approx(expected, abs=1e-9)
        assert np.mean(masked_predictions(run, dims) == run.y_test) == pytest.approx(expected, abs=1e-9)
    # the draws are seeded, and draws that hit a carrying dimension (0-3) cost far more than those that do not
    assert table.equals(random_mask_baseline(run, 2, 30, seed=5))
    hits = table["dims"].map(lambda d: any(int(x) < 4 for x in d.split(",")))
    assert hits.any() and (~hits).any()
    assert table.loc[hits, "delta_pp"].max() < -10 and table.loc[~hits, "delta_pp"].abs().max() < 1.5
    with pytest.raises(ValueError, match="k must be"):
        random_mask_baseline(run, 9, 3, seed=0)
    with pytest.raises(ValueError, match="draws"):
        random_mask_baseline(run, 2, 0, seed=0)


def _dataset(n_texts, seed, scale_by_layer=True):
    """Layers differ in direction (dims 0-3) and in norm (scaled by 1 + layer): both cues planted."""
    rng = np.random.default_rng(seed)
    n_pos, n_layers, width = 6, 4, 12
    y = np.tile(np.arange(n_layers), n_texts * n_pos)
    text_ids = np.repeat(np.arange(n_texts), n_pos * n_layers)
    X = rng.standard_normal((y.size, width))
    X[np.arange(y.size), y] += 2.0
    if scale_by_layer:
        X *= (1.0 + y)[:, None]
    return LayerDataset(X.astype(np.float32), y, text_ids, np.zeros_like(y))


def test_faithful_ablations_score_every_condition_on_the_right_texts():
    data = _dataset(60, 0)
    train, test = data.subset(data.text_ids < 45), data.subset(data.text_ids >= 45)
    target = _dataset(20, 1, scale_by_layer=False)  # the "other dataset": no norm cue
    calls = []

    def load():
        calls.append(1)
        return (LayerDataset(train.X.copy(), train.y, train.text_ids, train.positions),
                LayerDataset(test.X.copy(), test.y, test.text_ids, test.positions))

    out = faithful_ablations(load, target, np.arange(4), seed=0, probe_params=dict(device="cpu", max_epochs=300),
                             mask_k=2, top_n=3, random_draws=20)
    assert len(calls) == 2  # fresh splits for the unit-norm fit (the first fit standardised in place)
    scores = out["scores"].set_index("condition")
    assert list(scores.index) == ["post_faithful", "post_faithful_masked_at_test", "post_faithful_transfer",
                                  "post_faithful_normalised", "post_faithful_random_scalar_trained"]
    assert scores["converged"].all()
    assert scores.loc["post_faithful", "accuracy"] > 0.8
    # the direction cue survives unit norm, the planted norm cue does not
    assert 0.7 < scores.loc["post_faithful_normalised", "accuracy"] < scores.loc["post_faithful", "accuracy"]
    assert scores.loc["post_faithful_normalised", "warm_start"] == "zero"  # its own problem, from zero
    assert abs(scores.loc["post_faithful_random_scalar_trained", "accuracy"] - 0.25) < 0.1  # chance
    texts = out["texts"]
    assert set(texts.loc[texts["condition"] == "post_faithful", "text_id"]) == set(range(45, 60))
    assert set(texts.loc[texts["condition"] == "post_faithful_transfer", "text_id"]) == set(range(20))
    # per-text counts add up to each condition's accuracy
    for condition, group in texts.groupby("condition"):
        assert group["correct"].sum() / group["n"].sum() == pytest.approx(scores.loc[condition, "accuracy"])
    assert len(out["random_masks"]) == 20
    assert set(out["top"]["rank"]) == {1, 2, 3}


def test_a_warm_start_changes_the_cost_of_the_post_faithful_fit_not_its_answer():
    """Started from a probe fitted on nearly the same data, the post-faithful fit reaches the same predictions in
    fewer epochs, and records where it started."""
    data = _dataset(60, 0)
    train, test = data.subset(data.text_ids < 45), data.subset(data.text_ids >= 45)

    def load():
        return (LayerDataset(train.X.copy(), train.y, train.text_ids, train.positions),
                LayerDataset(test.X.copy(), test.y, test.text_ids, test.positions))

    from layerwise.probes.logistic import WarmStart
    near = fit_probe(train.X * 1.01, train.y, test.X, test.y, TorchLogisticProbe(device="cpu", max_epochs=300))
    common = dict(seed=0, probe_params=dict(device="cpu", max_epochs=300), mask_k=2, top_n=3, random_draws=5)
    cold = faithful_ablations(load, test, np.arange(4), **common)["scores"].set_index("condition")
    warm_out = faithful_ablations(load, test, np.arange(4), init=WarmStart.from_probe(near.estimator, "near"),
                                  **common)
    warm = warm_out["scores"].set_index("condition")
    assert warm.loc["post_faithful", "warm_start"] == "near" and cold.loc["post_faithful", "warm_start"] == "zero"
    assert warm.loc["post_faithful", "converged"] and cold.loc["post_faithful", "converged"]
    assert warm.loc["post_faithful", "epochs"] < cold.loc["post_faithful", "epochs"]
    assert warm.loc["post_faithful", "accuracy"] == pytest.approx(cold.loc["post_faithful", "accuracy"], abs=0.01)
