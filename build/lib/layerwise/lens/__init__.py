"""Study 2, the logit lens: every layer's residual stream decoded with the model's own head.

Modules:
    decode    the lens itself: one forward, residual streams recorded, each layer decoded (`logit_lens`,
              `logit_lens_sequences`, `logit_lens_texts`, `residual_streams`)
    adapters  where each model family keeps its blocks, final norm and unembedding; the three decoders
    kernels   per-row statistics of a [positions x vocab] logit array (numba)
    labels    the layer labels of lens tables (`FINAL`), importable without torch
    stats     per-layer summaries of lens tables, with bootstrap intervals over texts
    texts     the example texts of the per-example heatmaps
    claims    the post's claims as testable `layerwise.verdicts.Claim`s

Nothing is imported here: `import layerwise.lens.texts` does not load torch.
"""
