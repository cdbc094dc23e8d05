"""Study summaries → LaTeX macros, including generated sentences that stay true when the config changes.

One module per study, so that a study's figure rule depends only on its own narrative code.
"""
