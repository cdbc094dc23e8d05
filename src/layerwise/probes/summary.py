"""All of study 1's accuracies for one model in one tidy table: condition, accuracy, std, chance."""

from __future__ import annotations

import re

import pandas as pd

# The post's numbers, cited (Huang et al. 2024, "Exploring the Evolution and Migration of Different Layer
# Embedding in LLMs"): gpt2-medium, L=30, N=1000; "larger" is its GPT-2 XL remark ("about 60%").
PUBLISHED = {"raw": 0.8322, "masked_at_test": 0.8303, "transfer": 0.66, "normalised": 0.64, "raw_gpt2_xl": 0.60}
PUBLISHED_SOURCE = "Huang et al. (2024), gpt2-medium, L=30, N=1000"


def _transfer_rows(transfer: pd.DataFrame, suffix: str) -> list[dict]:
    """Train A test B, train A+B test B (when that probe was fitted), and the gap: the A-trained probe's
    accuracy on A minus on B."""
    accuracy = transfer.set_index(["train", "test"])["accuracy"]
    a = next(t for t in transfer["train"] if "+" not in str(t))
    b = next(t for t in transfer["test"] if t != a)
    mix = f"{a}+{b}"
    conv = (transfer.groupby("train")["converged"].apply(fit_converged) if "converged" in transfer
            else pd.Series(dtype=object))
    rows = [{"condition": f"train {a}, test {b}{suffix}", "accuracy": float(accuracy[(a, b)]),
             "converged": conv.get(a, pd.NA)}]
    if (mix, b) in accuracy.index:
        rows.append({"condition": f"train {mix}, test {b}{suffix}", "accuracy": float(accuracy[(mix, b)]),
                     "converged": conv.get(mix, pd.NA)})
    return rows + [{"condition": f"transfer gap{suffix}", "accuracy": float(accuracy[(a, a)] - accuracy[(a, b)])}]


SIZE_SUFFIX = re.compile(r" \(N=\d+\)$")  # the end of a row name repeated at another N: "raw (N=300)"


def variant_suffix(n_texts: int, variant_n_texts: int) -> str:
    """Appended to the names of main-setting rows repeated at the additions' size (none when the sizes agree)."""
    return "" if variant_n_texts == n_texts else f" (N={variant_n_texts})"


def fit_converged(flags: pd.Series) -> object:
    """True when every iterative fit behind a row converged, False when one stopped at its cap, NA when no
    fit is iterative (a tree) or the flags are missing."""
    known = [str(f).lower() == "true" for f in flags if not pd.isna(f)]
    return pd.NA if not known else all(known)


def _condition_rows(tables: list[pd.DataFrame]) -> list[dict]:
    """One row per condition; several rows of one condition (e.g. label permutations) give mean and std."""
    rows = []
    for table in tables:
        for name, group in table.groupby("condition", sort=False):
            row = {"condition": name, "accuracy": float(group["accuracy"].mean())}
            if "converged" in group:
                row["converged"] = fit_converged(group["converged"])
            if len(group) > 1:
                row["std"] = float(group["accuracy"].std(ddof=1))
            rows.append(row)
    return rows


def condition_table(*, raw: pd.DataFrame, conditions: list[pd.DataFrame], masks: pd.DataFrame,
                    transfer: pd.DataFrame, variant_raw: pd.DataFrame, variant_masks: pd.DataFrame,
                    variant_conditions: list[pd.DataFrame], nopunct: pd.DataFrame, variant_transfer: pd.DataFrame,
                    transfer_nopunct: pd.DataFrame, stability: pd.DataFrame, n_texts: int,
                    variant_n_texts: int) -> pd.DataFrame:
    """Rows, each with the N it was run at: at `n_texts` the raw probe, the post's conditions, the mask at test
    (the post's masking) and the transfer; at `variant_n_texts` the raw probe and transfer again (their names
    suffixed when the sizes differ), the probe re-trained without the masked dims (`variant_masks`: an
    addition), the additions' conditions, punctuation removed, the transfer with punctuation stripped on both
    sides (a gap is a difference of accuracies) and seed stability."""
    chance = float(raw["chance"].iloc[0])
    raw_converged = fit_converged(raw["converged"]) if "converged" in raw else pd.NA
    main = [{"condition": "raw", "accuracy": float(raw["accuracy"].iloc[0]), "converged": raw_converged},
            *_condition_rows(conditions)]
    # at test: the raw probe itself
    main.append({"condition": "masked_at_test", "converged": raw_converged,
                 "accuracy": float(masks.loc[masks["condition"] == "masked_at_test", "accuracy"].iloc[0])})
    main += _transfer_rows(transfer, "")
    suffix = variant_suffix(n_texts, variant_n_texts)
    variant = []
    if suffix:
        variant.append({"condition": f"raw{suffix}", "accuracy": float(variant_raw["accuracy"].iloc[0]),
                        "converged": fit_converged(variant_raw["converged"]) if "converged" in variant_raw
                        else pd.NA})
    # re-trained: a warm-started fit whose convergence masks.csv does not keep
    variant.append({"condition": "masked_retrained", "converged": pd.NA, "accuracy": float(
        variant_masks.loc[variant_masks["condition"] == "masked_retrained", "accuracy"].iloc[0])})
    if suffix:
        variant += _transfer_rows(variant_transfer, suffix)
    variant += _condition_rows(variant_conditions)
    variant.append({"condition": "no_punctuation", "accuracy": float(nopunct["accuracy"].iloc[0]),
                    "converged": fit_converged(nopunct["converged"]) if "converged" in nopunct else pd.NA})
    variant += _transfer_rows(transfer_nopunct, ", no punctuation")
    variant.append({"condition": "stability", "accuracy": float(stability["accuracy"].mean()),
                    "std": float(stability["accuracy"].std(ddof=1))})
    return pd.concat([pd.DataFrame(main).assign(n_texts=n_texts), pd.DataFrame(variant).assign(n_texts=variant_n_texts)],
                     ignore_index=True).assign(chance=chance)


def label_sizes(table: pd.DataFrame, n_texts: int) -> pd.DataFrame:
    """`table` with " (N=...)" appended to the condition of every row run at another N than `n_texts` (for a
    figure that puts both sizes on one axis), unless its name already says it."""
    other = (table["n_texts"] != n_texts) & ~table["condition"].str.contains(SIZE_SUFFIX)
    return table.assign(condition=table["condition"].where(
        ~other, table["condition"] + " (N=" + table["n_texts"].astype(str) + ")"))
