"""Study 1: which layer is this vector from? Layer probes, attributions, controls and 2-D maps.

Pure functions and small estimators over arrays `X` [n_vectors, width] with layer labels `y`
(0 = input embedding ... n_layers) and the `text_ids` each vector came from.

Names are imported on first use (PEP 562): a job that reads probe tables does not load torch or UMAP.
"""

from layerwise.lazy import lazy_exports

_API = {
    "LayeredVectors": "layerwise.probes.synthetic",
    "ProbeRun": "layerwise.probes.training",
    "StabilityResult": "layerwise.probes.stability",
    "TorchLogisticProbe": "layerwise.probes.logistic",
    "attribution_table": "layerwise.probes.attribution",
    "confusion_table": "layerwise.probes.metrics",
    "cumulative_contributions": "layerwise.probes.attribution",
    "dims_for_share": "layerwise.probes.attribution",
    "embed_2d": "layerwise.probes.reductions",
    "fit_probe": "layerwise.probes.training",
    "frequent_top_dimensions": "layerwise.probes.masks",
    "make_layered_vectors": "layerwise.probes.synthetic",
    "make_probe": "layerwise.probes.training",
    "mask_ablation": "layerwise.probes.masks",
    "mask_dimensions": "layerwise.probes.masks",
    "matched_random_vectors": "layerwise.probes.controls",
    "normalise_rows": "layerwise.probes.controls",
    "reduction_table": "layerwise.probes.reductions",
    "score_table": "layerwise.probes.metrics",
    "seed_stability": "layerwise.probes.stability",
    "shuffled_labels": "layerwise.probes.controls",
    "split_by_text": "layerwise.probes.split",
    "strip_punctuation": "layerwise.resources.punctuation",
    "subsample_per_layer": "layerwise.probes.reductions",
    "top_dimensions": "layerwise.probes.attribution",
}
__all__ = sorted(_API)


__getattr__, __dir__ = lazy_exports(__name__, _API)
