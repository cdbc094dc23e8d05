"""Figure functions of Study 1: each takes its tidy table and returns a Figure with the expected panels."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from layerwise.plots import probes as plots
from layerwise.probes import (attribution_table, confusion_table, cumulative_contributions, top_dimensions,
                              TorchLogisticProbe)
from layerwise.probes.attribution import top_with_weight_sign

RNG = np.random.default_rng(0)


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def test_layer_palette_runs_red_to_violet():
    palette = plots.layer_palette([2, 0, 1, 2])
    assert list(palette) == [0, 1, 2]
    red, violet = palette[0], palette[2]
    assert red[0] > red[2] and violet[2] > violet[1]


def test_reductions_one_panel_per_variant_and_method():
    table = pd.concat([pd.DataFrame({"x": RNG.standard_normal(30), "y": RNG.standard_normal(30),
                                     "layer": np.repeat(np.arange(3), 10), "method": m, "variant": v})
                       for m in ("pca", "tsne") for v in ("raw", "normalised")])
    fig = plots.plot_reductions(table)
    assert isinstance(fig, Figure) and len(visible_axes(fig)) == 4 and len(fig.axes) == 5  # + colour bar
    assert len(visible_axes(fig)[0].collections[0].get_offsets()) == 30


def test_reduction_maps_label_rows_and_columns_once_and_no_labels_overlap():
    table = pd.DataFrame([{"x": RNG.random(), "y": RNG.random(), "layer": i % 4, "method": m, "variant": v}
                          for m in ("pca", "tsne", "umap") for v in ("raw", "no_layer0", "normalised_no_layer0")
                          for i in range(12)])
    fig = plots.plot_reductions(table)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes[:3]] == ["PCA", "TSNE", "UMAP"] and not any(a.get_title() for a in axes[3:])
    assert [axes[k].get_ylabel() for k in (0, 3, 6)] == ["raw", "without layer 0", "unit norm,\nwithout layer 0"]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    labels = [t for ax in axes for t in (ax.title, ax.yaxis.label) if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not [(a.get_text(), b.get_text()) for k, (a, box) in enumerate(zip(labels, boxes))
                for b, other in zip(labels[k + 1:], boxes[k + 1:]) if box.overlaps(other)]


def test_confusion_heatmap():
    y = RNG.integers(0, 4, 200)
    fig = plots.plot_confusion(confusion_table(y, RNG.integers(0, 4, 200), np.arange(4)))
    assert isinstance(fig, Figure) and fig.axes[0].get_xlabel() == "predicted layer"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_training_curves_side_by_side():
    X, y = RNG.standard_normal((300, 5)).astype(np.float32), RNG.integers(0, 3, 300)
    histories = [TorchLogisticProbe(device="cpu", max_epochs=5, tol=0).fit(X, y, X, y).history_.assign(variant=v)
                 for v in ("raw", "normalised")]
    fig = plots.plot_training_curves(pd.concat(histories))
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert len(fig.axes[0].get_lines()) >= 2  # train and test


def test_attribution_figures():
    coef, X, y = RNG.standard_normal((7, 30)), RNG.standard_normal((140, 30)), np.repeat(np.arange(7), 20)
    table = attribution_table(coef, np.arange(7), X, y)
    top = top_dimensions(table[table["variant"] == "weight"], 8)
    fig = plots.plot_top_attributions(top)
    assert isinstance(fig, Figure) and len(visible_axes(fig)) == 1
    heat = visible_axes(fig)[0].images[0].get_array()
    assert heat.shape == (7, 8)  # layer x rank
    first = top[(top["layer"] == 0) & (top["rank"] == 1)].iloc[0]
    assert heat[0, 0] == pytest.approx(first["share"] * first["sign"])  # signed share: red +, blue -
    labels = [t.get_text() for t in visible_axes(fig)[0].texts]
    assert len(labels) == 56 and labels[0] == str(first["dim"])  # every cell names its dimension
    with pytest.raises(ValueError, match="one attribution variant"):
        plots.plot_top_attributions(top_dimensions(table, 8))
    fig = plots.plot_cumulative_contributions(cumulative_contributions(table))
    assert isinstance(fig, Figure) and len(visible_axes(fig)) == 2
    assert len(visible_axes(fig)[0].get_lines()) == 7 + 2  # one curve per layer + the 50% and 90% lines


def test_accuracy_grid_and_condition_bars():
    grid = pd.DataFrame([{"model": m, "n_texts": n, "context_length": L, "accuracy": RNG.uniform(0.5, 0.9),
                          "chance": 1 / 31} for m in ("smollm2", "minilm") for n in (400, 1000) for L in (10, 30)])
    fig = plots.plot_accuracy_grid(grid)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len([p for p in fig.axes[0].patches if p.get_height() > 0]) == 4  # N x L bars, grouped by L
    conditions = pd.DataFrame({"condition": ["raw", "normalised", "random", "shuffled", "shuffled"],
                               "accuracy": [0.8, 0.6, 0.5, 0.03, 0.04], "chance": 1 / 31})
    fig = plots.plot_condition_accuracy(conditions)
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == 4


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="lacks columns"):
        plots.plot_confusion(pd.DataFrame({"true_layer": [0]}))
    with pytest.raises(ValueError, match="empty"):
        plots.plot_accuracy_grid(pd.DataFrame(columns=["model", "n_texts", "context_length", "accuracy", "chance"]))


# Where paper/sections/probes.tex places each figure: its printed width in inches (\linewidth = 6.3 in).
PRINT_WIDTHS = {"plot_top_attributions": 6.3, "plot_cumulative_contributions": 6.3, "plot_accuracy_grid": 6.3,
                "plot_condition_accuracy": 6.3, "plot_training_curves": 6.3, "plot_confusion": 0.48 * 6.3,
                "plot_reductions": 6.3}


def _all_figures():
    coef, X, y = RNG.standard_normal((31, 64)), RNG.standard_normal((620, 64)), np.repeat(np.arange(31), 20)
    table = attribution_table(coef, np.arange(31), X, y)
    grid = pd.DataFrame([{"model": m, "n_texts": n, "context_length": L, "accuracy": 0.8, "chance": 1 / 31}
                         for m in ("SmolLM2", "MiniLM") for n in (100, 300, 1000) for L in (10, 30)])
    conditions = pd.DataFrame({"condition": [f"condition {i}" for i in range(24)] * 2, "accuracy": 0.5,
                               "chance": 1 / 31, "model": ["SmolLM2"] * 24 + ["MiniLM"] * 24})
    history = pd.DataFrame([{"epoch": e, "split": s, "metric": m, "value": 0.5, "variant": f"{model}: {v}"}
                            for model in ("SmolLM2", "MiniLM") for v in ("raw", "normalised") for e in range(5)
                            for s in ("train", "test") for m in ("loss", "accuracy")])
    y_true = np.repeat(np.arange(31), 5)
    reductions = pd.DataFrame([{"x": RNG.standard_normal(), "y": RNG.standard_normal(), "layer": layer,
                                "method": method, "variant": variant} for layer in range(31)
                               for method in ("pca", "tsne", "umap") for variant in ("raw", "unit norm", "no 0",
                                                                                       "unit norm, no 0")])
    return {"plot_top_attributions": plots.plot_top_attributions(top_with_weight_sign(table, 8)),
            "plot_cumulative_contributions": plots.plot_cumulative_contributions(cumulative_contributions(table)),
            "plot_accuracy_grid": plots.plot_accuracy_grid(grid),
            "plot_condition_accuracy": plots.plot_condition_accuracy(conditions),
            "plot_training_curves": plots.plot_training_curves(history),
            "plot_confusion": plots.plot_confusion(confusion_table(y_true, y_true, np.arange(31))),
            "plot_reductions": plots.plot_reductions(reductions)}


def test_every_figure_prints_its_smallest_text_at_7_pt_or_more():
    for name, fig in _all_figures().items():
        assert fig.get_figwidth() <= PRINT_WIDTHS[name] + 1e-9, name  # never shrunk more than designed
        assert plots.smallest_text_pt(fig, PRINT_WIDTHS[name]) >= 7.0, name


def test_a_planted_4_pt_figure_fails_the_measure():
    fig = Figure(figsize=(10.0, 4.0))
    fig.subplots().set_title("seven points", fontsize=7)
    assert plots.smallest_text_pt(fig, 6.3) == pytest.approx(7 * 0.63)  # 10 in placed at 6.3 in
    fig.axes[0].text(0, 0, "tiny", fontsize=4)
    assert plots.smallest_text_pt(fig, 10.0) == pytest.approx(4.0)


def test_top_dimensions_carry_the_weight_sign_not_the_contribution_sign():
    X = RNG.standard_normal((200, 6))
    y = np.repeat(np.arange(2), 100)
    X[y == 0, 0] -= 3.0  # layer 0 sits low on dim 0: a negative weight gives it a positive contribution
    coef = np.zeros((2, 6))
    coef[0, 0], coef[1, 0] = -2.0, 2.0
    coef[:, 1:] = 0.01
    table = attribution_table(coef, np.arange(2), X, y)
    top = top_with_weight_sign(table, 2).set_index(["layer", "rank"])
    assert top.loc[(0, 1), "dim"] == 0 and top.loc[(0, 1), "sign"] == -1  # weight sign
    contribution = table[(table["variant"] == "input_x_weight") & (table["layer"] == 0) & (table["dim"] == 0)]
    assert int(contribution["sign"].iloc[0]) == 1  # the mean contribution is positive
