"""Outlier tokens and massive activations: planted data with known answers, then robust facts of the real
default decoder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from layerwise.geometry import anisotropy, layer_geometry
from layerwise.outliers.probes import massive_dims, outlier_rows, peak_dims, probe_without_outliers
from layerwise.outliers.geometry import batch_attribution, layer_outliers, outlier_study, sigma1_share
from layerwise.outliers.detect import massive_activations, outlier_mask, profile_shape, top_outlier_tokens

D = 20


def planted(n: int = 3000, m: int = 8, scale: float = 1e3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic N(0, I_d) plus m vectors of huge norm along e_0 (alternating sign); mask of the planted rows."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, D))
    rows = rng.choice(n, m, replace=False)
    x[rows] = 0.0
    x[rows, 0] = scale * np.where(np.arange(m) % 2, 1.0, -1.0)
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return x, mask


def test_planted_outliers_carry_the_anisotropy():
    x, truth = planted()
    found = outlier_mask(x, k=5)
    np.testing.assert_array_equal(found, truth)
    result = batch_attribution(x, found)
    assert result["anisotropy"] > 0.99
    # Isotropic remainder: sigma_1^2 / sum is 1/d up to the sampling spread of the top eigenvalue.
    assert 1 / D <= result["anisotropy_without"] < 1.5 / D
    assert result["sigma1_share"] > 0.99


def test_no_outliers_changes_nothing():
    x = np.random.default_rng(1).standard_normal((2000, D))
    mask = outlier_mask(x, k=5)
    assert mask.sum() == 0
    result = batch_attribution(x, mask, twonn_kwargs={"fraction": 0.9})
    assert result["anisotropy"] == result["anisotropy_without"]
    assert result["twonn_id"] == result["twonn_id_without"]
    assert result["sigma1_share"] == 0.0


def test_sigma1_share_splits_the_first_direction():
    # Two equal halves symmetric along e_0: each half carries exactly half of sigma_1^2.
    x = np.zeros((4, 2))
    x[:, 0] = [-2.0, 2.0, -2.0, 2.0]
    x[:, 1] = [0.1, 0.1, -0.1, -0.1]
    assert sigma1_share(x, np.array([True, True, False, False])) == pytest.approx(0.5)
    assert sigma1_share(x, np.ones(4, dtype=bool)) == pytest.approx(1.0)


def test_element_wise_detector_finds_planted_entries_and_nothing_in_gaussian_data():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1000, 64))
    assert massive_activations(x).empty
    planted_at = [(3, 7), (500, 7), (900, 40)]
    for r, c in planted_at:
        x[r, c] = -2500.0 if r == 500 else 2500.0
    found = massive_activations(x)
    assert sorted(zip(found["row"], found["dim"])) == sorted(planted_at)
    assert set(found["value"]) == {2500.0, -2500.0}


def test_element_wise_detector_needs_both_thresholds():
    rng = np.random.default_rng(3)
    big = 1e4 * rng.standard_normal((500, 32))  # entries far above 100, but no entry ~1000x the median
    assert massive_activations(big).empty
    small = rng.standard_normal((500, 32)) * 1e-3
    small[0, 0] = 50.0  # 1e5x the median, below the absolute threshold of 100
    assert massive_activations(small).empty
    assert list(massive_activations(small, absolute=10.0)["row"]) == [0]


def test_with_all_tokens_the_values_are_the_geometry_studys_own():
    x, _ = planted(n=1500)
    row, ratios, _ = layer_outliers(x, layer=3, batch_size=500, seed=7, twonn_kwargs={"fraction": 0.9})
    ref = layer_geometry(x, layer=3, batch_size=500, seed=7, fraction=0.9).set_index("metric")["mean"]
    assert row["anisotropy"] == pytest.approx(ref["anisotropy"], rel=1e-12)
    assert row["twonn_id"] == pytest.approx(ref["twonn_id"], rel=1e-12)
    assert row["n_outliers"] == 8 and row["n_batches"] == 3
    assert row["anisotropy_without"] < 1.6 / D and row["sigma1_share"] > 0.99
    assert ratios.shape == (1500,)


def test_study_tables_and_top_tokens():
    x, truth = planted(n=600, m=6)
    tokens = pd.DataFrame({"text_index": np.arange(600) // 30, "position": np.arange(600) % 30 + 1,
                           "token": np.where(truth, "Ġthe", "x")})
    tokens.loc[np.flatnonzero(truth)[:2], "token"] = "Ġ"
    layers = {0: np.random.default_rng(4).standard_normal((600, D)), 1: x, 2: x * 2}
    summary, occurrences, massive = outlier_study(layers, tokens, k=5, batch_size=600)
    assert summary["n_outliers"].tolist() == [0, 6, 6]
    assert set(occurrences["layer"]) == {1, 2} and len(occurrences) == 12
    # |1000| > 100 and > 1000 x median |N(0, 1)| = 674: the planted entries, nothing else, with their tokens.
    assert sorted(zip(massive["layer"], massive["row"])) == sorted((l, r) for l in (1, 2) for r in np.flatnonzero(truth))
    assert (massive["dim"] == 0).all() and set(massive["token"]) == {"Ġthe", "Ġ"}
    top = top_outlier_tokens(occurrences, n=5)
    assert top["token"].tolist() == ["Ġthe", "Ġ"]
    assert top["occurrences"].tolist() == [8, 4] and top["share"].sum() == pytest.approx(1.0)
    assert top["layers"].tolist() == ["1-2", "1-2"]


def test_profile_shape_peak_and_prominence():
    shape = profile_shape(np.arange(5), np.array([0.1, 0.6, 0.3, 0.1, 0.1]))
    assert shape == {"peak_layer": 1, "peak_value": 0.6, "prominence": pytest.approx(6.0)}


def test_probe_outlier_rows_are_decided_per_layer():
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.standard_normal((100, 8)), 100 * rng.standard_normal((100, 8))])
    y = np.repeat([0, 1], 100)
    assert not outlier_rows(X, y, 5).any()  # a loud layer is not an outlier layer
    X[10] *= 50
    assert np.flatnonzero(outlier_rows(X, y, 5)).tolist() == [10]
    X[150, 3] = 1e6
    assert massive_dims(X, y, 100, 1000) == [3]
    X[20, 5] = -1e3  # layer 0's largest entry (row 10 is only scaled, its entries stay below 1e3)
    assert peak_dims(X, y) == [3, 5]


def test_probe_without_outliers_removes_exactly_the_planted_rows():
    from layerwise.probes import make_layered_vectors

    data = make_layered_vectors(n_texts=20, n_positions=6, n_layers=3, width=16, seed=0)
    X = np.array(data.X, dtype=np.float32)
    X[:4] *= 40  # four rows of layer data.y[:4]: outliers in their own layer
    scores, dims = probe_without_outliers(X, data.y, data.text_ids, k=5, test_fraction=0.25, seed=0,
                                          probe_params={"max_epochs": 20}, mask_k=2, top_n=4, absolute=100,
                                          relative=1000)
    assert scores["n_removed"].tolist() == [0, 4]
    assert scores["n_train"].sum() + scores["n_test"].sum() == 2 * len(X) - 4
    assert (scores["accuracy"] > 1 / 3).all()  # the synthetic layers are separable
    assert set(dims["condition"]) == {"all", "without_outliers"} and len(dims) == 4


# --------------------------------------------------------------------------- the real default decoder

TEXTS = ["The history of the city goes back to the Roman period, when a small fort stood on the hill.",
         "In the summer of 1998 the band released its second album, which was recorded in the north of England.",
         "The committee said that the results of the survey would be published at the end of the year.",
         "Most of the species in the family live in the tropics, but a few of them are found in the far north."]


@pytest.mark.slow
def test_real_decoder_has_outlier_tokens_in_early_layers_that_raise_anisotropy(smollm2, single_torch_thread):
    from layerwise.activations.extract import forward_hidden_states

    tok = smollm2.tokenizer
    ids = [tok(t, add_special_tokens=True)["input_ids"] for t in TEXTS]
    hidden = []
    for seq in ids:
        states, _ = forward_hidden_states(smollm2, torch.tensor([seq]), torch.ones(1, len(seq), dtype=torch.long))
        hidden.append([h[0, 1:].float().numpy() for h in states])  # position 0 excluded, as the studies do
    n_layers = len(hidden[0])
    layers = {layer: np.concatenate([h[layer] for h in hidden]) for layer in range(n_layers)}
    early = range(1, max(2, n_layers // 3))
    rows = {layer: layer_outliers(layers[layer], layer=layer, batch_size=4096)[0] for layer in early}
    with_outliers = [r for r in rows.values() if r["n_outliers"] > 0]
    assert with_outliers, {l: r["max_norm_ratio"] for l, r in rows.items()}
    for r in with_outliers:
        assert r["anisotropy_without"] < r["anisotropy"]
        assert r["sigma1_share"] > r["outlier_share"]  # outliers carry more of sigma_1^2 than their head count
        assert anisotropy(layers[r["layer"]]) == pytest.approx(r["anisotropy"])


# --------------------------------------------------------------------------- narrative


def layer_rows(anisotropy: list[float], without: list[float], kind: str) -> pd.DataFrame:
    n = len(anisotropy)
    return pd.DataFrame({"layer": range(n), "anisotropy": anisotropy, "anisotropy_without": without, "kind": kind,
                         "n_outliers": [3] * n, "outlier_share": [0.01] * n, "max_norm_ratio": [8.0] * n,
                         "sigma1_share": [0.9] * n, "twonn_id": [10.0] * n, "twonn_id_without": [11.0] * n,
                         "n_massive": [0] * n, "massive_dims": [np.nan] * n, "max_abs": [40.0] * n,
                         "median_abs": [0.5] * n})


def test_narrative_says_a_bell_carried_by_outliers_does_not_survive():
    from layerwise.narrative.outliers import model_sentences, shape_survives, source_comparison

    bell = layer_rows([0.1, 0.6, 0.3, 0.1, 0.1], [0.1, 0.12, 0.11, 0.1, 0.1], "decoder")
    kept = layer_rows([0.1, 0.6, 0.3, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1, 0.1], "decoder")
    flat = layer_rows([0.05] * 5, [0.05] * 5, "encoder")
    assert "does not survive" in model_sentences(bell, "A", k=5)
    assert "relative to its layer, $|x|=40$ (layer 0), is 80$\\times$ the layer's median" in model_sentences(bell, "A", k=5)
    none = model_sentences(flat.assign(n_outliers=0), "E", k=5)
    assert "0 of 5 layers have outlier tokens" in none and "Nothing is removed" in none
    assert "shape survives" in model_sentences(kept, "B", k=5)
    assert not shape_survives({"peak_layer": 1, "prominence": 6.0}, {"peak_layer": 1, "prominence": 1.2})
    assert shape_survives({"peak_layer": 1, "prominence": 6.0}, {"peak_layer": 2, "prominence": 4.0})
    text = source_comparison({"A": bell, "E": flat})
    assert "decided by the bell rule" in text and "property of its outlier tokens" not in text
    assert "12$\\times$ with all tokens and 2.4$\\times$ without" in text


def test_token_strings_become_visible_latex():
    from layerwise.narrative.outliers import token_latex

    assert token_latex("Ġthe") == r"\texttt{\textvisiblespace{}the}"
    assert token_latex("Ċ") == r"\texttt{\textbackslash{}n}"
    assert token_latex("##_%") == r"\texttt{\#\#\_\%}"


def test_probe_without_outliers_equals_the_full_probe_when_there_are_none():
    from layerwise.probes import make_layered_vectors

    data = make_layered_vectors(n_texts=12, n_positions=5, n_layers=2, width=8, seed=1)
    scores, dims = probe_without_outliers(data.X, data.y, data.text_ids, k=50, test_fraction=0.25, seed=0,
                                          probe_params={"max_epochs": 10}, mask_k=2, top_n=3, absolute=100,
                                          relative=1000)
    assert scores["n_removed"].tolist() == [0, 0]
    assert scores["accuracy"].nunique() == 1
    by_condition = dims.groupby("condition")["dim"].apply(list)
    assert by_condition["all"] == by_condition["without_outliers"]


def test_probe_sentences_count_massive_and_peak_dims():
    from layerwise.narrative.outliers import probe_sentences

    scores = pd.DataFrame({"condition": ["all", "without_outliers"], "accuracy": [0.9, 0.8], "n_removed": [0, 7]})
    dims = pd.DataFrame({"condition": "all", "dim": [4, 9], "is_massive": [True, False], "is_peak": [True, True],
                         "massive_dims": "4", "peak_dims": "4;9;11"})
    text = probe_sentences(scores, dims, "M")
    assert "0.900 with all vectors and 0.800 with the 7 outlier vectors removed" in text
    assert "(4, 9), 1 hold massive activations (massive dimensions: 4) and 2 are among" in text
    assert "(4, 9, 11)" in text


def test_figure_has_both_curves_per_model():
    from layerwise.plots.outliers import plot_outlier_anisotropy

    table = pd.concat([layer_rows([0.1, 0.6, 0.2], [0.1, 0.1, 0.1], "decoder").assign(model="A"),
                       layer_rows([0.05] * 4, [0.05] * 4, "encoder").assign(model="B")])
    fig = plot_outlier_anisotropy(table, k=5)
    assert [ax.get_title() for ax in fig.axes] == ["A", "B", "", ""]  # top row: one panel per model
    curves = [line.get_ydata().tolist() for line in fig.axes[0].get_lines()]
    assert curves == [[0.1, 0.6, 0.2], [0.1, 0.1, 0.1]]


def test_dominant_token_runs_find_the_layers_where_one_token_is_most_outliers():
    """' the' is 4 of 5 outliers at layers 3-9 (and 1 of 3 at layer 10, below half); '\\n' all of layer 12."""
    from layerwise.narrative.outliers import dominant_token_runs, dominant_token_sentence
    rows = []
    for layer in range(3, 10):
        rows += [{"layer": layer, "token": "Ġthe", "row": r} for r in range(4)] + [{"layer": layer, "token": "Ġa", "row": 9}]
    rows += [{"layer": 10, "token": t, "row": i} for i, t in enumerate(["Ġthe", "Ġa", "Ġof"])]
    rows += [{"layer": 12, "token": "Ċ", "row": 0}]
    occurrences = pd.DataFrame(rows)
    assert dominant_token_runs(occurrences) == [("Ġthe", 3, 9, 0.8), ("Ċ", 12, 12, 1.0)]
    text = dominant_token_sentence({"SmolLM2": occurrences})
    assert text == ("In SmolLM2 most outlier tokens at layers 3--9 are one token type, \\texttt{\\textvisiblespace{}the} "
                    "(at least 80\\% of each layer's outlier occurrences).")
    assert "no layer's outliers" in dominant_token_sentence({"M": occurrences[occurrences["layer"] == 10]})
