"""Rule `probe_condition`: one control, ablation or setting beside the raw probe (see PROBE_CONDITIONS)."""

import numpy as np
import pandas as pd
import torch

from layerwise.probes.claims import per_text
from layerwise.probes.conditions import random_control_scores, run_condition, scores, shuffled_label_scores
from layerwise.probes.features import split_layer_dataset
from layerwise.probes.saved import load_probe, save_probe
from layerwise.workflow.runlog import log_to_file
from layerwise.activations.store import ActivationStore

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)  # the rule's threads, no more
p, condition, out = snakemake.params, snakemake.wildcards.condition, snakemake.output
# with_position0: the raw probe keeping position 0. post_faithful: the post's setting, position 0 kept and
# the last class the state after the final norm (HF hidden_states[-1] for GPT-2).
include0 = condition in ("with_position0", "post_faithful") or p.include_position0
train, test = split_layer_dataset(ActivationStore.open(snakemake.input.store), p.test_fraction, p.seed,
                                  include_position0=include0, final_norm_last=condition == "post_faithful")
labels = np.unique(np.concatenate([train.y, test.y]))
common = dict(seed=p.seed, probe_params=p.probe, overwrite=True)
history = pd.DataFrame(columns=["epoch", "split", "metric", "value"])
if condition == "shuffled_labels":
    table = shuffled_label_scores(train, test, labels, permutations=p.shuffle_permutations, **common)
elif condition.startswith("random_"):
    table = random_control_scores(condition.removeprefix("random_"), train, test, labels,
                                  reference=load_probe(snakemake.input.reference), **common)
else:
    kind = "raw" if condition in ("with_position0", "post_faithful") else condition
    run = run_condition(kind, train, test, tree_params=p.tree, **common)
    table = scores(run, labels, condition=condition)
    history = getattr(run.estimator, "history_", history)
    if "model" in out.keys():  # rule probe_normalised: the scalar random control's reference probe
        save_probe(out.model, run)
    if "texts" in out.keys():  # per test text: the verdicts' bootstrap unit
        per_text(test.text_ids, run.y_test == run.y_pred).assign(condition=condition).to_csv(out.texts, index=False)
table.to_csv(out.scores, index=False)
history.to_csv(out.history, index=False)
log.info("%s: %s", condition, table.to_dict("records"))
