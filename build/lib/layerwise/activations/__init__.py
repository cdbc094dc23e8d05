"""Hidden states on disk: every layer's residual stream of a sample, written once and read by every study.

Modules:
    hooks    the one residual-stream recorder (`residual_hooks`), shared by extraction and the logit lens
    extract  batched forward passes with hooks on the blocks and the final norm → a store (`extract_to_store`,
             `forward_hidden_states`)
    store    the activation store: per-layer arrays, token table, manifest with checksums; slicing a smaller
             store out of a larger one
    plan     which stores need a forward pass, which are slices, and how much memory a job needs (pure
             functions of the config's numbers, called by the workflow at parse time)

Nothing is imported here: the workflow's parse-time `plan` does not load torch.
"""
