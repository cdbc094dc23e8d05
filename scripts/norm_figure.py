"""Rule `norm_figure`: the norm-per-layer figure and its numbers for the paper."""

import pandas as pd

from layerwise.norms import norm_growth, norm_summary_sentence
from layerwise.workflow.macros import LaTeX, macro_name, write_macros
from layerwise.plots.norms import norm_profile
from layerwise.workflow.runlog import log_to_file

log_to_file(snakemake.log[0])
tables, macros, sentences = [], {}, []
for key, name, path in zip(snakemake.params.models, snakemake.params.names, snakemake.input.tables):
    table = pd.read_csv(path).assign(model=name)
    tables.append(table)
    macros[macro_name("norm growth", key)] = norm_growth(table)
    macros[macro_name("norm median growth", key)] = norm_growth(table, "q50")
    sentences.append(norm_summary_sentence(table, name))
macros["NormsSummary"] = LaTeX(" ".join(sentences))
p = snakemake.params
macros["NormsSample"] = (f"{p.dataset}, {p.n_texts} texts of at most {p.max_tokens} tokens, position 0 "
                         + ("included" if p.include_position0 else "excluded"))
norm_profile(pd.concat(tables)).savefig(snakemake.output.figure)
write_macros(macros, snakemake.output.macros, header="rule norm_figure")
