"""Rule `outlier_figures`: both anisotropy curves per model, the top outlier tokens and the section's sentences."""

import pandas as pd

from layerwise.narrative.outliers import dominant_token_sentence, outlier_macros
from layerwise.outliers.detect import top_outlier_tokens
from layerwise.workflow.macros import LaTeX, write_macros
from layerwise.plots.outliers import plot_outlier_anisotropy
from layerwise.workflow.runlog import log_to_file

log_to_file(snakemake.log[0])
p, inp = snakemake.params, snakemake.input
# massive_dims is a ';'-joined list: as text, or a column of single dimensions would be read as floats ("507.0")
layers = {name: pd.read_csv(path, dtype={"massive_dims": str}) for name, path in zip(p.names, inp.layers)}
tops = {name: top_outlier_tokens(pd.read_csv(path, keep_default_na=False), p.top_n)
        for name, path in zip(p.names, inp.occurrences)}
probes = {name: (pd.read_csv(s), pd.read_csv(d)) for name, s, d in zip(p.probe_names, inp.probes, inp.probe_dims)}
plot_outlier_anisotropy(pd.concat([t.assign(model=n) for n, t in layers.items()]), k=p.k).savefig(snakemake.output.figure)
pd.concat([t.assign(model=n) for n, t in tops.items()]).to_csv(snakemake.output.tokens, index=False)
macros = outlier_macros(layers, tops, probes, k=p.k, absolute=p.absolute, relative=p.relative, dataset=p.dataset,
                        probe_dataset=p.probe_dataset)
macros["OutliersDominantToken"] = LaTeX(dominant_token_sentence(
    {name: pd.read_csv(path, keep_default_na=False) for name, path in zip(p.names, inp.occurrences)}))
write_macros(macros, snakemake.output.macros, header="rule outlier_figures")
