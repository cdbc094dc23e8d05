"""Study 1's paper text (`layerwise.narrative.probes`) from planted tables, helper by helper: `_pct`,
`_near_chance`, `_base`, `_post_cell`, `_differs`, `probe_macros`, `reduction_figures`, every lens and probe macro
the paper uses, and the verdict sentences, whose words of agreement come from the numbers (planted both ways).

The probe summary is planted in the row order `condition_table` gives it at two sizes (N=100 main, N=50
additions). Planted edges: values whose first decimal the rounding decides, a control exactly 5 points above
chance, a median of an even count, absent gap rows. Every expected string is written out from the planted numbers
and the templates' wording, never pasted from a run."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from layerwise.narrative import lens as lens_mod, probes as probe_mod
from layerwise.narrative.probes import (_base, _differs, _near_chance, _pct, _post_cell, probe_macros,
                                        probe_verdict_macros, reduction_figures)
from layerwise.probes.claims import CLAIMS, FAITHFUL, OURS, evidence_table, probe_claims
from layerwise.probes.summary import condition_table
from layerwise.verdicts import verdict_frame
from layerwise.workflow.macros import LaTeX

from tests.helpers import REPO
from tests.narrative.planted import lens_changes, lens_summary, run_lens


PAPER = REPO / "paper"


# =========================================================================== study 1: probes

# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("x, text", [
    (0.8322, "83.2\\%"), (0.8303, "83.0\\%"), (0.66, "66.0\\%"), (1.0, "100.0\\%"), (0.0, "0.0\\%"),
    (0.1236, "12.4\\%"), (0.1234, "12.3\\%"), (-0.0312, "-3.1\\%"), (0.0899, "9.0\\%"), (1 / 13, "7.7\\%"),
])
def test_pct_one_decimal_percent_escaped(x, text):
    assert _pct(x) == text


@pytest.mark.parametrize("accuracy, chance, near", [
    (0.0899, 0.04, True),     # 4.99 points above
    (0.0901, 0.04, False),    # 5.01 points above
    (0.25, 0.20, False),      # exactly 5 points (0.2 + 0.05 == 0.25 in binary too): not within
    (0.55, 0.50, False),      # exactly 5 points again (0.5 + 0.05 == 0.55)
    (0.5499, 0.50, True),
    (0.20, 0.20, True),       # at chance
    (0.0, 0.5, True),         # below chance: not above it
    (0.9, 0.1, False),
])
def test_near_chance_is_strictly_within_five_points_above(accuracy, chance, near):
    assert _near_chance(accuracy, chance) is near


@pytest.mark.parametrize("condition, base", [
    ("raw (N=300)", "raw"), ("transfer gap (N=50)", "transfer gap"), ("raw", "raw"),
    ("train imdb, test ag_news (N=50)", "train imdb, test ag_news"),
    ("raw (N=300) (N=50)", "raw (N=300)"),    # only the end
    ("raw (N=) ", "raw (N=) "), ("raw(N=300)", "raw(N=300)"), ("raw (N=3x)", "raw (N=3x)"),
    ("x (N=300) y", "x (N=300) y"), ("transfer gap, no punctuation", "transfer gap, no punctuation"),
])
def test_base_strips_only_a_trailing_size(condition, base):
    assert _base(condition) == base


POST_CELLS = [
    ("raw", "83.2\\%"), ("post_faithful", "83.2\\%"), ("raw (N=50)", "83.2\\%"), ("post_faithful (N=50)", "83.2\\%"),
    ("random_scalar_trained", "fails"), ("random_scalar_trained (N=50)", "fails"),
    ("random_scalar_retrained", "--"),
    ("train imdb, test ag_news", "66.0\\%"), ("train imdb, test ag_news (N=50)", "66.0\\%"),
    ("train imdb+ag_news, test ag_news", "--"), ("train imdb+ag_news, test ag_news (N=50)", "--"),
    ("train imdb, test ag_news, no punctuation", "--"), ("train imdb+ag_news, test ag_news, no punctuation", "--"),
    ("masked_at_test", "83.0\\%"), ("masked_at_test (N=50)", "83.0\\%"), ("normalised", "64.0\\%"),
    ("masked_retrained", "--"), ("transfer gap", "--"), ("transfer gap (N=50)", "--"),
    ("transfer gap, no punctuation", "--"), ("shuffled_labels", "--"), ("stability", "--"), ("tree", "--"),
    ("no_punctuation", "--"), ("with_position0", "--"), ("random_per_dimension_trained", "--"),
    ("training imdb", "--"),      # "train" without the space is not a transfer row
    ("", "--"),
]


@pytest.mark.parametrize("condition, cell", POST_CELLS)
def test_post_cell_names_the_posts_number_or_a_dash(condition, cell):
    """The post (PUBLISHED): 83.22% raw, 83.03% masked, 66% on AG News, 64% normalised; its scalar-matched
    random vectors are not classified ("fails"); the same experiment at another N gets the same number."""
    assert _post_cell(condition) == cell


DIFFERS = [
    ("raw", "last class pre-norm, position 0 dropped"), ("raw (N=50)", "last class pre-norm, position 0 dropped"),
    ("post_faithful", "none (post-norm last class, position 0 kept)"),
    ("masked_at_test", "mask chosen on train (post: unclear)"), ("masked_retrained", "not in the post"),
    ("normalised", "--"), ("random_scalar_trained", "post's reading (one mean, variance per layer)"),
    ("random_scalar_retrained", "not in the post"),
    ("random_per_dimension_trained", "per-dimension moments (not the post's)"),
    ("random_per_dimension_retrained", "per-dimension moments, re-trained"),
    ("shuffled_labels", "train labels only, 7 permutations"), ("tree", "not in the post"),
    ("with_position0", "position 0 kept"), ("no_punctuation", "not run in the post (proposed)"),
    ("stability", "5 seeds (text splits)"), ("stability (N=50)", "5 seeds (text splits)"),
    ("train imdb, test ag_news", "last class pre-norm, position 0 dropped"),
    ("train imdb+ag_news, test ag_news (N=50)", "last class pre-norm, position 0 dropped"),
    ("transfer gap", "last class pre-norm, position 0 dropped"),
    ("transfer gap (N=50)", "last class pre-norm, position 0 dropped"),
    # punctuation is checked first: these rows also start with "train " / "transfer gap"
    ("train imdb, test ag_news, no punctuation", "punctuation stripped, both datasets"),
    ("train imdb+ag_news, test ag_news, no punctuation", "punctuation stripped, both datasets"),
    ("transfer gap, no punctuation", "punctuation stripped, both datasets"),
    ("something else", "--"), ("training imdb", "--"),
]


@pytest.mark.parametrize("condition, text", DIFFERS)
def test_differs_names_what_the_row_does_differently(condition, text):
    assert _differs(condition, permutations=7, seeds=5) == text


def test_differs_states_the_number_of_permutations():
    assert _differs("shuffled_labels", 1, 5) == "train labels only, one permutation"
    assert _differs("shuffled_labels (N=50)", 20, 5) == "train labels only, 20 permutations"


def test_reduction_figures_one_per_model_in_order():
    """A sentence citing every map, then one figure per model in the given order, each labelled for that cite."""
    text = reduction_figures({"gpt2_medium": "GPT_2 medium", "smol": "Smol"})
    assert isinstance(text, LaTeX)
    figure = ("\\begin{{figure}}[!htbp]\\centering\\includegraphics[width=\\linewidth,height=0.8\\textheight,"
              "keepaspectratio]{{probes/{key}_reductions.png}}\\caption{{PCA, t-SNE and UMAP of {name}'s hidden "
              "states, coloured by layer (reverse rainbow); rows: raw (the post's Fig.~4), without layer 0 (Fig.~2), "
              "unit-norm without layer 0 (Fig.~3). Drawn by rule \\texttt{{probe\\_reductions}} "
              "(\\texttt{{scripts/probe\\_reductions.py}}).}}\\label{{fig:reductions-{key}}}\\end{{figure}}")
    cite = "The maps are in Figure~\\ref{fig:reductions-gpt2_medium} and Figure~\\ref{fig:reductions-smol}."
    assert str(text) == "\n".join([cite, figure.format(key="gpt2_medium", name="GPT\\_2 medium"),
                                   figure.format(key="smol", name="Smol")])
    assert reduction_figures({}) == "\n"


# --------------------------------------------------------------------------- probe_macros

MAIN = ["raw", "normalised", "random_scalar_trained", "random_scalar_retrained", "shuffled_labels", "post_faithful",
        "masked_at_test", "train imdb, test ag_news", "train imdb+ag_news, test ag_news", "transfer gap"]
VARIANT = ["raw (N=50)", "masked_retrained", "train imdb, test ag_news (N=50)", "train imdb+ag_news, test ag_news (N=50)",
           "transfer gap (N=50)", "random_per_dimension_trained", "random_per_dimension_retrained", "tree",
           "with_position0", "no_punctuation", "train imdb, test ag_news, no punctuation",
           "train imdb+ag_news, test ag_news, no punctuation", "transfer gap, no punctuation", "stability"]
# accuracy per row of MAIN + VARIANT; chance 1/25 for G_2 and 1/13 for B
ACC_G = [0.8137, 0.6049, 0.0899, 0.0412, 0.0433, 0.7777, 0.7001, 0.6012, 0.7512, 0.2034,
         0.7466, 0.7788, 0.5550, 0.7, 0.0849, 0.6149, 0.6651, 0.5, 0.8081, 0.7933, 0.65, 0.72, -0.0312, 0.8101]
ACC_B = [0.52, 0.41, 0.2, 0.11, 0.08, 0.47, 0.54, 0.4, 0.45, 0.12,
         0.49, 0.5, 0.39, 0.44, 0.1, 0.3, 0.35, 0.33, 0.51, 0.48, 0.37, 0.42, 0.07, 0.5]
STD_G = {"shuffled_labels": 0.0051, "stability": 0.0149}
STD_B = {"shuffled_labels": 0.02, "stability": 0.03}


def probe_rows(model: str, chance: float, accuracy: dict[str, float], std: dict[str, float] | None = None,
               variant: set[str] = frozenset(VARIANT), n: int = 100, variant_n: int = 50) -> pd.DataFrame:
    """`condition_table(...).assign(model=...)`: condition, accuracy, std (NaN unless several runs), n_texts, chance,
    model; rows of `variant` at `variant_n`."""
    std = std or {}
    return pd.DataFrame([{"condition": c, "accuracy": a, "std": std.get(c, np.nan),
                          "n_texts": variant_n if c in variant else n, "chance": chance, "model": model}
                         for c, a in accuracy.items()])


def two_models() -> pd.DataFrame:
    return pd.concat([probe_rows("G_2", 1 / 25, dict(zip(MAIN + VARIANT, ACC_G)), STD_G),
                      probe_rows("B", 1 / 13, dict(zip(MAIN + VARIANT, ACC_B)), STD_B)], ignore_index=True)


def dims_rows(model: str, half: list[float], ninety: list[float]) -> pd.DataFrame:
    """`dims_for_share` rows per layer (thresholds as floats, as the CSV gives them) plus rows that must be
    ignored: the `weight` variant (1000 dims) and a 75% threshold (500 dims)."""
    assert len(half) == len(ninety), "one count per layer for each threshold"
    rows = []
    for layer, (h, t) in enumerate(zip(half, ninety)):
        rows += [{"layer": layer, "variant": "input_x_weight", "threshold": 50.0, "n_dims": h},
                 {"layer": layer, "variant": "input_x_weight", "threshold": 75.0, "n_dims": 500},
                 {"layer": layer, "variant": "input_x_weight", "threshold": 90.0, "n_dims": t},
                 {"layer": layer, "variant": "weight", "threshold": 50.0, "n_dims": 1000},
                 {"layer": layer, "variant": "weight", "threshold": 90.0, "n_dims": 1000}]
    return pd.DataFrame(rows).assign(model=model)


def run_probes(summary: pd.DataFrame, dims: pd.DataFrame | None = None, *, first_model: str = "G_2",
               n_texts: int = 100, variant_n_texts: int = 50) -> dict:
    dims = dims if dims is not None else pd.concat([dims_rows("G_2", [1, 2, 9], [10, 30, 31]),
                                                    dims_rows("B", [5, 5, 6], [7, 8, 9])], ignore_index=True)
    return probe_macros(summary, dims, first_model=first_model, mask_k=4, n_texts=n_texts,
                        variant_n_texts=variant_n_texts, max_tokens=48, permutations=2, seeds=5)


def test_planted_rows_are_shaped_like_condition_table():
    """The row names and their order and sizes above are those `condition_table` produces at N=100 / N=50 (with
    transfer datasets imdb and ag_news), so the tests below read the table the workflow passes."""
    one = lambda c, a: pd.DataFrame([{"condition": c, "accuracy": a, "chance": 0.04}])  # noqa: E731
    transfer = pd.DataFrame({"train": ["imdb", "imdb", "imdb+ag_news", "imdb+ag_news"],
                             "test": ["imdb", "ag_news", "imdb", "ag_news"], "accuracy": [0.8, 0.6, 0.8, 0.75]})
    table = condition_table(
        raw=one("raw", 0.8),
        conditions=[one("normalised", 0.6), pd.DataFrame({"condition": ["random_scalar_trained",
                                                                         "random_scalar_retrained"],
                                                           "accuracy": [0.1, 0.1]}),
                    pd.DataFrame({"condition": "shuffled_labels", "accuracy": [0.04, 0.06]}), one("post_faithful", 0.7)],
        masks=pd.DataFrame({"condition": ["full", "masked_at_test", "masked_retrained"], "accuracy": [0.8, 0.7, 0.7]}),
        transfer=transfer, variant_raw=one("raw", 0.8), variant_masks=pd.DataFrame(
            {"condition": ["full", "masked_at_test", "masked_retrained"], "accuracy": [0.8, 0.7, 0.7]}),
        variant_conditions=[pd.DataFrame({"condition": ["random_per_dimension_trained",
                                                        "random_per_dimension_retrained"], "accuracy": [0.5, 0.5]}),
                            one("tree", 0.5), one("with_position0", 0.8)],
        nopunct=one("raw", 0.79), variant_transfer=transfer, transfer_nopunct=transfer,
        stability=pd.DataFrame({"accuracy": [0.8, 0.81]}), n_texts=100, variant_n_texts=50)
    assert table["condition"].tolist() == MAIN + VARIANT
    assert table["n_texts"].tolist() == [100] * len(MAIN) + [50] * len(VARIANT)
    assert table["std"].notna().tolist() == [c in ("shuffled_labels", "stability") for c in MAIN + VARIANT]


def test_transfer_without_the_mixed_probe_leaves_out_only_its_row():
    """At the main N the A+B probe is not fitted (rule probe_transfer: mix only at the additions' size)."""
    one = lambda c, a: pd.DataFrame([{"condition": c, "accuracy": a, "chance": 0.04}])  # noqa: E731
    both = pd.DataFrame({"train": ["imdb", "imdb", "imdb+ag_news", "imdb+ag_news"],
                         "test": ["imdb", "ag_news", "imdb", "ag_news"], "accuracy": [0.8, 0.6, 0.8, 0.75]})
    masks = pd.DataFrame({"condition": ["masked_at_test", "masked_retrained"], "accuracy": [0.7, 0.7]})
    kwargs = dict(raw=one("raw", 0.8), conditions=[], variant_raw=one("raw", 0.8), variant_conditions=[],
                  masks=masks, variant_masks=masks,
                  nopunct=one("raw", 0.79), variant_transfer=both, transfer_nopunct=both,
                  stability=pd.DataFrame({"accuracy": [0.8, 0.81]}), n_texts=100, variant_n_texts=50)
    table = condition_table(transfer=both.iloc[:2], **kwargs).set_index("condition")
    full = condition_table(transfer=both, **kwargs).set_index("condition")
    assert "train imdb+ag_news, test ag_news" not in table.index
    assert table.loc["train imdb+ag_news, test ag_news (N=50)", "accuracy"] == 0.75
    assert table.loc["transfer gap", "accuracy"] == pytest.approx(0.2)
    assert full.drop("train imdb+ag_news, test ag_news").equals(table)


def test_probe_table_full_text_at_two_sizes():
    """Every row: escaped name, what differs from the post, its N, the post's number, each model's accuracy
    (one decimal; +/- the std where several runs; transfer gaps as signed points), then chance 1/(n+1)."""
    rows = [
        "raw & last class pre-norm, position 0 dropped & 100 & 83.2\\% & 81.4\\% & 52.0\\%",
        "normalised & -- & 100 & 64.0\\% & 60.5\\% & 41.0\\%",
        "random scalar trained & post's reading (one mean, variance per layer) & 100 & fails & 9.0\\% & 20.0\\%",
        "random scalar retrained & not in the post & 100 & -- & 4.1\\% & 11.0\\%",
        "shuffled labels & train labels only, 2 permutations & 100 & -- & 4.3\\% $\\pm$ 0.5 & 8.0\\% $\\pm$ 2.0",
        "post faithful & none (post-norm last class, position 0 kept) & 100 & 83.2\\% & 77.8\\% & 47.0\\%",
        "masked at test & mask chosen on train (post: unclear) & 100 & 83.0\\% & 70.0\\% & 54.0\\%",
        "train imdb, test ag news & last class pre-norm, position 0 dropped & 100 & 66.0\\% & 60.1\\% & 40.0\\%",
        "train imdb+ag news, test ag news & last class pre-norm, position 0 dropped & 100 & -- & 75.1\\% & 45.0\\%",
        "transfer gap & last class pre-norm, position 0 dropped & 100 & -- & +20.3 pp & +12.0 pp",
        "raw (N=50) & last class pre-norm, position 0 dropped & 50 & 83.2\\% & 74.7\\% & 49.0\\%",
        "masked retrained & not in the post & 50 & -- & 77.9\\% & 50.0\\%",
        "train imdb, test ag news (N=50) & last class pre-norm, position 0 dropped & 50 & 66.0\\% & 55.5\\% & 39.0\\%",
        "train imdb+ag news, test ag news (N=50) & last class pre-norm, position 0 dropped & 50 & -- & 70.0\\% & "
        "44.0\\%",
        "transfer gap (N=50) & last class pre-norm, position 0 dropped & 50 & -- & +8.5 pp & +10.0 pp",
        "random per dimension trained & per-dimension moments (not the post's) & 50 & -- & 61.5\\% & 30.0\\%",
        "random per dimension retrained & per-dimension moments, re-trained & 50 & -- & 66.5\\% & 35.0\\%",
        "tree & not in the post & 50 & -- & 50.0\\% & 33.0\\%",
        "with position0 & position 0 kept & 50 & -- & 80.8\\% & 51.0\\%",
        "no punctuation & not run in the post (proposed) & 50 & -- & 79.3\\% & 48.0\\%",
        "train imdb, test ag news, no punctuation & punctuation stripped, both datasets & 50 & -- & 65.0\\% & 37.0\\%",
        "train imdb+ag news, test ag news, no punctuation & punctuation stripped, both datasets & 50 & -- & 72.0\\% & "
        "42.0\\%",
        "transfer gap, no punctuation & punctuation stripped, both datasets & 50 & -- & -3.1 pp & +7.0 pp",
        "stability & 5 seeds (text splits) & 50 & -- & 81.0\\% $\\pm$ 1.5 & 50.0\\% $\\pm$ 3.0",
    ]
    expected = ["\\begin{tabular}{llrrrr}", "\\hline",
                "condition & differs from the post & $N$ & post & G\\_2 & B \\\\", "\\hline",
                *(r + " \\\\" for r in rows),
                "\\hline", "chance $1/(n+1)$ & & & & 4.0\\% & 7.7\\% \\\\", "\\hline", "\\end{tabular}"]
    table = run_probes(two_models())["ProbeTable"]
    assert isinstance(table, LaTeX)
    assert str(table).split("\n") == expected


def test_probe_table_one_model_without_std_column():
    """One model: one accuracy column; no std column at all (no "+/-" anywhere, not even where the other test
    has one); a transfer gap of exactly 0 still signed."""
    accuracy = {**dict(zip(MAIN + VARIANT, ACC_B)), "transfer gap": 0.0}
    summary = probe_rows("A", 0.5, accuracy).drop(columns="std")
    lines = str(run_probes(summary, dims_rows("A", [3], [4]), first_model="A")["ProbeTable"]).split("\n")
    assert lines[0] == "\\begin{tabular}{llrrr}"
    assert lines[2] == "condition & differs from the post & $N$ & post & A \\\\"
    assert "$\\pm$" not in "\n".join(lines)
    assert lines[4] == "raw & last class pre-norm, position 0 dropped & 100 & 83.2\\% & 52.0\\% \\\\"
    assert lines[8] == "shuffled labels & train labels only, 2 permutations & 100 & -- & 8.0\\% \\\\"
    assert lines[13] == "transfer gap & last class pre-norm, position 0 dropped & 100 & -- & +0.0 pp \\\\"  # signed 0
    assert lines[-3] == "chance $1/(n+1)$ & & & & 50.0\\% \\\\"


def test_probe_summary_full_text_at_two_sizes():
    """Planted: G_2's scalar control at 8.99% against chance 4% (under 5 points above: near chance, although it
    prints as 9.0%), B's 20% against 7.7% (not); the additions at N=50 say so, and the punctuation comparison
    takes the N=50 raw gap (+8.5 / +10.0), not the main one (+20.3 / +12.0); G_2's gap without punctuation is
    negative."""
    text = str(run_probes(two_models())["ProbeSummary"])
    assert text == " ".join([
        "For G\\_2 the raw probe reaches 81.4\\% (chance 4.0\\%) and the post's setting 77.8\\%; masking the 4 "
        "dimensions chosen on the training split gives 70.0\\% and unit norm 60.5\\%. Scalar-matched random vectors "
        "are classified at 9.0\\% by the unit-norm probe (near chance: the post's claim holds) and at 4.1\\% "
        "re-trained. With shuffled training labels the probe scores 4.3\\% on the true test labels. The transfer gap "
        "(IMDB-trained probe, IMDB minus AG News) is +20.3 points. Per-dimension-matched random vectors (N=50) are "
        "classified at 61.5\\% by the raw probe and 66.5\\% re-trained; the transfer gap (N=50) is +8.5 points raw "
        "and -3.1 points with punctuation stripped from both datasets.",
        "For B the raw probe reaches 52.0\\% (chance 7.7\\%) and the post's setting 47.0\\%; masking the 4 "
        "dimensions chosen on the training split gives 54.0\\% and unit norm 41.0\\%. Scalar-matched random vectors "
        "are classified at 20.0\\% by the unit-norm probe (not near chance) and at 11.0\\% re-trained. With shuffled "
        "training labels the probe scores 8.0\\% on the true test labels. The transfer gap (IMDB-trained probe, IMDB "
        "minus AG News) is +12.0 points. Per-dimension-matched random vectors (N=50) are classified at 30.0\\% by the "
        "raw probe and 35.0\\% re-trained; the transfer gap (N=50) is +10.0 points raw and +7.0 points with "
        "punctuation stripped from both datasets."])
    assert isinstance(run_probes(two_models())["ProbeSummary"], LaTeX)


def _one_size(accuracy: dict[str, float]) -> dict[str, float]:
    """The same rows run at a single N: no " (N=50)" repeats."""
    return {c: a for c, a in accuracy.items() if not c.endswith(" (N=50)")}


def test_probe_summary_at_one_size_names_no_n_and_takes_the_main_gap():
    summary = probe_rows("G_2", 1 / 25, _one_size(dict(zip(MAIN + VARIANT, ACC_G))), STD_G, variant=set())
    text = str(run_probes(summary, dims_rows("G_2", [1], [2]), n_texts=100, variant_n_texts=100)["ProbeSummary"])
    assert "(N=" not in text
    assert text.endswith("The transfer gap (IMDB-trained probe, IMDB minus AG News) is +20.3 points. "
                         "Per-dimension-matched random vectors are classified at 61.5\\% by the raw probe and 66.5\\% "
                         "re-trained; the transfer gap is +20.3 points raw and -3.1 points with punctuation stripped "
                         "from both datasets.")


@pytest.mark.parametrize("drop, main_gap, tail", [
    # the size-matched raw gap is missing: no punctuation comparison (it would mix two N)
    (["transfer gap (N=50)"], True, " re-trained."),
    # no punctuation gap: no comparison either
    (["transfer gap, no punctuation"], True, " re-trained."),
    # no main gap: no main sentence, but the comparison at N=50 stands
    (["transfer gap"], False, " re-trained; the transfer gap (N=50) is +8.5 points raw and -3.1 points with "
                              "punctuation stripped from both datasets."),
    (["transfer gap", "transfer gap (N=50)", "transfer gap, no punctuation"], False, " re-trained."),
])
def test_probe_summary_names_only_the_gaps_it_has(drop, main_gap, tail):
    accuracy = {c: a for c, a in zip(MAIN + VARIANT, ACC_G) if c not in drop}
    text = str(run_probes(probe_rows("G_2", 1 / 25, accuracy, STD_G), dims_rows("G_2", [1], [2]))["ProbeSummary"])
    assert ("The transfer gap (IMDB-trained probe, IMDB minus AG News) is +20.3 points. " in text) is main_gap
    assert text.endswith("Per-dimension-matched random vectors (N=50) are classified at 61.5\\% by the raw probe and "
                         f"66.5\\%{tail}")


@pytest.mark.parametrize("scalar, chance, shown, verdict", [
    (0.25, 0.20, "25.0", "not near chance"),                           # exactly 5 points above: not within
    (0.2499, 0.20, "25.0", "near chance: the post's claim holds"),     # prints as 25.0% but is within
    (0.2, 0.20, "20.0", "near chance: the post's claim holds"),
    (0.01, 0.20, "1.0", "near chance: the post's claim holds"),        # below chance
    (0.2501, 0.20, "25.0", "not near chance"),
])
def test_probe_scalar_control_verdict_at_the_threshold(scalar, chance, shown, verdict):
    accuracy = {**dict(zip(MAIN + VARIANT, ACC_G)), "random_scalar_trained": scalar}
    text = str(run_probes(probe_rows("G_2", chance, accuracy), dims_rows("G_2", [1], [2]))["ProbeSummary"])
    assert f"classified at {shown}\\% by the unit-norm probe ({verdict}) and at 4.1\\% re-trained." in text
    assert text.count("near chance") == 1


def test_probe_comparison_full_text_and_differences():
    """First model G_2: post setting 77.8%, raw 81.37%; masking 70.01 - 81.37 = -11.36 -> -11.4 points, unit
    norm 60.49 - 81.37 = -20.88 -> -20.9; the post's 83.03 - 83.22 = -0.19 -> -0.2 and 64 - 83.22 = -19.22 ->
    -19.2. Our L is max_tokens (48); the post's stays 30."""
    macros = run_probes(two_models())
    assert str(macros["ProbeComparison"]) == (
        "The post reports, for GPT-2 medium with L=30 and N=1000, 83.2\\% raw, 83.0\\% after masking, 66.0\\% on AG "
        "News, 64.0\\% after normalisation and about 60.0\\% for GPT-2 XL. Our run uses other models (N=100, L=48): "
        "for G\\_2 the post's setting gives 77.8\\% and our default 81.4\\%; masking changes accuracy by -11.4 points "
        "(post: -0.2) and normalisation by -20.9 points (post: -19.2).")
    assert macros["ProbeRawAccuracyFirst"] == 0.8137 and type(macros["ProbeRawAccuracyFirst"]) is float


def test_probe_comparison_gains_are_signed_positive_for_the_second_model():
    """First model B (second in the table): masking 54 - 52 = +2.0 points, unit norm 41 - 52 = -11.0."""
    macros = run_probes(two_models(), first_model="B")
    assert str(macros["ProbeComparison"]).endswith(
        "for B the post's setting gives 47.0\\% and our default 52.0\\%; masking changes accuracy by +2.0 points "
        "(post: -0.2) and normalisation by -11.0 points (post: -19.2).")
    assert macros["ProbeRawAccuracyFirst"] == 0.52


def test_probe_dims_medians_per_model_of_the_input_x_weight_attribution():
    """Planted per layer: G_2 needs 1, 2, 9, 2 dimensions for 50% (median 2; the mean would be 3.5) and 10, 30, 31,
    100 for 90% (an even count: median 30.5, not truncated); B 5, 5, 6 (median 5) and 7, 8, 9 (median 8). The
    `weight` variant and the 75% threshold must not count."""
    dims = pd.concat([dims_rows("G_2", [1, 2, 9, 2], [10, 30, 31, 100]), dims_rows("B", [5, 5, 6], [7, 8, 9])],
                     ignore_index=True)
    macros = run_probes(two_models(), dims)
    assert str(macros["ProbeDims"]) == (
        "In G\\_2 the median layer needs 2 dimensions for 50\\% and 30.5 for 90\\% of the probe's $|w_j x_j|$ "
        "attribution (training split). In B the median layer needs 5 dimensions for 50\\% and 8 for 90\\% of the "
        "probe's $|w_j x_j|$ attribution (training split).")


@pytest.mark.parametrize("half, ninety, text", [
    ([1, 2, 3, 9], [7, 8, 8, 9], "needs 2.5 dimensions for 50\\% and 8 for 90\\%"),     # a half-integer median
    ([1000, 1001, 1000, 1001], [2047, 2048, 2049, 2048], "needs 1000.5 dimensions for 50\\% and 2048 for 90\\%"),  # no 1e+03
])
def test_probe_dims_median_is_printed_without_rounding(half, ninety, text):
    macros = run_probes(two_models(), pd.concat([dims_rows("G_2", half, ninety), dims_rows("B", [5], [8])]))
    assert str(macros["ProbeDims"]).startswith(f"In G\\_2 the median layer {text} of the probe's")


def test_probe_table_std_only_where_that_model_has_one():
    """Planted: G_2's shuffled-label control ran several permutations (std 0.51 points), B's one (no std): B's
    cell is the plain accuracy, not "+/- nan"."""
    summary = two_models()
    summary.loc[(summary["model"] == "B") & (summary["condition"] == "shuffled_labels"), "std"] = np.nan
    lines = str(run_probes(summary)["ProbeTable"]).split("\n")
    assert lines[8] == ("shuffled labels & train labels only, 2 permutations & 100 & -- & 4.3\\% $\\pm$ 0.5 & "
                        "8.0\\% \\\\")
    assert lines[-5] == "stability & 5 seeds (text splits) & 50 & -- & 81.0\\% $\\pm$ 1.5 & 50.0\\% $\\pm$ 3.0 \\\\"


def test_probe_numbers_passed_through():
    macros = run_probes(two_models())
    assert (macros["ProbeNTexts"], macros["ProbeVariantNTexts"], macros["ProbeMaxTokens"], macros["ProbeMaskK"],
            macros["ProbePermutations"]) == (100, 50, 48, 4, 2)
    assert macros["ProbePublishedSource"] == "Huang et al. (2024), gpt2-medium, L=30, N=1000"


# =========================================================================== the paper's macro names


def test_every_lens_and_probe_macro_the_paper_uses_is_defined():
    tex = "\n".join(p.read_text() for p in PAPER.rglob("*.tex"))
    used_lens = set(re.findall(r"\\(Lens[A-Za-z]+)", tex))
    used_probe = set(re.findall(r"\\(Probe[A-Za-z]+)", tex))
    lens = run_lens(lens_summary("A", "full", [0.9] * 5, [6, 5, 4, 3, 2], [0.0] * 5),
                    lens_changes("A", "full", (1, 2, 0, 3), (1, 2, 0, 3)))
    verdict_frame = pd.DataFrame({"key": ["k"], "claim": ["c"], "source": ["s"], "test": ["> 1"], "setting": [""],
                                  "verdict": ["reproduced"], "reason": ["r"], "faithful_estimate": [2.0],
                                  "faithful_low": [1.5], "faithful_high": [2.5], "ours_estimate": [math.nan],
                                  "ours_low": [math.nan], "ours_high": [math.nan]})
    lens = {**lens, **lens_mod.lens_verdict_macros(verdict_frame, units={}, model_name="A"),  # lens_verdicts.py
            **lens_mod.long_context_macros(None, dataset="imdb", n_texts=0, max_tokens=8, figure=None),  # lens_long.py
            "LensTrained": ""}  # lens_trained.py (its own test above)
    probe = {**run_probes(two_models()), "ProbeReductionFigures": reduction_figures({"a": "A"}),  # probe_figures.py
             **_macros(-3.0, -2.0, -0.1, np.linspace(-1.0, 0.2, 50), 20.0, 80.0),  # probe_verdicts.py
             "ProbeMaxEpochs": 100, "ProbeHeadlineMaxEpochs": 1000,  # probe_verdicts.py, from config
             "ProbeVerdictDiscussion": probe_mod.verdict_discussion(verdict_frame)}  # probe_verdicts.py
    assert {"LensSummary", "LensDiscarding", "LensFigureExample", "LensFigureDiscarding", "LensFigureMore",
            "LensVerdictTable", "LensVerdictOpening", "LensVerdictDiscussion", "LensSubblocks", "LensTexts",
            "LensTokens", "LensPositionZero"} <= used_lens <= set(lens)
    assert {"ProbeTable", "ProbeSummary", "ProbeComparison", "ProbeDims", "ProbeNTexts"} <= used_probe <= set(probe)
    assert probe_mod.PUBLISHED["raw"] == 0.8322


def test_probe_std_and_the_posts_differences_are_in_points_exactly(monkeypatch):
    """Values planted where a 1% error crosses a rounding step: a std of 0.0997 is 9.97 -> "10.0" points (1%
    more would print 10.1); the post's masking change 0.90 - 0.80 = +10.0 points and normalisation
    0.70 - 0.80 = -10.0."""
    summary = two_models()
    summary.loc[(summary["model"] == "G_2") & (summary["condition"] == "stability"), "std"] = 0.0997
    monkeypatch.setitem(probe_mod.PUBLISHED, "raw", 0.80)
    monkeypatch.setitem(probe_mod.PUBLISHED, "masked_at_test", 0.90)
    monkeypatch.setitem(probe_mod.PUBLISHED, "normalised", 0.70)
    macros = run_probes(summary)
    assert "stability & 5 seeds (text splits) & 50 & -- & 81.0\\% $\\pm$ 10.0 &" in str(macros["ProbeTable"])
    assert "(post: +10.0) and normalisation by -20.9 points (post: -10.0)." in str(macros["ProbeComparison"])


# --------------------------------------------------------------------------- verdict sentences

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
    assert "unit norm lowers it" in text and "in the post's direction, not by its size" in text and "agree in direction" in text
    assert "carry no more than random ones" in text
    assert "(the post's pattern)" in text
    opposite = str(_macros(-3.0, 0.7, -7.3, np.full(50, -0.05), 60.0, 40.0)["ProbeFaithfulAblations"])
    assert "the two settings disagree even in direction" in opposite and "raises it (+0.7 points)" in opposite
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


@pytest.mark.parametrize("permutations, phrase", [
    (1, "one permutation, scored on the true test labels"),
    (3, "3 permutations, mean $\\pm$ std on the true test labels")])
def test_the_shuffled_label_sentence_follows_the_number_of_permutations(permutations, phrase):
    from layerwise.workflow.macros import render_macros

    dims = pd.concat([dims_rows("G_2", [1, 2, 9], [10, 30, 31]), dims_rows("B", [5, 5, 6], [7, 8, 9])],
                     ignore_index=True)
    macros = probe_macros(two_models(), dims, first_model="G_2", mask_k=4, n_texts=100, variant_n_texts=50,
                          max_tokens=48, permutations=permutations, seeds=5)
    assert macros["ProbePermutationsScored"] == phrase
    assert f"{{\\ProbePermutationsScored}}{{{phrase}}}" in render_macros(macros, "test")  # inserted unescaped
