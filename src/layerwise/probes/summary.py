"""All of study 1's accuracies for one model in one tidy table: condition, accuracy, std, chance."""

from __future__ import annotations

import pandas as pd

# The post's numbers for gpt2-medium, L=30, N=1000 (Huang et al. 2024), for the comparison in the paper.
PUBLISHED = {"raw": 0.832, "masked_at_test": 0.830, "transfer": 0.66, "normalised": 0.64}


def condition_table(*, raw: pd.DataFrame, conditions: list[pd.DataFrame], masks: pd.DataFrame,
                    random: pd.DataFrame, nopunct: pd.DataFrame, transfer: pd.DataFrame,
                    stability: pd.DataFrame) -> pd.DataFrame:
    """Rows: raw, each re-trained condition, masks (at test / re-trained), random vectors through the
    trained probe, punctuation removed, transfer (train A → test B, mix → each), seed stability."""
    chance = float(raw["chance"].iloc[0])
    rows = [{"condition": "raw", "accuracy": float(raw["accuracy"].iloc[0])}]
    rows += [{"condition": c["condition"].iloc[0], "accuracy": float(c["accuracy"].iloc[0])} for c in conditions]
    for name in ("masked_at_test", "masked_retrained"):
        rows.append({"condition": name, "accuracy": float(masks.loc[masks["condition"] == name, "accuracy"].iloc[0])})
    rows.append({"condition": "random_through_trained", "accuracy": float(random["accuracy"].iloc[0])})
    rows.append({"condition": "no_punctuation", "accuracy": float(nopunct["accuracy"].iloc[0])})
    for _, row in transfer.iterrows():
        if row["train"] != row["test"]:
            rows.append({"condition": f"train {row['train']}, test {row['test']}", "accuracy": float(row["accuracy"])})
    rows.append({"condition": "stability", "accuracy": float(stability["accuracy"].mean()),
                 "std": float(stability["accuracy"].std(ddof=1))})
    return pd.DataFrame(rows).assign(chance=chance)
