"""Study 3's source claims (Razzhigaev et al. 2024) as testable claims: tidy per-batch tables in, Claims out.

Four claims of the source, each made a rule on a number with an interval over batches (the source reports a
mean over batches; one batch can carry a layer, so the interval is the honest unit):

- decoders: a bell-shaped anisotropy profile (:mod:`layerwise.geometry.shape`: rise from the input to an
  interior peak, then a fall, each at least ``margin`` of the peak). In the source's setting (every token kept,
  position 0 included, as the source excluded nothing) and in ours: position 0 excluded, outlier tokens
  removed, z-scored dimensions;
- encoders: no bell (the source's "uniformly distributed" profile): the bell score below ``margin``;
- over training (our own decoder's checkpoints): anisotropy grows (largest per-layer anisotropy at the last
  checkpoint minus at step 0 above 0) and the layer-averaged intrinsic dimension rises then falls (the same
  bell rule over checkpoints in order: an interior peak, rise and fall each at least ``margin`` of it).

Each per-batch statistic is summarised by its median over batches and a seeded percentile-bootstrap interval
of that median (:func:`layerwise.verdicts.bootstrap_interval`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from layerwise.geometry.shape import DEFAULT_INTERIOR, DEFAULT_MARGIN, batch_bell_scores, bell_score
from layerwise.verdicts import Claim, Evidence, Test, bootstrap_interval

# The variants of a decoder's bell claim: metric of the per-batch table, what our setting changes.
BELL_VARIANTS = (
    ("", "anisotropy", "position 0 excluded"),
    ("_no_outliers", "anisotropy_without_outliers", "position 0 and outlier tokens excluded"),
    ("_zscored", "anisotropy_standardised", "position 0 excluded, dimensions z-scored"),
)


def slug(name: str) -> str:
    """A claim key from a model's (display) name: lower case, runs of other characters as one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")


def median_interval(values: Sequence[float], seed: int) -> Evidence:
    """Median over batches (or seeds) and the bootstrap interval of that median; NaN when there is none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Evidence(float("nan"))
    return bootstrap_interval(values, statistic=np.median, seed=seed)


def _bell_evidence(rows: pd.DataFrame | None, metric: str, n_layers: int, interior, seed: int) -> Evidence | None:
    if rows is None or rows.empty or metric not in rows or rows[metric].isna().all():
        return None
    depth = pd.to_numeric(rows["layer"], errors="coerce").dropna() / n_layers
    inside = (depth >= interior[0]) & (depth <= interior[1])
    if not inside.any() or inside.all():  # too few layers for the rule (a 1-layer model): no number
        return Evidence(float("nan"))
    scores = batch_bell_scores(rows, metric, n_layers, interior)
    return median_interval(scores["score"], seed)


def _settings(rows: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(source's setting: position 0 kept; ours: position 0 excluded), either None when not run."""
    if "position0" not in rows:
        return None, rows
    flag = rows["position0"].astype(str).str.lower() == "true"
    faithful = rows[flag] if flag.any() else None
    ours = rows[~flag] if (~flag).any() else None
    return faithful, ours


def layer_claims(batches: pd.DataFrame, *, interior: Sequence[float] = DEFAULT_INTERIOR,
                 margin: float = DEFAULT_MARGIN, seed: int = 0) -> list[Claim]:
    """The bell (decoders) and no-bell (encoders) claims of every model of a per-batch table (columns model,
    kind, n_layers, position0, layer, batch and the metrics of :func:`layerwise.geometry.layers.layer_batches`)."""
    claims = []
    test = Test("above", margin)
    for model, rows in batches.groupby("model", sort=False):
        kind, n_layers = str(rows["kind"].iloc[0]), int(rows["n_layers"].iloc[0])
        faithful_rows, our_rows = _settings(rows)
        faithful = _bell_evidence(faithful_rows, "anisotropy", n_layers, interior, seed)
        if kind == "decoder":
            for suffix, metric, setting in BELL_VARIANTS:
                ours = _bell_evidence(our_rows, metric, n_layers, interior, seed)
                if ours is None and suffix:
                    continue
                claims.append(Claim(
                    key=f"bell_{slug(model)}{suffix}",
                    text=f"{model} (decoder): anisotropy profile is bell-shaped (bell score)",
                    source="bell, peak in the middle layers (Fig. 1)", test=test, faithful=faithful, ours=ours,
                    setting=setting))
        elif kind == "encoder":
            ours = _bell_evidence(our_rows, "anisotropy", n_layers, interior, seed)
            claims.append(Claim(
                key=f"flat_{slug(model)}", text=f"{model} (encoder): no bell, anisotropy uniform over layers (bell score)",
                source="uniform, no bell (Fig. 1)", test=Test("below", margin), faithful=faithful, ours=ours,
                setting="position 0 excluded"))
    return claims


def _steps_profile(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    """(batch x step) table of one per-checkpoint value, steps in order."""
    return rows.pivot_table(index="batch", columns="step", values=value, aggfunc="first").sort_index(axis=1)


def anisotropy_growth(training: pd.DataFrame, kind: str = "decoder") -> np.ndarray:
    """Per batch: the largest per-layer anisotropy at the last checkpoint minus at the first (step 0)."""
    rows = training[training["kind"] == kind].assign(layer=lambda t: pd.to_numeric(t["layer"], errors="coerce"))
    rows = rows.dropna(subset=["layer"])
    peak = rows.groupby(["batch", "step"], as_index=False)["anisotropy"].max()
    table = _steps_profile(peak, "anisotropy")
    return (table.iloc[:, -1] - table.iloc[:, 0]).to_numpy()


def anisotropy_drop_from_peak(training: pd.DataFrame, kind: str = "decoder") -> np.ndarray:
    """Per batch: how far the largest per-layer anisotropy at the last checkpoint lies below its highest value over
    all checkpoints, as a share of that highest value (0 when training ends at its peak)."""
    rows = training[training["kind"] == kind].assign(layer=lambda t: pd.to_numeric(t["layer"], errors="coerce"))
    rows = rows.dropna(subset=["layer"])
    table = _steps_profile(rows.groupby(["batch", "step"], as_index=False)["anisotropy"].max(), "anisotropy")
    peak = table.max(axis=1)
    return ((peak - table.iloc[:, -1]) / peak).to_numpy()


def final_peak_contrast(batches: pd.DataFrame) -> np.ndarray:
    """Per batch index: the decoder's largest per-layer anisotropy minus the encoder's (the first model of each
    kind; batches matched by index). ``batches``: per-batch rows with kind, layer, batch, anisotropy."""
    rows = batches.assign(layer=pd.to_numeric(batches["layer"], errors="coerce")).dropna(subset=["layer"])
    peaks = {}
    for kind in ("decoder", "encoder"):
        chosen = rows[rows["kind"] == kind]
        if "model" in chosen and not chosen.empty:
            chosen = chosen[chosen["model"] == chosen["model"].iloc[0]]
        peaks[kind] = chosen.groupby("batch")["anisotropy"].max()
    common = peaks["decoder"].index.intersection(peaks["encoder"].index)
    return (peaks["decoder"][common] - peaks["encoder"][common]).to_numpy()


def id_rise_and_fall(training: pd.DataFrame, kind: str = "decoder", *, layer0_in_averages: bool = False
                     ) -> np.ndarray:
    """Per batch: the bell score of the layer-averaged TwoNN dimension over checkpoints in order (an interior
    checkpoint peaks, rise from step 0 and fall to the last step as shares of the peak)."""
    rows = training[training["kind"] == kind].assign(layer=lambda t: pd.to_numeric(t["layer"], errors="coerce"))
    rows = rows.dropna(subset=["layer"])
    if not layer0_in_averages:
        rows = rows[rows["layer"] > 0]
    mean_id = rows.groupby(["batch", "step"], as_index=False)["twonn_id"].mean()
    table = _steps_profile(mean_id, "twonn_id")
    n = table.shape[1]
    if n < 3:
        raise ValueError(f"need at least 3 checkpoints to rise and fall, got {n}")
    position = np.arange(n) / (n - 1)
    half = 0.5 / (n - 1)  # every checkpoint but the first and last is interior
    return np.array([bell_score(position, profile, (half, 1 - half))["score"] for profile in table.to_numpy()])


def per_run(training: pd.DataFrame, statistic) -> np.ndarray:
    """``statistic`` (a table -> per-batch array) per training run: with several seeds (column ``seed``), each
    seed's median over its batches, one value per seed (runs are the independent units; batches of one run share
    its weights); with one run, the per-batch values."""
    if "seed" not in training or training["seed"].nunique() < 2:
        return np.asarray(statistic(training), dtype=np.float64)
    return np.array([np.median(statistic(rows)) for _, rows in training.groupby("seed", sort=True)])


def training_claims(training: pd.DataFrame | None, *, margin: float = DEFAULT_MARGIN, seed: int = 0,
                    layer0_in_averages: bool = False, setting: str = "") -> list[Claim]:
    """The over-training claims on our own decoder's checkpoints (per-batch table with columns kind, step,
    layer, batch, anisotropy, twonn_id, and seed when several runs were trained: the interval is then over
    seeds); not testable when the table is missing or has no decoder."""
    growth = rise_fall = drop = Evidence(float("nan"))
    if (training is not None and not training.empty and (training["kind"] == "decoder").any()
            and training.loc[training["kind"] == "decoder", "step"].nunique() >= 3):
        growth = median_interval(per_run(training, anisotropy_growth), seed)
        drop = median_interval(per_run(training, anisotropy_drop_from_peak), seed)
        rise_fall = median_interval(per_run(training, lambda t: id_rise_and_fall(
            t, layer0_in_averages=layer0_in_averages)), seed)
    return [
        Claim(key="anisotropy_training", text="decoder anisotropy grows over training (last minus first checkpoint, "
              "largest per-layer value)", source="grows, then stabilises (Figs. 3-4)", test=Test("above", 0.0),
              faithful=growth, setting=setting),
        Claim(key="anisotropy_stabilises", text="... then stabilises (last checkpoint's largest per-layer anisotropy "
              "below its peak over training, as a share of the peak)", source="stabilises (Figs. 3-4)",
              test=Test("below", margin), faithful=drop, setting=setting),
        Claim(key="id_training", text="decoder intrinsic dimension rises then falls over training (bell score over "
              "checkpoints)", source="sharp rise, then decline (Fig. 2)", test=Test("above", margin),
              faithful=rise_fall, setting=setting),
    ]


def contrast_claim(batches: pd.DataFrame, training: pd.DataFrame | None, *, seed: int = 0) -> Claim | None:
    """Decoders more anisotropic than encoders: the decoder's peak anisotropy minus the encoder's per batch, for
    the pretrained pair with position 0 kept (the source's setting, confounded by everything else that differs)
    and for our trained pair at its last checkpoint (the same network; mask and objective differ). The claim is
    `confounded`: the pretrained pair alone cannot reproduce it. None without a decoder and an encoder."""
    if not {"decoder", "encoder"} <= set(batches["kind"]):
        return None
    faithful_rows, our_rows = _settings(batches)
    pretrained = faithful_rows if faithful_rows is not None else our_rows
    faithful = median_interval(final_peak_contrast(pretrained), seed)
    ours = None
    if training is not None and not training.empty and {"decoder", "encoder"} <= set(training["kind"]):
        last = training[training["step"] == training["step"].max()]
        ours = median_interval(per_run(last, final_peak_contrast), seed)
    return Claim(key="decoder_over_encoder", text="decoders reach higher anisotropy than encoders (peak, decoder "
                 "minus encoder)", source="contrast of Fig. 1", test=Test("above", 0.0), faithful=faithful, ours=ours,
                 setting="trained pair: same network, only mask and objective differ, last checkpoint",
                 confounded=True)


def geometry_claims(batches: pd.DataFrame, training: pd.DataFrame | None = None, *,
                    interior: Sequence[float] = DEFAULT_INTERIOR, margin: float = DEFAULT_MARGIN, seed: int = 0,
                    layer0_in_averages: bool = False, training_setting: str = "") -> list[Claim]:
    """All of Study 3's claims: per-model profile shape, then the two over-training claims."""
    contrast = contrast_claim(batches, training, seed=seed)
    return (layer_claims(batches, interior=interior, margin=margin, seed=seed)
            + ([contrast] if contrast is not None else [])
            + training_claims(training, margin=margin, seed=seed, layer0_in_averages=layer0_in_averages,
                              setting=training_setting))


def sweep_evidence(batches: pd.DataFrame, *, interior: Sequence[float] = DEFAULT_INTERIOR, seed: int = 0
                   ) -> pd.DataFrame:
    """The bell score (median over batches, bootstrap interval) of every decoder's anisotropy with each setting of
    the outlier sensitivity sweep removed (columns ``anisotropy_without_k*`` / ``anisotropy_without_top*``):
    model, removal, estimate, low, high. Default setting (position 0 excluded) only."""
    records = []
    for model, rows in batches.groupby("model", sort=False):
        if str(rows["kind"].iloc[0]) != "decoder":
            continue
        _, ours = _settings(rows)
        if ours is None:
            continue
        n_layers = int(rows["n_layers"].iloc[0])
        for column in [c for c in ours.columns if c.startswith(("anisotropy_without_k", "anisotropy_without_top"))]:
            evidence = _bell_evidence(ours, column, n_layers, interior, seed)
            if evidence is None:
                continue
            records.append({"model": model, "removal": column.removeprefix("anisotropy_without_"),
                            "estimate": evidence.estimate, "low": evidence.low, "high": evidence.high})
    return pd.DataFrame(records, columns=["model", "removal", "estimate", "low", "high"])
