"""The post's ablations in the post's own setting (post-final-norm last layer, position 0 kept).

One fit of the post-faithful probe, and everything the post read off its probe, on it:

* masking at test time the `mask_k` dimensions most frequent in the per-layer top-`top_n` lists (chosen on
  the training split), beside the same masking with `mask_k` random dimensions (`random_draws` seeded draws);
* the transfer: the probe, unchanged, scores the transfer dataset's test texts (the post's IMDB → AG News);
* unit norm: a second probe fitted on unit-norm vectors, from zero, and the scalar random control through it
  (random vectors with each layer's mean and variance of its unit-norm entries, the post's Fig. 10). A warm
  start from the first probe cost more than a cold one (SmolLM2, N=1000: 160 epochs warm; our setting's
  unit-norm fit takes 82 from zero): the two problems' standardised features differ too much.

Every accuracy also comes per test text (`texts`: condition, text_id, n, correct), for bootstrap intervals.
Selection reads the training split only; test splits are only scored.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from layerwise.probes.attribution import dims_for_share, top_dimensions
from layerwise.probes.claims import per_text
from layerwise.probes.conditions import convergence, train_selection
from layerwise.probes.controls import layer_moments, normalise_rows
from layerwise.probes.features import LayerDataset
from layerwise.probes.logistic import WarmStart
from layerwise.probes.masks import masked_predictions, random_mask_baseline
from layerwise.probes.metrics import score_table
from layerwise.probes.training import fit_probe, make_probe


def faithful_ablations(load: Callable[[], tuple[LayerDataset, LayerDataset]], target_test: LayerDataset,
                       labels: np.ndarray, *, seed: int, probe_params: dict[str, Any], mask_k: int, top_n: int,
                       random_draws: int, init: WarmStart | None = None) -> dict[str, pd.DataFrame]:
    """`load()` returns fresh (train, test) splits of the main dataset in the post's setting (called twice:
    the fits standardise their matrices in place). Returns tables: scores (one row per condition, with the
    fit's convergence), texts, history (the post-faithful fit's curves), random_masks, attribution, top,
    dims_for_share. `init`: where the post-faithful fit starts (e.g. our setting's raw probe: the objective is
    strictly convex, so the start changes the path and the cost, not the optimum)."""
    labels = np.asarray(labels)
    train, test = load()
    test_ids = test.text_ids.copy()
    run = fit_probe(train.X, train.y, test.X, test.y, make_probe("logistic", seed, **probe_params), overwrite=True,
                    init=init)
    fit = convergence(run.estimator)
    rows, texts = [], []

    def add(condition: str, y_true: np.ndarray, y_pred: np.ndarray, ids: np.ndarray, fit_info: dict) -> None:
        rows.append(score_table(y_true, y_pred, labels).assign(**fit_info, condition=condition))
        texts.append(per_text(ids, y_true == y_pred).assign(condition=condition))

    add("post_faithful", run.y_test, run.y_pred, test_ids, fit)
    attribution, dims = train_selection(run, mask_k=mask_k, top_n=top_n)
    add("post_faithful_masked_at_test", run.y_test, masked_predictions(run, dims), test_ids,
        dict(fit, note=f"dims {','.join(str(d) for d in dims)}"))
    random_masks = random_mask_baseline(run, mask_k, random_draws, seed)
    add("post_faithful_transfer", target_test.y, run.predict(target_test.X), target_test.text_ids, fit)
    history = run.estimator.history_
    del run

    train, test = load()
    moments = layer_moments(train.X, train.y, "scalar")  # from the raw training vectors (normalised inside)
    X_train, X_test = normalise_rows(train.X, overwrite=True), normalise_rows(test.X, overwrite=True)
    unit = fit_probe(X_train, train.y, X_test, test.y, make_probe("logistic", seed, **probe_params),
                     overwrite=True)
    unit_fit = convergence(unit.estimator)
    add("post_faithful_normalised", unit.y_test, unit.y_pred, test_ids, unit_fit)
    random_test = moments.sample(unit.y_test, seed + 1)
    add("post_faithful_random_scalar_trained", unit.y_test, unit.predict(random_test), test_ids, unit_fit)
    scores = pd.concat(rows, ignore_index=True)
    return {"scores": scores, "texts": pd.concat(texts, ignore_index=True), "history": history,
            "random_masks": random_masks, "attribution": attribution, "top": top_dimensions(attribution, top_n),
            "dims_for_share": dims_for_share(attribution),
            "masked_dims": pd.DataFrame({"dim": dims})}

