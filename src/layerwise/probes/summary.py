"""All of study 1's accuracies for one model in one tidy table: condition, accuracy, std, chance."""

from __future__ import annotations

import pandas as pd

# The post's numbers, cited (Huang et al. 2024, "Exploring the Evolution and Migration of Different Layer
# Embedding in LLMs"): gpt2-medium, L=30, N=1000; "larger" is its GPT-2 XL remark ("about 60%").
PUBLISHED = {"raw": 0.8322, "masked_at_test": 0.8303, "transfer": 0.66, "normalised": 0.64, "raw_gpt2_xl": 0.60}
PUBLISHED_SOURCE = "Huang et al. (2024), gpt2-medium, L=30, N=1000"


def _transfer_rows(transfer: pd.DataFrame, suffix: str) -> list[dict]:
    """Train A test B, train A+B test B, and the gap: the A-trained probe's accuracy on A minus on B."""
    accuracy = transfer.set_index(["train", "test"])["accuracy"]
    a = next(t for t in transfer["train"] if "+" not in str(t))
    b = next(t for t in transfer["test"] if t != a)
    mix = f"{a}+{b}"
    return [{"condition": f"train {a}, test {b}{suffix}", "accuracy": float(accuracy[(a, b)])},
            {"condition": f"train {mix}, test {b}{suffix}", "accuracy": float(accuracy[(mix, b)])},
            {"condition": f"transfer gap{suffix}", "accuracy": float(accuracy[(a, a)] - accuracy[(a, b)])}]


def condition_table(*, raw: pd.DataFrame, conditions: list[pd.DataFrame], masks: pd.DataFrame,
                    nopunct: pd.DataFrame, transfer: pd.DataFrame, transfer_nopunct: pd.DataFrame,
                    stability: pd.DataFrame) -> pd.DataFrame:
    """Rows: raw, every condition row (several rows of one condition, e.g. label permutations, give its mean
    and std), masks (at test / re-trained), punctuation removed, transfer raw and with punctuation stripped
    on both sides (the gap is a difference of accuracies), seed stability."""
    chance = float(raw["chance"].iloc[0])
    rows = [{"condition": "raw", "accuracy": float(raw["accuracy"].iloc[0])}]
    for table in conditions:
        for name, group in table.groupby("condition", sort=False):
            row = {"condition": name, "accuracy": float(group["accuracy"].mean())}
            if len(group) > 1:
                row["std"] = float(group["accuracy"].std(ddof=1))
            rows.append(row)
    for name in ("masked_at_test", "masked_retrained"):
        rows.append({"condition": name, "accuracy": float(masks.loc[masks["condition"] == name, "accuracy"].iloc[0])})
    rows.append({"condition": "no_punctuation", "accuracy": float(nopunct["accuracy"].iloc[0])})
    rows += _transfer_rows(transfer, "")
    rows += _transfer_rows(transfer_nopunct, ", no punctuation")
    rows.append({"condition": "stability", "accuracy": float(stability["accuracy"].mean()),
                 "std": float(stability["accuracy"].std(ddof=1))})
    return pd.DataFrame(rows).assign(chance=chance)
