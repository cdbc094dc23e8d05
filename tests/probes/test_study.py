"""Study 1 glue: stores → layer datasets, the conditions, transfer and the summary table."""

import numpy as np
import pandas as pd
import pytest

from layerwise.probes.conditions import convergence, raw_probe_analyses, run_condition, split, transfer_scores
from layerwise.probes.features import LayerDataset, layer_dataset, split_layer_dataset, split_layer_datasets
from layerwise.probes.logistic import WarmStart
from layerwise.probes.metrics import score_table
from layerwise.probes.saved import load_probe, save_probe
from layerwise.probes.summary import condition_table, label_sizes
from layerwise.probes.training import fit_probe, make_probe
from layerwise.probes.synthetic import make_layered_vectors
from layerwise.activations.store import ActivationStore, StoreWriter

PROBE = {"C": 1.0, "max_epochs": 50}
TREE = {"max_depth": 6}


def synthetic(layer_step: float, seed: int = 0) -> LayerDataset:
    v = make_layered_vectors(n_texts=60, n_positions=8, n_layers=4, width=24, layer_step=layer_step, seed=seed)
    return LayerDataset(v.X, v.y, v.text_ids, v.positions)


def test_layer_dataset_stacks_layers_and_drops_position0(tmp_path):
    n_texts, length, width, n_layers = 3, 5, 4, 2
    tokens = pd.DataFrame({"text_index": np.repeat(np.arange(n_texts), length),
                           "text_id": np.repeat(np.arange(n_texts), length),
                           "position": np.tile(np.arange(length), n_texts),
                           "token_id": 7, "token": "x"})
    writer = StoreWriter(tmp_path, list(range(n_layers + 1)), len(tokens), width, "float32")
    writer.write(0, {layer: np.full((len(tokens), width), layer, np.float32) for layer in range(n_layers + 1)})
    writer.finish(tokens, {"model": {"n_layers": n_layers}})
    store = ActivationStore.open(tmp_path)
    data = layer_dataset(store)
    assert data.X.shape == ((n_layers + 1) * n_texts * (length - 1), width)
    assert (data.X[:, 0] == data.y).all()  # every row carries its own layer's values
    assert (data.positions > 0).all()
    with_0 = layer_dataset(store, include_position0=True)
    assert len(with_0.y) == (n_layers + 1) * n_texts * length


def test_conditions_behave_as_controls():
    data = synthetic(layer_step=6.0)
    train, test = split(data, 0.25, seed=0)
    assert not set(train.text_ids) & set(test.text_ids)
    accuracy = {}
    for condition in ("raw", "normalised", "tree"):
        run = run_condition(condition, train, test, seed=0, probe_params=PROBE, tree_params=TREE)
        accuracy[condition] = float(np.mean(run.y_pred == run.y_test))
    assert accuracy["raw"] > 0.95
    assert accuracy["tree"] > 0.6
    with pytest.raises(ValueError, match="unknown condition"):
        run_condition("bogus", train, test, seed=0, probe_params=PROBE, tree_params=TREE)


def test_raw_analyses_and_transfer_tables():
    data = synthetic(layer_step=6.0)
    train, test = split(data, 0.25, seed=0)
    labels = np.unique(data.y)
    run = run_condition("raw", train, test, seed=0, probe_params=PROBE, tree_params=TREE)
    tables = raw_probe_analyses(run, labels, mask_k=2, top_n=4)
    shares = tables["attribution"].groupby(["variant", "layer"])["share"].sum()
    assert np.allclose(shares, 100.0)
    assert set(tables["masks"]["condition"]) == {"full", "masked_at_test", "masked_retrained"}
    other = synthetic(layer_step=6.0, seed=0)  # same layer means: transfer must work
    train_b, test_b = split(other, 0.25, seed=1)
    table = transfer_scores(LayerDataset.concatenate([train, train_b]), test, test_b, labels, n_a=train.y.size, seed=0,
                            probe_params=PROBE, names=("a", "b"))
    assert len(table) == 4
    assert (table["accuracy"] > 0.9).all()
    # the mixed probe starts from the A-only one and scores as a cold-started mixed probe does
    mixed = table[table["train"] == "a+b"]
    assert (mixed["warm_start"] == "a").all() and (table.loc[table["train"] == "a", "warm_start"] == "zero").all()
    tight = {**PROBE, "tol": 1e-6, "max_epochs": 1000, "device": "cpu"}
    warm = transfer_scores(LayerDataset.concatenate([train, train_b]), test, test_b, labels, n_a=train.y.size, seed=0,
                           probe_params=tight, names=("a", "b"))
    cold = fit_probe(np.concatenate([train.X, train_b.X]), np.concatenate([train.y, train_b.y]), test.X, test.y,
                     make_probe("logistic", 0, **tight))
    for tested, data in (("a", test), ("b", test_b)):
        row = warm[(warm["train"] == "a+b") & (warm["test"] == tested)].iloc[0]
        assert row["converged"] and row["accuracy"] == pytest.approx(np.mean(cold.predict(data.X) == data.y), abs=0.01)


def layered_store(path, seed: int, n_texts: int = 40, width: int = 24) -> ActivationStore:
    """A store of `make_layered_vectors` (layer means differ by seed): rows are its tokens, files its layers."""
    n_positions, n_layers = 6, 4
    v = make_layered_vectors(n_texts=n_texts, n_positions=n_positions, n_layers=n_layers, width=width,
                             layer_step=4.0, seed=seed)
    per_token = v.X.reshape(n_texts * n_positions, n_layers + 1, width)  # rows are (text, position, layer)
    tokens = pd.DataFrame({"text_index": np.repeat(np.arange(n_texts), n_positions),
                           "text_id": np.repeat(np.arange(n_texts), n_positions),
                           "position": np.tile(np.arange(n_positions), n_texts), "token_id": 7, "token": "x"})
    writer = StoreWriter(path, list(range(n_layers + 1)), len(tokens), width, "float32")
    writer.write(0, {layer: per_token[:, layer] for layer in range(n_layers + 1)})
    writer.finish(tokens, {"model": {"n_layers": n_layers}})
    return ActivationStore.open(path)


def test_split_layer_datasets_are_each_stores_split_in_one_matrix(tmp_path):
    stores = [layered_store(tmp_path / "a", seed=0), layered_store(tmp_path / "b", seed=1, n_texts=30)]
    joint, trains, tests = split_layer_datasets(stores, 0.25, seed=3)
    separate = [split_layer_dataset(store, 0.25, seed=3) for store in stores]
    fields = ("X", "y", "text_ids", "positions")
    for got_train, got_test, (train, test) in zip(trains, tests, separate):
        for got, want in ((got_train, train), (got_test, test)):
            for name in fields:
                np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        assert np.shares_memory(got_train.X, joint.X)  # a view into the joint matrix, not a copy
    for name in fields:
        np.testing.assert_array_equal(getattr(joint, name), np.concatenate([getattr(t, name) for t, _ in separate]))
    assert trains[0].X.shape[0] + trains[1].X.shape[0] == joint.X.shape[0]
    with pytest.raises(ValueError, match="differ in width"):
        split_layer_datasets([stores[0], layered_store(tmp_path / "wide", seed=2, width=25)], 0.25, seed=3)


def test_transfer_on_the_joint_matrix_is_the_transfer_on_two_datasets(tmp_path):
    """The joint loader's transfer equals train on A / warm-started A+B on the plain concatenation, the A+B
    matrix is the loaded one (standardised in place: no copy) and the test splits stay raw."""
    stores = [layered_store(tmp_path / "a", seed=0), layered_store(tmp_path / "b", seed=1, n_texts=30)]
    (train_a, test_a), (train_b, test_b) = (split_layer_dataset(store, 0.25, seed=3) for store in stores)
    labels = np.unique(train_a.y)

    def fit(X, y, init=None):
        return fit_probe(X, y, test_a.X, test_a.y, make_probe("logistic", 0, **PROBE), init=init)

    alone = fit(train_a.X, train_a.y)
    mixed = fit(np.concatenate([train_a.X, train_b.X]), np.concatenate([train_a.y, train_b.y]),
                WarmStart.from_probe(alone.estimator, "a"))
    expected = pd.concat([score_table(data.y, run.predict(data.X), labels).assign(
        **convergence(run.estimator), train=trained, test=tested)
        for trained, run in (("a", alone), ("a+b", mixed)) for tested, data in (("a", test_a), ("b", test_b))],
        ignore_index=True)
    assert expected.loc[expected.test == "b", "accuracy"].min() < expected["accuracy"].max()  # rows differ

    save_probe(tmp_path / "a.npz", alone)
    for reference in (None, load_probe(tmp_path / "a.npz")):
        joint, (loaded_a, _), (raw_a, raw_b) = split_layer_datasets(stores, 0.25, seed=3)
        table = transfer_scores(joint, raw_a, raw_b, labels, n_a=loaded_a.y.size, seed=0, probe_params=PROBE,
                                names=("a", "b"), reference=reference)
        pd.testing.assert_frame_equal(table, expected)
        np.testing.assert_allclose(joint.X.mean(0), 0.0, atol=1e-4)  # the loaded matrix itself was standardised
        np.testing.assert_array_equal(raw_a.X, test_a.X)
        np.testing.assert_array_equal(raw_b.X, test_b.X)
    with pytest.raises(ValueError, match="n_a must split"):
        transfer_scores(joint, raw_a, raw_b, labels, n_a=joint.y.size, seed=0, probe_params=PROBE, names=("a", "b"))


def _condition_table(variant_n: int):
    one = lambda c, a: pd.DataFrame([{"condition": c, "accuracy": a, "chance": 0.2}])  # noqa: E731
    transfer = pd.DataFrame({"train": ["a", "a", "a+b", "a+b"], "test": ["a", "b", "a", "b"],
                             "accuracy": [0.9, 0.6, 0.9, 0.85]})
    return condition_table(
        raw=one("raw", 0.9),
        conditions=[one("normalised", 0.7), pd.DataFrame({"condition": "shuffled_labels", "accuracy": [0.1, 0.3]}),
                    pd.DataFrame({"condition": ["random_scalar_trained", "random_scalar_retrained"],
                                  "accuracy": [0.21, 0.19]})],
        masks=pd.DataFrame({"condition": ["full", "masked_at_test"], "accuracy": [0.9, 0.85]}),
        transfer=transfer, variant_raw=one("raw", 0.87), variant_conditions=[one("tree", 0.5)],
        variant_masks=pd.DataFrame({"condition": ["full", "masked_at_test", "masked_retrained"],
                                    "accuracy": [0.87, 0.8, 0.84]}),
        nopunct=one("raw", 0.89), variant_transfer=transfer.assign(accuracy=[0.88, 0.7, 0.9, 0.8]),
        transfer_nopunct=transfer.assign(accuracy=[0.9, 0.8, 0.9, 0.88]),
        stability=pd.DataFrame({"accuracy": [0.9, 0.92, 0.88]}), n_texts=1000, variant_n_texts=variant_n)


def test_condition_table_collects_every_condition_with_its_size():
    table = _condition_table(variant_n=300)
    got = table.set_index("condition")
    assert got.loc["masked_at_test", "accuracy"] == 0.85 and got.loc["train a, test b", "accuracy"] == 0.6
    assert got.loc["masked_retrained", "accuracy"] == 0.84 and got.loc["masked_retrained", "n_texts"] == 300
    assert "train a, test a" not in got.index and got.loc["train a+b, test b", "accuracy"] == 0.85
    assert got.loc["transfer gap", "accuracy"] == pytest.approx(0.3)
    # the additions are compared with a raw probe and a transfer run at their own N, named by it
    assert got.loc["raw (N=300)", "accuracy"] == 0.87 and got.loc["transfer gap (N=300)", "accuracy"] == pytest.approx(0.18)
    assert got.loc["train a, test b (N=300)", "accuracy"] == 0.7
    assert got.loc["transfer gap, no punctuation", "accuracy"] == pytest.approx(0.1)
    assert got.loc["shuffled_labels", "accuracy"] == pytest.approx(0.2)
    assert got.loc["shuffled_labels", "std"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert got.loc["random_scalar_trained", "accuracy"] == 0.21
    assert got.loc["stability", "accuracy"] == pytest.approx(0.9)
    assert got.loc["stability", "std"] == pytest.approx(0.02)
    assert (table["chance"] == 0.2).all()
    sizes = got["n_texts"]
    assert (sizes[["raw", "normalised", "shuffled_labels", "masked_at_test", "transfer gap"]] == 1000).all()
    assert (sizes[["raw (N=300)", "tree", "no_punctuation", "transfer gap, no punctuation", "stability"]] == 300).all()


def test_condition_table_rows_keep_the_order_of_their_runs():
    """The paper's probe table and the conditions figure list rows in table order: the raw probe, each
    conditions file's conditions as they come (not alphabetically), the masks, the transfer; then the
    additions at their own N (the masked re-fit among them). The index runs 0..n-1 over both sizes."""
    table = _condition_table(variant_n=300)
    assert list(table["condition"]) == [
        "raw", "normalised", "shuffled_labels", "random_scalar_trained", "random_scalar_retrained",
        "masked_at_test", "train a, test b", "train a+b, test b", "transfer gap",
        "raw (N=300)", "masked_retrained", "train a, test b (N=300)", "train a+b, test b (N=300)", "transfer gap (N=300)", "tree",
        "no_punctuation", "train a, test b, no punctuation", "train a+b, test b, no punctuation",
        "transfer gap, no punctuation", "stability"]
    pd.testing.assert_index_equal(table.index, pd.RangeIndex(len(table)))
    got = table.set_index("condition")
    assert got.loc["no_punctuation", "accuracy"] == 0.89 and got.loc["no_punctuation", "n_texts"] == 300
    assert list(table.columns) == ["condition", "accuracy", "converged", "std", "n_texts", "chance"]
    assert table["accuracy"].notna().all()


def test_transfer_rows_find_the_single_set_whatever_the_row_order():
    """A transfer table whose combined-training rows come first still yields train a / test b and the gap."""
    transfer = pd.DataFrame({"train": ["a+b", "a+b", "a", "a"], "test": ["b", "a", "b", "a"],
                             "accuracy": [0.85, 0.9, 0.6, 0.9]})
    one = lambda c, a: pd.DataFrame([{"condition": c, "accuracy": a, "chance": 0.2}])  # noqa: E731
    table = condition_table(
        raw=one("raw", 0.9), conditions=[], masks=pd.DataFrame({"condition": ["masked_at_test", "masked_retrained"],
                                                                 "accuracy": [0.85, 0.88]}),
        transfer=transfer, variant_raw=one("raw", 0.9), variant_conditions=[], nopunct=one("raw", 0.89),
        variant_masks=pd.DataFrame({"condition": ["masked_retrained"], "accuracy": [0.88]}),
        variant_transfer=transfer, transfer_nopunct=transfer.assign(accuracy=[0.88, 0.9, 0.8, 0.9]),
        stability=pd.DataFrame({"accuracy": [0.9, 0.92]}), n_texts=1000, variant_n_texts=1000)
    got = table.set_index("condition")["accuracy"]
    assert got["train a, test b"] == 0.6 and got["train a+b, test b"] == 0.85
    assert got["transfer gap"] == pytest.approx(0.3) and got["transfer gap, no punctuation"] == pytest.approx(0.1)


def test_condition_table_at_one_size_has_no_repeated_rows():
    table = _condition_table(variant_n=1000)
    assert not table["condition"].str.contains("N=").any() and table["condition"].is_unique
    assert (table["n_texts"] == 1000).all()


def test_label_sizes_names_the_other_size_once():
    table = _condition_table(variant_n=300)
    labels = label_sizes(table, 1000).set_index("condition")
    assert "tree (N=300)" in labels.index and "raw (N=300)" in labels.index and "raw" in labels.index
    assert not labels.index.str.contains(r"\(N=300\) \(N=300\)").any()


def test_probe_macros_put_the_posts_numbers_beside_ours_and_judge_the_scalar_control():
    from layerwise.narrative.probes import probe_macros

    def model_table(name: str, scalar: float) -> pd.DataFrame:
        one = lambda c, a: pd.DataFrame([{"condition": c, "accuracy": a, "chance": 0.05}])  # noqa: E731
        conditions = [one(c, a) for c, a in (("normalised", 0.6), ("random_scalar_trained", scalar),
                                              ("random_scalar_retrained", 0.05),
                                              ("random_per_dimension_trained", 0.8),
                                              ("random_per_dimension_retrained", 0.9), ("tree", 0.5),
                                              ("with_position0", 0.8), ("post_faithful", 0.77))]
        conditions.append(pd.DataFrame({"condition": "shuffled_labels", "accuracy": [0.04, 0.06]}))
        transfer = pd.DataFrame({"train": ["imdb", "imdb", "imdb+ag_news", "imdb+ag_news"],
                                 "test": ["imdb", "ag_news", "imdb", "ag_news"], "accuracy": [0.8, 0.6, 0.8, 0.75]})
        masks = pd.DataFrame({"condition": ["full", "masked_at_test", "masked_retrained"], "accuracy": [0.8, 0.7, 0.78]})
        return condition_table(
            raw=one("raw", 0.8), conditions=conditions, masks=masks, variant_masks=masks,
            transfer=transfer, variant_raw=one("raw", 0.8), variant_conditions=[],
            nopunct=one("raw", 0.79), variant_transfer=transfer,
            transfer_nopunct=transfer.assign(accuracy=[0.8, 0.7, 0.8, 0.76]),
            stability=pd.DataFrame({"accuracy": [0.8, 0.81]}), n_texts=100, variant_n_texts=100).assign(model=name)

    summary = pd.concat([model_table("A", 0.06), model_table("B", 0.5)], ignore_index=True)
    dims = pd.DataFrame({"model": "A", "variant": "input_x_weight", "layer": 0, "threshold": [50, 90],
                         "n_dims": [10, 100]})
    macros = probe_macros(summary, dims, first_model="A", mask_k=4, n_texts=100, variant_n_texts=100, max_tokens=30,
                          permutations=2, seeds=5)
    rows = {line.split(" & ")[0]: line.split(" & ") for line in str(macros["ProbeTable"]).splitlines() if " & " in line}
    assert rows["raw"][2] == "100" and rows["raw"][3] == "83.2\\%" and rows["post faithful"][3] == "83.2\\%"
    assert rows["post faithful"][4] == "77.0\\%" and rows["random scalar trained"][3] == "fails"
    assert rows["train imdb, test ag news"][3] == "66.0\\%" and rows["transfer gap"][4] == "+20.0 pp"
    assert rows["transfer gap, no punctuation"][4] == "+10.0 pp"
    assert rows["shuffled labels"][4].startswith("5.0\\%") and "$\\pm$" in rows["shuffled labels"][4]
    summary_text = str(macros["ProbeSummary"])
    assert summary_text.count("claim holds") == 1 and "not near chance" in summary_text  # A fails, B does not


def test_a_fit_that_stopped_at_its_cap_is_marked_in_its_row():
    """converged: False when any fit behind a row stopped at its cap, True when all converged, NA for a tree
    or a row without flags."""
    from layerwise.probes.summary import fit_converged
    assert fit_converged(pd.Series([True, True])) is True
    assert fit_converged(pd.Series([True, False])) is False
    assert fit_converged(pd.Series(["True", "False"])) is False  # as read back from a CSV of mixed rows
    assert fit_converged(pd.Series([pd.NA, True])) is True
    assert fit_converged(pd.Series([pd.NA])) is pd.NA
