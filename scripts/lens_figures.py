"""Rule `lens_figures`: dataset-level logit-lens curves (decoders side by side) and the paper's numbers."""

import pandas as pd

from layerwise.lens.stats import select_positions, summarize_lens
from layerwise.narrative.lens import lens_macros, subblock_sentence
from layerwise.workflow.macros import LaTeX, write_macros
from layerwise.plots.lens import plot_lens_curves
from layerwise.workflow.runlog import log_to_file

PAPER_METRICS = ("kl_final", "kl_input", "agreement", "log10_rank", "log10_input_rank")
DECODER_TITLES = {"full": "decoder full (the post's)", "norm_only": "decoder norm_only (variant)",
                  "none": "raw stream (no norm)"}

log_to_file(snakemake.log[0])
p = snakemake.params
summary = pd.concat([pd.read_csv(path, dtype={"layer": str}).assign(model=name)
                     for path, name in zip(snakemake.input.summaries, p.names)], ignore_index=True)
changes = pd.concat([pd.read_csv(path, dtype={"from_layer": str, "to_layer": str}).assign(model=name)
                     for path, name in zip(snakemake.input.changes, p.names)], ignore_index=True)
# The paper's figure: five metrics, the input row left out (its ~100-nat KL would flatten the blocks' curves),
# drawn at the printed width so 7-8 pt text prints at that size.
plot_lens_curves(summary, metrics=PAPER_METRICS, hue="model", col="decoder", relative_depth=True, skip_input=True,
                 width=p.width, row_height=1.4, col_titles=DECODER_TITLES).savefig(snakemake.output.curves)
# the sub-block lens ran on the example texts (cheap there): its attention/MLP steps on the longest paper text
example = pd.read_parquet(snakemake.input.subblock_example)
example_summary = summarize_lens(select_positions(example, include_position0=False).assign(model=p.names[0]),
                                 by=("model", "decoder", "layer", "depth"), n_boot=1)
subblocks = subblock_sentence(example_summary, where=f"the {p.subblock_text} text "
                              f"({int(example['position'].max())} positions after the first)")
write_macros({**lens_macros(summary, changes, heatmaps=p.heatmaps, model_names=p.model_names, example=p.example,
                         window=p.window, window_layer_step=p.window_layer_step, decoder=p.decoder,
                         model_tex=p.model_tex, more_examples=p.more_examples, dataset=p.dataset,
                         max_tokens=p.max_tokens), "LensSubblocks": LaTeX(subblocks)},
             snakemake.output.macros, header="rule lens_figures")
