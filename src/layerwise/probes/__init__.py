"""Study 1: which layer is this vector from? Layer probes, attributions, controls and 2-D maps.

Pure functions and small estimators over arrays `X` [n_vectors, width] with layer labels `y`
(0 = input embedding ... n_layers) and the `text_ids` each vector came from.
"""

from layerwise.probes.attribution import attribution_table, cumulative_contributions, dims_for_share, top_dimensions
from layerwise.probes.controls import matched_random_vectors, normalise_rows, shuffled_labels
from layerwise.probes.logistic import TorchLogisticProbe
from layerwise.probes.masks import frequent_top_dimensions, mask_ablation, mask_dimensions
from layerwise.probes.metrics import confusion_table, score_table
from layerwise.probes.reductions import embed_2d, reduction_table, subsample_per_layer
from layerwise.probes.split import split_by_text
from layerwise.probes.stability import StabilityResult, seed_stability
from layerwise.probes.synthetic import LayeredVectors, make_layered_vectors
from layerwise.probes.training import ProbeRun, fit_probe, make_probe
from layerwise.resources.punctuation import strip_punctuation

__all__ = [
    "LayeredVectors", "ProbeRun", "StabilityResult", "TorchLogisticProbe", "attribution_table",
    "confusion_table", "cumulative_contributions", "dims_for_share", "embed_2d", "fit_probe",
    "frequent_top_dimensions", "make_layered_vectors", "make_probe", "mask_ablation", "mask_dimensions",
    "matched_random_vectors", "normalise_rows", "reduction_table", "score_table", "seed_stability",
    "shuffled_labels", "split_by_text", "strip_punctuation", "subsample_per_layer", "top_dimensions",
]
