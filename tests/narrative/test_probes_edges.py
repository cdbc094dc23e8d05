"""Study 1's stated numbers (`layerwise.narrative.probes`) at the edges a sentence can get wrong: known
accuracy differences and gap signs at one and two sizes, the scalar control's verdict, the comparison of two
models, no transfer rows (then no claim), the median of an even number of layers.

Every expected string is written out from the planted numbers, formatted as the function formats them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerwise.narrative.probes import probe_macros


# --------------------------------------------------------------------------- study 1: probes

PROBE_A = {"raw": 0.80, "post_faithful": 0.75, "masked_at_test": 0.70, "masked_retrained": 0.78,
           "normalised": 0.85, "random_scalar_trained": 0.14, "random_scalar_retrained": 0.12,
           "random_per_dimension_trained": 0.60, "random_per_dimension_retrained": 0.65, "shuffled_labels": 0.11,
           "train imdb, test ag_news": 0.6, "train imdb+ag_news, test ag_news": 0.75, "transfer gap": 0.20,
           "transfer gap, no punctuation": -0.03, "stability": 0.8}


def probe_summary(model: str, chance: float, accuracy: dict[str, float]) -> pd.DataFrame:
    """`condition_table` rows of one model; shuffled labels and stability carry a std of 0.01."""
    return pd.DataFrame([{"condition": c, "accuracy": a, "std": 0.01 if c in ("shuffled_labels", "stability")
                          else np.nan, "chance": chance, "model": model, "n_texts": 100} for c, a in accuracy.items()])


def probe_dims(model: str, half: list[int], ninety: list[int]) -> pd.DataFrame:
    """`dims_for_share` rows per layer; the `weight` variant (1000 dims) must be ignored."""
    rows = []
    for variant, h, n in (("input_x_weight", half, ninety), ("weight", [1000] * len(half), [1000] * len(half))):
        for layer, (a, b) in enumerate(zip(h, n)):
            rows += [{"model": model, "layer": layer, "variant": variant, "threshold": 50.0, "n_dims": a},
                     {"model": model, "layer": layer, "variant": variant, "threshold": 90.0, "n_dims": b}]
    return pd.DataFrame(rows)


def run_probes(summary: pd.DataFrame, dims: pd.DataFrame, first_model: str = "A") -> dict:
    return probe_macros(summary, dims, first_model=first_model, mask_k=4, n_texts=100, variant_n_texts=100,
                        max_tokens=30, permutations=2, seeds=5)


def test_probe_summary_states_the_planted_accuracies_and_gap_signs():
    """Planted: raw 80%, chance 10%, scalar control 14% (< chance + 5: near chance), transfer gap +20 points raw
    and -3 points without punctuation (the sign must survive)."""
    macros = run_probes(probe_summary("A", 0.1, PROBE_A), probe_dims("A", [4, 2, 9], [40, 10, 90]))
    assert str(macros["ProbeSummary"]) == (
        "For A the raw probe reaches 80.0\\% (chance 10.0\\%) and the post's setting 75.0\\%; masking the 4 "
        "dimensions chosen on the training split gives 70.0\\% and unit norm 85.0\\%. Scalar-matched random "
        "vectors are classified at 14.0\\% by the unit-norm probe (near chance: the post's claim holds) and at "
        "12.0\\% re-trained. With shuffled training labels the probe scores 11.0\\% on the true test labels. The "
        "transfer gap (IMDB-trained probe, IMDB minus AG News) is +20.0 points. Per-dimension-matched random vectors "
        "are classified at 60.0\\% by the raw probe and 65.0\\% re-trained; the transfer gap is +20.0 points raw "
        "and -3.0 points with punctuation stripped from both datasets.")
    # median over layers of the planted per-layer counts: median(4, 2, 9) = 4, median(40, 10, 90) = 40
    assert str(macros["ProbeDims"]) == ("In A the median layer needs 4 dimensions for 50\\% and 40 for 90\\% of the "
                                        "probe's $|w_j x_j|$ attribution (training split).")


def test_probe_summary_at_two_sizes_takes_each_gap_at_its_own_size():
    """Planted: the main transfer gap +20 points at N=100, the additions at N=50 with a raw gap of +8 points and -3
    points without punctuation; the punctuation comparison must use the N=50 raw gap and say N=50."""
    rows = probe_summary("A", 0.1, {**PROBE_A, "raw (N=50)": 0.7, "transfer gap (N=50)": 0.08})
    variant = ["raw (N=50)", "transfer gap (N=50)", "random_per_dimension_trained", "random_per_dimension_retrained",
               "transfer gap, no punctuation", "stability"]
    rows.loc[rows["condition"].isin(variant), "n_texts"] = 50
    macros = probe_macros(rows, probe_dims("A", [1], [2]), first_model="A", mask_k=4, n_texts=100,
                          variant_n_texts=50, max_tokens=30, permutations=2, seeds=5)
    text = str(macros["ProbeSummary"])
    assert "IMDB minus AG News) is +20.0 points." in text
    assert "the transfer gap (N=50) is +8.0 points raw and -3.0 points with punctuation" in text
    assert "Per-dimension-matched random vectors (N=50) are classified at 60.0" in text
    table = {line.split(" & ")[0]: line.split(" & ") for line in str(macros["ProbeTable"]).splitlines() if " & " in line}
    assert table["raw (N=50)"][2] == "50" and table["raw"][2] == "100" and table["stability"][2] == "50"
    assert table["raw (N=50)"][3] == table["raw"][3]  # the post's number: the same experiment at another N


@pytest.mark.parametrize("scalar, chance, verdict", [
    (0.14, 0.10, "near chance: the post's claim holds"),   # within 5 points
    (0.02, 0.10, "near chance: the post's claim holds"),   # below chance is not "above chance"
    (0.16, 0.10, "not near chance"),                       # 6 points above
    (0.30, 0.20, "not near chance"),
])
def test_probe_scalar_control_verdict(scalar, chance, verdict):
    """Planted: the scalar-matched control's accuracy against chance; the verdict follows the 5-point rule."""
    text = str(run_probes(probe_summary("A", chance, {**PROBE_A, "random_scalar_trained": scalar}),
                          probe_dims("A", [1], [2]))["ProbeSummary"])
    assert f"by the unit-norm probe ({verdict})" in text
    assert ("claim holds" in text) is verdict.startswith("near")


def test_probe_comparison_uses_the_first_model_and_states_the_differences():
    """Planted: first_model B is the table's second model: raw 50%, post setting 45%, masking +2 points, unit norm
    -10 points; the post's differences are 83.03 - 83.22 = -0.19 and 64 - 83.22 = -19.22 points."""
    b = {**PROBE_A, "raw": 0.5, "post_faithful": 0.45, "masked_at_test": 0.52, "normalised": 0.4}
    summary = pd.concat([probe_summary("A", 0.1, PROBE_A), probe_summary("B", 0.2, b)], ignore_index=True)
    macros = run_probes(summary, pd.concat([probe_dims("A", [4, 2, 9], [40, 10, 90]),
                                            probe_dims("B", [7, 7, 1], [8, 70, 9])]), first_model="B")
    assert str(macros["ProbeComparison"]).endswith(
        "Our run uses other models (N=100, L=30): for B the post's setting gives 45.0\\% and our default 50.0\\%; "
        "masking changes accuracy by +2.0 points (post: -0.2) and normalisation by -10.0 points (post: -19.2).")
    assert macros["ProbeRawAccuracyFirst"] == 0.5
    assert "In B the median layer needs 7 dimensions for 50\\% and 9 for 90\\%" in str(macros["ProbeDims"])
    rows = {line.split(" & ")[0]: line.split(" & ") for line in str(macros["ProbeTable"]).splitlines() if " & " in line}
    assert rows["condition"][4:] == ["A", "B \\\\"]                  # columns in the table's model order
    assert rows["raw"][4:] == ["80.0\\%", "50.0\\% \\\\"] and rows["raw"][2] == "100"  # N
    assert rows["masked at test"][3] == "83.0\\%"                     # the post's 83.03%
    assert rows["transfer gap, no punctuation"][4] == "-3.0 pp"
    assert rows["shuffled labels"][4] == "11.0\\% $\\pm$ 1.0"
    assert rows["train imdb+ag news, test ag news"][3] == "--"       # the post reports no mixed training
    assert "chance $1/(n+1)$ & & & & 10.0\\% & 20.0\\% \\\\" in str(macros["ProbeTable"]).splitlines()


def test_probe_without_transfer_rows_claims_no_gap():
    """Absent effect: no transfer gap rows, so the sentence names no gap."""
    summary = probe_summary("A", 0.1, {c: a for c, a in PROBE_A.items() if not c.startswith("transfer gap")})
    text = str(run_probes(summary, probe_dims("A", [1], [2]))["ProbeSummary"])
    assert "transfer gap" not in text and text.endswith("on the true test labels. Per-dimension-matched random "
                                                        "vectors are classified at 60.0\\% by the raw probe and "
                                                        "65.0\\% re-trained.")


def test_probe_dims_median_of_an_even_number_of_layers_is_not_truncated():
    """Planted: four layers need 1, 3, 4 and 10 dimensions for 50%: the median is 3.5, not 3; for 90% 35."""
    text = str(run_probes(probe_summary("A", 0.1, PROBE_A), probe_dims("A", [3, 4, 10, 1], [20, 30, 40, 50]))
               ["ProbeDims"])
    assert "the median layer needs 3.5 dimensions for 50\\% and 35 for 90\\%" in text
