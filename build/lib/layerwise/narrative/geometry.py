"""Study 3 per layer: where anisotropy and intrinsic dimension peak, in words and numbers."""

from __future__ import annotations

import pandas as pd

from layerwise.workflow.macros import LaTeX, latex_escape


def _depth(x: float) -> str:
    return f"{x:.2f}"


def dropped_sentence(table: pd.DataFrame) -> str:
    """Per model: how many copies TwoNN set aside to keep one copy of each vector, at layer 0 and at worst
    over the other layers, as a number and a fraction of the layer's vectors (anisotropy keeps them all);
    and how many rows the float32 shortlist could not certify (recomputed in float64)."""
    parts = []
    for model, rows in table.groupby("model", sort=False):
        merged_rows = rows[rows["metric"] == "n_merged"].assign(layer=lambda t: t["layer"].astype(int))
        merged = (merged_rows["mean"] * merged_rows["n_batches"]).round().astype(int)
        share = merged / merged_rows["n_vectors"]
        zero = merged_rows["layer"] == 0
        worst = share[~zero].idxmax()
        fallback = rows[rows["metric"] == "n_fallback"]
        refit = int((fallback["mean"] * fallback["n_batches"]).round().sum())
        total = int((fallback["n_vectors"]).sum())
        parts.append(
            f"in {latex_escape(model)} layer~0 (the embedding output) merges {int(merged[zero].iloc[0])} of "
            f"{int(merged_rows.loc[zero, 'n_vectors'].iloc[0])} vectors ({100 * float(share[zero].iloc[0]):.3g}\\%), "
            f"the other layers at most {int(merged[worst])} ({100 * float(share[worst]):.3g}\\%, layer "
            f"{int(merged_rows.loc[worst, 'layer'])}), and {refit} of its {total} layer-vectors needed the float64 "
            f"recomputation")
    return ("Exact duplicates ($r_1=0$) are merged: TwoNN sees one copy of each vector, as in the TwoNN "
            "literature, and anisotropy keeps every copy. Dropping every copy instead would leave each point whose "
            "nearest neighbour has a copy with $\\mu=1$ and inflate the estimate. Copies merged: "
            + "; ".join(parts) + ".")


def geometry_macros(table: pd.DataFrame, summary: pd.DataFrame, *, fraction: float, batch_size: int
                    ) -> dict[str, float | int | str]:
    """Numbers of study 3: where anisotropy and ID peak per model, and how decoders and encoders differ."""
    sentences = []
    for model, rows in summary.groupby("model", sort=False):
        an = rows[rows["metric"] == "anisotropy"].iloc[0]
        idim = rows[rows["metric"] == "twonn_id"].iloc[0]
        sentences.append(
            f"In {latex_escape(model)} ({an['kind']}, {an['n_layers']} layers) anisotropy peaks at layer "
            f"{an['peak_layer']} (relative depth {_depth(an['peak_relative_depth'])}) at {an['peak_value']:.3g}, "
            f"down to {an['min_value']:.3g} at layer {an['min_layer']}; the TwoNN intrinsic dimension peaks at "
            f"layer {idim['peak_layer']} (relative depth {_depth(idim['peak_relative_depth'])}) with "
            f"{idim['peak_value']:.3g} and is lowest at layer {idim['min_layer']} ({idim['min_value']:.3g}).")
    an = summary[summary["metric"] == "anisotropy"]
    by_kind = an.groupby("kind")["peak_value"].max()
    contrast = ""
    if {"decoder", "encoder"} <= set(by_kind.index):
        ratio = by_kind["decoder"] / by_kind["encoder"]
        depths = an.groupby("kind")["n_layers"].max()
        contrast = (f"The highest anisotropy reached by a decoder is {ratio:.3g} times that of the most "
                    f"anisotropic encoder layer, but this ratio does not isolate the decoder/encoder difference: "
                    f"the models also differ in depth ({int(depths['decoder'])} against {int(depths['encoder'])} "
                    f"layers), in architecture details such as where the layer norm sits, in training objective and "
                    f"data, and in the special tokens they keep; none of these is controlled here.")
    standardised = table[table["metric"] == "anisotropy_standardised"]
    for model, rows in standardised.groupby("model", sort=False):
        peak = rows.loc[rows["mean"].idxmax()]
        sentences.append(f"On z-scored dimensions (which removes the outlier dimensions' scale) the anisotropy "
                         f"of {latex_escape(model)} peaks at {peak['mean']:.3g} (layer {peak['layer']}).")
    n_vectors = int(table[table["metric"] == "anisotropy"]["n_vectors"].max())
    n_batches = int(table[table["metric"] == "anisotropy"]["n_batches"].max())
    return {
        "GeometrySummary": LaTeX(" ".join(sentences)),
        "GeometryContrast": LaTeX(contrast),
        "GeometryFraction": fraction,
        "GeometryBatchSize": batch_size,
        "GeometryVectors": n_vectors,
        "GeometryBatches": n_batches,
        "GeometryDropped": LaTeX(dropped_sentence(table)),
    }


# --------------------------------------------------------------------------- verdicts, batches, position 0

def _evidence(row: pd.Series, which: str) -> str:
    est, lo, hi = row[f"{which}_estimate"], row[f"{which}_low"], row[f"{which}_high"]
    return f"{est:.2f} [{lo:.2f}, {hi:.2f}]"


def bell_sentences(frame: pd.DataFrame, *, margin: float, interior: tuple[float, float]) -> str:
    """Per decoder and encoder: the bell score (median over batches, bootstrap interval) in the source's setting
    and in each of ours, with the verdict each implies; wording from the verdict frame's numbers."""
    out = [f"A profile is bell-shaped when its largest value between relative depths {interior[0]:g} and "
           f"{interior[1]:g} exceeds every value outside that band and both the rise from the first layer and the "
           f"fall to the last are at least {margin:g} of the peak; the bell score is the smaller of rise and fall "
           f"over the peak (negative, by the excess, when the peak lies outside the band)."]
    for _, row in frame[frame["key"].str.startswith(("bell_", "flat_"))].iterrows():
        if row["key"].endswith(("_no_outliers", "_zscored")):
            continue
        setting = row["key"]
        variants = frame[frame["key"].isin([f"{setting}_no_outliers", f"{setting}_zscored"])]
        holds = "passes" if row["faithful_low"] > margin else ("fails" if row["faithful_high"] < margin
                                                             else "is undecided on")
        shape = "a bell" if setting.startswith("bell_") else "no bell"
        name = latex_escape(str(row["claim"]).split(" (")[0])
        text = (f"{name} {holds} the bell rule with every token kept, as the source ran it (bell score "
                f"{_evidence(row, 'faithful')})")
        if not pd.isna(row["ours_estimate"]):
            text += f", and scores {_evidence(row, 'ours')} with position~0 excluded"
        for _, v in variants.iterrows():
            what = "without outlier tokens" if v["key"].endswith("_no_outliers") else "on z-scored dimensions"
            text += f", {_evidence(v, 'ours')} {what}"
        sentence = f"{text}: the source's claim of {shape} is \\emph{{{row['verdict']}}}"
        failing = [v for _, v in variants.iterrows() if v["verdict"] != row["verdict"]]
        if row["verdict"] == "reproduced" and failing:
            # the bell of the source's setting is not the bulk's: say which of our settings lose it
            lost = ", ".join("without outlier tokens" if v["key"].endswith("_no_outliers") else "on z-scored dimensions"
                             for v in failing)
            sentence += (f" as the source ran it, and \\emph{{differs in setting}} {lost}: the peak rests on a few "
                         f"tokens of extreme norm (position~0 among them), not on the typical token")
        out.append(sentence + ".")
    return " ".join(out)


def batch_sentence(batches: pd.DataFrame) -> str:
    """Per model (default setting): the layer whose batches disagree most on anisotropy, every batch's value
    there and the outlier tokens' share of sigma_1^2 in each batch."""
    out = []
    for model, rows in batches.groupby("model", sort=False):
        rows = rows[rows["position0"].astype(str).str.lower() == "false"] if (
            rows["position0"].astype(str).str.lower() == "false").any() else rows
        rows = rows.assign(layer=pd.to_numeric(rows["layer"], errors="coerce")).dropna(subset=["layer"])
        spread = rows.groupby("layer")["anisotropy"].agg(lambda v: v.max() - v.median())
        layer = spread.idxmax()
        at = rows[rows["layer"] == layer].sort_values("batch")
        values = ", ".join(f"{v:.3g}" for v in at["anisotropy"])
        text = (f"In {latex_escape(model)} the batches disagree most at layer {int(layer)}: its {len(at)} batches "
                f"give anisotropy {values} (median {at['anisotropy'].median():.3g})")
        if "outlier_sigma1_share" in at and at["outlier_sigma1_share"].notna().all():
            shares = ", ".join(f"{100 * v:.3g}\\%" for v in at["outlier_sigma1_share"])
            text += f"; the outlier tokens carry {shares} of each batch's $\\sigma_1^2$"
        out.append(text + ".")
    return (" ".join(out) + " A mean over such batches describes none of them, so the figures draw every batch "
            "and the verdicts use the median over batches.") if out else ""


def position0_sentence(position0: dict[str, pd.DataFrame], batches: pd.DataFrame) -> str:
    """Position 0 as the data say: special token or content token (store manifest), how many of its vectors are
    outliers, and anisotropy with it kept (the source's setting) against without it at the default peak."""
    out = []
    for model, p0 in position0.items():
        special = bool(p0["position0_is_special"].iloc[0])
        worst = p0.loc[p0["n_outliers"].idxmax()]
        what = ("a special token ([CLS] or BOS) in every text" if special else
                "a content token (the chunks start mid-text; no special token is prepended)")
        text = (f"In {latex_escape(model)} position~0 is {what}; at layer {int(worst['layer'])}, "
                f"{int(worst['n_outliers'])} of its {int(worst['n_position0'])} vectors are outliers "
                f"(median norm {worst['median_norm_ratio']:.3g}$\\times$ the layer's median)")
        rows = batches[batches["model"] == model].assign(layer=lambda t: pd.to_numeric(t["layer"], errors="coerce"))
        flag = rows["position0"].astype(str).str.lower() == "true"
        if flag.any() and (~flag).any():
            kept = rows[flag].groupby("layer")["anisotropy"].median()
            dropped = rows[~flag].groupby("layer")["anisotropy"].median()
            layer = dropped.idxmax()
            text += (f"; keeping it, as the source did, gives a median anisotropy of {kept[layer]:.3g} at layer "
                     f"{int(layer)} (against {dropped[layer]:.3g} without it) and {kept.max():.3g} at most "
                     f"(layer {int(kept.idxmax())})")
        out.append(text + ".")
    return " ".join(out)


def sweep_sentence(sweep: pd.DataFrame, *, margin: float) -> str:
    """Per decoder: the bell score with the outliers of each threshold k removed, and with the m largest-norm
    tokens removed; how many of these settings pass the rule (interval wholly above the margin)."""
    out = []
    for model, rows in sweep.groupby("model", sort=False):
        def part(prefix: str, label: str) -> str:
            chosen = rows[rows["removal"].str.startswith(prefix)]
            return ", ".join(f"{label}={r['removal'][len(prefix):]}: {r['estimate']:.2f} [{r['low']:.2f}, "
                             f"{r['high']:.2f}]" for _, r in chosen.iterrows())
        passes = int((rows["low"] > margin).sum())
        fails = int((rows["high"] < margin).sum())
        out.append(f"The bell score of {latex_escape(model)} with the outlier tokens removed at each threshold is "
                   f"{part('k', '$k$')}; without the $m$ tokens of largest norm, {part('top', '$m$')}. The rule "
                   f"passes in {passes}, fails in {fails} and is undecided in {len(rows) - passes - fails} of these "
                   f"{len(rows)} settings.")
    return " ".join(out)


def contrast_sentence(frame: pd.DataFrame, training: pd.DataFrame | None) -> str:
    """The decoder-over-encoder row in words: the pretrained pair's difference (confounded) and the trained pair's
    last-checkpoint peaks, with whether the trained pair shows a contrast (its interval clear of 0) or not."""
    rows = frame[frame["key"] == "decoder_over_encoder"]
    if rows.empty:
        return ""
    row = rows.iloc[0]
    text = (f"The pretrained decoder's peak anisotropy exceeds the encoder's by {_evidence(row, 'faithful')} "
            f"(median over batches [interval])")
    if pd.isna(row["ours_estimate"]) or training is None:
        return text + "; no trained pair was run to separate mask and objective from everything else."
    last = training[training["step"] == training["step"].max()]
    last = last.assign(layer=pd.to_numeric(last["layer"], errors="coerce")).dropna(subset=["layer"])
    unit = ["seed", "batch"] if "seed" in last else ["batch"]
    peak = last.groupby(["kind", *unit])["anisotropy"].max().groupby("kind").median()
    n_seeds = last["seed"].nunique() if "seed" in last else 1
    runs = (f"{n_seeds} seeds each, the interval over seeds" if n_seeds > 1 else "one seed each")
    if row["ours_low"] > 0:
        verdict = "the decoder is the more anisotropic, as the source's contrast says"
    elif row["ours_high"] < 0:
        verdict = "the encoder is the more anisotropic, against the source's contrast"
    else:
        verdict = "no contrast: the interval of the difference contains 0"
    return (text + f". The trained pair, the same network with only mask and objective changed, ends at "
            f"{peak.get('decoder', float('nan')):.3g} (decoder) against {peak.get('encoder', float('nan')):.3g} "
            f"(encoder), a difference of {_evidence(row, 'ours')}: {verdict}. This pair is {runs}, compared at "
            f"equal steps: equal loss is not defined across the two objectives (next byte against masked bytes "
            f"seen from both sides), so matched steps, data and compute are the matched quantity.")


def verdict_macros(frame: pd.DataFrame, batches: pd.DataFrame, position0: dict[str, pd.DataFrame], *,
                   margin: float, interior: tuple[float, float], sweep: pd.DataFrame | None = None,
                   training: pd.DataFrame | None = None) -> dict[str, str]:
    """The verdict table and the sentences that go with it."""
    from layerwise.verdicts import verdict_counts, verdict_table_latex

    counts = verdict_counts(frame)
    table = verdict_table_latex(
        frame, "Study 3: the source's claims \\citep{razzhigaev2024shape} and our verdicts. Bell score: the smaller "
        "of the rise and the fall of the anisotropy profile over its peak (negative when the peak lies outside "
        "the middle band); median over batches [95\\% bootstrap interval]. Generated by rule "
        "\\texttt{geometry\\_verdicts} from the per-batch tables.", "tab:geometry-verdicts")
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return {"GeometryVerdictTable": LaTeX(table),
            "GeometryVerdictCounts": LaTeX(f"Of the source's {len(frame)} claims tested here: {summary}."),
            "GeometryBell": LaTeX(bell_sentences(frame, margin=margin, interior=interior)),
            "GeometryBatchSpread": LaTeX(batch_sentence(batches)),
            "GeometryPositionZero": LaTeX(position0_sentence(position0, batches)),
            "GeometrySweep": LaTeX(sweep_sentence(sweep, margin=margin) if sweep is not None else ""),
            "GeometryPairContrast": LaTeX(contrast_sentence(frame, training))}
