"""Study 3, the measurements: anisotropy and TwoNN intrinsic dimension of hidden states per layer.

Modules, one concern each:

- :mod:`.spectrum`: covariance spectrum and top-direction shares (anisotropy) of a centred batch;
- :mod:`.neighbours`: the two nearest other rows of every row (float32 tiles, exact in float64);
- :mod:`.intrinsic`: the TwoNN estimators on those distances;
- :mod:`.layers`: the per-layer, per-batch driver that produces the study's tables.

Study 3 over training (our own decoder/encoder runs and their checkpoints) is the sibling package
:mod:`layerwise.training`: kept apart so that editing a metric re-measures checkpoints but never
re-trains (rules track the library modules their scripts import, see :mod:`layerwise.workflow.code_deps`).
The metric names are re-exported here, so ``from layerwise.geometry import twonn`` keeps working.
"""

from layerwise.geometry.spectrum import anisotropy, covariance_spectrum, top_k_shares
from layerwise.geometry.layers import (METRICS, OUTLIER_METRICS, TABLE_COLUMNS, aggregate_batch_table,
                                       aggregate_batches, batch_indices, batch_table, geometry_table, layer_batches,
                                       layer_geometry)
from layerwise.geometry.neighbours import DEFAULT_BLOCK_SIZE, DEFAULT_N_CANDIDATES, two_nearest_neighbour_distances
from layerwise.geometry.intrinsic import ESTIMATORS, TwoNNResult, twonn, twonn_from_distances, twonn_from_neighbours

__all__ = [
    "DEFAULT_BLOCK_SIZE", "DEFAULT_N_CANDIDATES", "ESTIMATORS", "METRICS", "OUTLIER_METRICS", "TABLE_COLUMNS",
    "TwoNNResult", "aggregate_batch_table", "aggregate_batches", "anisotropy", "batch_indices", "batch_table",
    "covariance_spectrum", "geometry_table", "layer_batches", "layer_geometry", "top_k_shares",
    "two_nearest_neighbour_distances", "twonn", "twonn_from_distances", "twonn_from_neighbours",
]
