"""One view of every layer across the three studies, with rank correlations under one bootstrap over texts.

Modules:
    view     per-layer quantities recomputed from per-text ingredients, their join over layers and the rank
             correlations between them, each resample drawn once per data source
    readers  the readers of the studies' output files: the only place that knows their columns

Nothing is imported here.
"""
