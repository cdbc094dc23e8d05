"""Study 3 over training: a small decoder and encoder trained from scratch, their checkpoints and
the geometry of every checkpoint (the measurements themselves live in :mod:`layerwise.geometry`).

- :mod:`.runs`: models, optimiser and the training loop;
- :mod:`.data`: byte-level windows, splits and MLM masks shared by both objectives;
- :mod:`.checkpoints`: which steps to keep, where they live, Pythia's published revisions;
- :mod:`.checkpoint_states`: hidden states of a saved checkpoint on fixed held-out chunks;
- :mod:`.summary`: what the paper states about geometry across checkpoints.
"""
