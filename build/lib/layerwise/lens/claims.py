"""Study 2's claims (nostalgebraist 2020, "interpreting GPT: the logit lens"), each made testable: lens tables in,
a list of `layerwise.verdicts.Claim` out, so the verdict of every claim is computed from our numbers.

Two tables feed the claims: the dataset lens table of the post's decoder (`full`: final norm with gain and bias,
then the unembedding, as the post's own code decodes) from `logit_lens_sequences`, and the lens table of the
post's "plasma" text from `logit_lens_texts` (token strings included). Layers are addressed by depth (0 = input,
block i's output at depth i, sub-block readings at half depths), so the claims read the same numbers whether or
not the sub-block lens was on. The dataset statistics are token-weighted means over all positions used, with
percentile intervals from a bootstrap over texts (the sampling unit, as in `lens.stats`); the example claims
are points from one text, printed with the range over the layers they summarise.

Every bound below is our reading of the post's words, stated next to it in `text`; the section says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from layerwise.lens.labels import FINAL
from layerwise.lens.stats import _multiplicities, token_metrics
from layerwise.verdicts import Claim, Evidence, Test

MID_AGREEMENT = 0.5     # "a pretty good guess": the layer's top-1 is the final top-1 for most tokens
LONG_BEFORE_END = 0.75  # "long before the end": by three quarters of the depth
FAR_SMALLER = 0.5       # "far smaller": the KL(input||.) jump under half the KL(final||.) drop
KL_CAP = 30.0           # "KL = 30 does not appear" on KL(input||layer)
INPUT_RANKS = (100.0, 10_000.0)  # "in the 100s or 1000s, but not the 10000s"
LATE = 0.75             # "only figures it out in the very last layers": not before 3/4 of the depth
PRESERVED_RANK = 1000.0  # "strikingly preserved": within the post's input-rank colour scale (rank <= 1000)
COPY_TEXT, COPY_WORD = "plasma", "plasma"


def n_blocks(table: pd.DataFrame) -> int:
    """The number of blocks: the deepest integer depth of a block output (the model's own output excluded)."""
    depths = table.loc[table["layer"] != FINAL, "depth"].astype(float)
    whole = depths[np.isclose(depths, np.round(depths))]
    if whole.empty or whole.max() < 1:
        raise ValueError("lens table has no block outputs")
    return int(round(whole.max()))


def per_text(table: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(block depths 0..n, sums [layers, texts], counts [layers, texts]) of one `token_metrics` metric at the
    input and every block output (sub-block readings left out)."""
    rows = table[(table["layer"] != FINAL)]
    depth = rows["depth"].astype(float)
    rows = rows[np.isclose(depth, np.round(depth))]
    values = token_metrics(rows)[metric]
    frame = pd.DataFrame({"depth": rows["depth"].astype(float).round().astype(int), "text": rows["text"].to_numpy(),
                          "v": values.to_numpy()})
    grouped = frame.groupby(["depth", "text"])["v"]
    sums = grouped.sum().unstack(fill_value=0.0).sort_index()
    counts = grouped.count().unstack(fill_value=0).reindex_like(sums).fillna(0)
    return sums.index.to_numpy(), sums.to_numpy(dtype=float), counts.to_numpy(dtype=float)


def bootstrap(statistic: Callable[[Callable[[str], np.ndarray]], float], table: pd.DataFrame, *,
              n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> Evidence:
    """`statistic(mean)` where `mean(metric)` gives that metric's token-weighted mean per block depth (0..n):
    its value on the data and a percentile interval over bootstrap resamples of the texts (one seeded draw of
    text multiplicities shared by all metrics, so paired differences are paired)."""
    cache = {}
    texts = pd.unique(table["text"])

    def arrays(metric):
        if metric not in cache:
            cache[metric] = per_text(table, metric)
        return cache[metric]

    def mean_with(weights):
        def mean(metric):
            _, s, c = arrays(metric)
            with np.errstate(invalid="ignore", divide="ignore"):
                return (s @ weights) / (c @ weights)
        return mean

    estimate = float(statistic(mean_with(np.ones(len(texts)))))
    if len(texts) < 2:
        return Evidence(estimate)
    weights = _multiplicities(len(texts), n_boot, seed)
    boot = np.array([statistic(mean_with(w)) for w in weights], dtype=float)
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(boot, [tail, 100 - tail])
    return Evidence(estimate, min(float(low), estimate), max(float(high), estimate))


def first_depth_above(curve: np.ndarray, threshold: float) -> float:
    """Relative depth (layer / n) of the first block output (layers 1..n) whose value exceeds `threshold`;
    1.0 + 1/n (past the end) when none does."""
    n = len(curve) - 1
    above = np.nonzero(curve[1:] > threshold)[0]
    return float(above[0] + 1) / n if len(above) else (n + 1) / n


def copy_positions(example: pd.DataFrame, word: str = COPY_WORD) -> tuple[int, int]:
    """(position of the word's first instance, position whose next token is its last instance) in an example
    table with token strings."""
    tokens = example.drop_duplicates("position").set_index("position").sort_index()["input_token"]
    hits = [p for p, t in tokens.items() if isinstance(t, str) and t.strip().lower() == word]
    if len(hits) < 2:
        raise ValueError(f"the example has {len(hits)} instance(s) of {word!r}; the copy claims need two")
    return int(hits[0]), int(hits[-1] - 1)


def resolved_depth(example: pd.DataFrame, position: int) -> float:
    """Relative depth from which the layer's top-1 at `position` equals the model's final top-1 at every later
    block (1 + 1/n if not even the last block agrees)."""
    rows = example[(example["position"] == position) & (example["layer"] != FINAL)]
    rows = rows[np.isclose(rows["depth"].astype(float), np.round(rows["depth"].astype(float)))]
    rows = rows.sort_values("depth")
    agree = (rows["top1_id"] == rows["final_top1_id"]).to_numpy()
    n = int(round(rows["depth"].max()))
    if not agree[-1]:
        return (n + 1) / n
    last_miss = np.nonzero(~agree)[0]
    first = int(last_miss[-1]) + 1 if len(last_miss) else 0
    return float(rows["depth"].iloc[first]) / n


def lens_claims(dataset: pd.DataFrame, example: pd.DataFrame, *, data_setting: str, n_boot: int = 2000,
                seed: int = 0) -> list[Claim]:
    """The post's claims, tested on the `full`-decoder lens of a dataset sample (`dataset`) and of the plasma
    text (`example`). `data_setting` says in words what data the dataset numbers come from."""
    n = n_blocks(dataset)
    mid = n // 2
    boot = dict(table=dataset, n_boot=n_boot, seed=seed)

    agreement_mid = bootstrap(lambda m: m("agreement")[mid], **boot)
    converged = bootstrap(lambda m: first_depth_above(m("agreement"), MID_AGREEMENT), **boot)
    drop = bootstrap(lambda m: m("kl_final")[1] - m("kl_final")[0], **boot)
    smooth = bootstrap(lambda m: m("kl_final")[mid] - m("kl_final")[1], **boot)
    ratio = bootstrap(lambda m: (m("kl_input")[1] - m("kl_input")[0]) / abs(m("kl_final")[1] - m("kl_final")[0]),
                      **boot)
    kl_input_peak = bootstrap(lambda m: float(np.max(m("kl_input")[1:])), **boot)
    # geometric-mean input-token rank over blocks 1..n-1 (the last block predicts, it need not keep the input)
    input_rank = bootstrap(lambda m: 10 ** float(np.mean(m("log10_input_rank")[1:n])), **boot)

    n_ex = n_blocks(example)
    try:
        first, copy_at = copy_positions(example)
    except ValueError:  # the text was cut before the copy (a small example_max_tokens): nothing to test
        late_ev, kept_ev, copied = Evidence(math.nan), Evidence(math.nan), False
    else:
        late_ev = Evidence(resolved_depth(example, copy_at))
        first_rows = example[(example["position"] == first) & (example["layer"] != FINAL)]
        first_rows = first_rows[np.isclose(first_rows["depth"].astype(float),
                                           np.round(first_rows["depth"].astype(float)))]
        kept = first_rows[(first_rows["depth"] >= 1) & (first_rows["depth"] <= n_ex - 3)]["input_token_rank"]
        kept = kept.astype(float)
        geo = float(np.clip(10 ** np.mean(np.log10(kept)), kept.min(), kept.max()))  # rounding may step outside
        kept_ev = Evidence(geo, float(kept.min()), float(kept.max()))
        copy_row = example[(example["position"] == copy_at) & (example["layer"] == FINAL)].iloc[0]
        copied = bool(copy_row["final_top1_id"] == copy_row["next_token_id"])

    model = "post: GPT-2 XL (48 blocks), hand-picked passages"
    return [
        Claim("good-guess-mid", f"A pretty good guess by mid-depth: top-1 = final top-1 for > {MID_AGREEMENT:.0%} "
              f"of tokens at layer {mid} of {n}", "shown in heatmaps, no number",
              Test("above", MID_AGREEMENT), agreement_mid, setting=f"{model}; ours: {data_setting}"),
        Claim("converges-early", "Converges long before the end: agreement first exceeds 50% before "
              f"{LONG_BEFORE_END:.0%} of the depth (relative depth of that layer; above 1: never)", "shown in heatmaps",
              Test("below", LONG_BEFORE_END), converged, setting=f"{model}; ours: {data_setting}"),
        Claim("input-drop", "One big drop after the input: KL(final||layer) falls from the input to layer 1 "
              "(change, nats)", "one discontinuous jump", Test("below", 0.0, unit="nats"), drop,
              setting=data_setting),
        Claim("smooth-after", f"Then a smooth path to the output: KL(final||layer) falls from layer 1 to layer {mid} "
              "(change, nats)", "progresses smoothly", Test("below", 0.0, unit="nats"), smooth,
              setting=data_setting),
        Claim("input-jump-smaller", "KL(input||layer) jumps far less than KL(final||layer) drops: ratio of the "
              f"two changes from input to layer 1 below {FAR_SMALLER}", "far smaller",
              Test("below", FAR_SMALLER), ratio, setting=data_setting),
        Claim("kl30-absent", "KL(input||layer) = 30 nats does not appear: largest layer mean over layers "
              f"1..{n}", "< 30 on its plot", Test("below", KL_CAP, unit="nats"), kl_input_peak,
              setting=data_setting),
        Claim("input-ranks", f"Input tokens keep ranks in the 100s-1000s: geometric-mean rank at layers 1..{n - 1}",
              "100s or 1000s, not 10000s", Test("between", INPUT_RANKS), input_rank, setting=data_setting),
        Claim("plasma-late", f"The copied '{COPY_WORD}' is found only in the last layers: relative depth from which "
              f"the top-1 stays the final top-1 ({'a correct' if copied else 'an incorrect'} copy here)",
              "very last layers", Test("above", LATE), late_ev,
              setting="the post's plasma text, one position"),
        Claim("plasma-preserved", f"The first '{COPY_WORD}' is strikingly preserved: its input rank at layers "
              f"1..{n_ex - 3} (geometric mean [min, max])", "rank low (dark at cap 1000)",
              Test("below", PRESERVED_RANK), kept_ev, setting="the post's plasma text, one position"),
    ]


def claim_units() -> dict[str, str]:
    """Units printed after the numbers in the verdict table, by claim key."""
    return {"input-drop": "nats", "smooth-after": "nats", "kl30-absent": "nats"}
