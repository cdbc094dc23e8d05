"""Rule `probe_verdicts`: the post's claims judged on the first model (layerwise.probes.claims, layerwise.verdicts)."""

import pandas as pd

from layerwise.narrative.probes import probe_verdict_macros, verdict_discussion
from layerwise.workflow.macros import write_macros
from layerwise.probes.claims import (CLAIMS, FAITHFUL, OURS, evidence_table, our_setting_points, per_text,
                                     probe_claims)
from layerwise.probes.summary import fit_converged
from layerwise.workflow.runlog import log_to_file
from layerwise.verdicts import verdict_frame

log = log_to_file(snakemake.log[0])
p, inp, out = snakemake.params, snakemake.input, snakemake.output
ablations = pd.read_csv(inp.ablations)
texts = pd.read_csv(inp.texts)
flags = ablations.set_index("condition")["converged"]
fits = {(FAITHFUL, name): (texts[texts["condition"] == condition], flags[condition])
        for name, condition in (("raw", "post_faithful"), ("normalised", "post_faithful_normalised"),
                                ("masked", "post_faithful_masked_at_test"), ("transfer_target", "post_faithful_transfer"),
                                ("random_scalar", "post_faithful_random_scalar_trained"))}
raw = pd.read_csv(inp.raw_scores)
predictions = pd.read_parquet(inp.raw_predictions)
fits[(OURS, "raw")] = (per_text(predictions["text_id"], predictions["true_layer"] == predictions["predicted_layer"]),
                       fit_converged(raw["converged"]))
conditions = pd.concat([pd.read_csv(f) for f in inp.conditions], ignore_index=True)
summary = pd.read_csv(inp.summary)
accuracy = summary[summary["model"] == p.display].set_index("condition")["accuracy"]
converged = {"raw": fit_converged(raw["converged"]),
             "normalised": fit_converged(conditions.loc[conditions["condition"] == "normalised", "converged"])}
grid = {}
for path, (n, length) in zip(inp.grid, p.grid):
    cell = pd.read_parquet(path)
    grid[(n, length)] = per_text(cell["text_id"], cell["true_layer"] == cell["predicted_layer"])
# Our setting per test text: unit norm, the frequent dims masked at test, the IMDB probe on AG News.
raw_texts = pd.read_csv(inp.raw_texts)
transfer_texts = pd.read_csv(inp.transfer_texts)
fits[(OURS, "normalised")] = (pd.read_csv(inp.normalised_texts), converged["normalised"])
fits[(OURS, "masked")] = (raw_texts[raw_texts["condition"] == "masked_at_test"], converged["raw"])
fits[(OURS, "transfer_target")] = (transfer_texts[transfer_texts["test"] != transfer_texts["train"]],
                                   converged["raw"])
# what has no per-text table (the scalar random control) enters as a point
covered = {"normalised_delta", "normalised_accuracy", "mask_delta", "transfer_delta"}
points = [pt for pt in our_setting_points(accuracy, converged) if pt["quantity"] not in covered]
evidence = evidence_table(
    fits=fits, grid=grid, points=points, top_n=p.top_n, seed=p.seed,
    attribution={FAITHFUL: pd.read_parquet(inp.faithful_attribution), OURS: pd.read_parquet(inp.raw_attribution)},
    dims_for_share={FAITHFUL: pd.read_csv(inp.faithful_dims), OURS: pd.read_csv(inp.raw_dims)},
    stability_overlap=pd.read_csv(inp.overlap),
    norms=({setting: rows for setting, rows in pd.read_csv(inp.norms).groupby("setting")}
           if inp.get("norms") else None))
verdicts = verdict_frame(probe_claims(evidence, chance=float(raw["chance"].iloc[0])))
evidence.to_csv(out.evidence, index=False)
verdicts.to_csv(out.verdicts, index=False)
fit_rows = [raw.assign(condition="raw"),
            conditions[conditions["condition"].isin(["normalised", "shuffled_labels", "random_scalar_retrained"])],
            ablations[ablations["condition"].isin(["post_faithful", "post_faithful_normalised"])]]
fit_table = pd.concat([f[["condition", "converged", "epochs", "grad_norm"]] for f in fit_rows], ignore_index=True)
masked = str(ablations.set_index("condition").loc["post_faithful_masked_at_test", "note"]).removeprefix("dims ")
macros = probe_verdict_macros(
    verdicts, evidence, faithful_scores=ablations, random_masks=pd.read_csv(inp.random_masks),
    masked_dims=[int(d) for d in masked.split(",")], model=p.display, units={c.key: c.test.unit for c in CLAIMS},
    fits=fit_table.assign(model=p.display), random_masks_ours=pd.read_csv(inp.random_masks_ours))
macros.update(ProbeMaxEpochs=p.max_epochs, ProbeHeadlineMaxEpochs=p.headline_max_epochs,
              ProbeVerdictDiscussion=verdict_discussion(verdicts))
write_macros(macros, out.macros, header="rule probe_verdicts")
log.info("verdicts: %s", verdicts[["key", "verdict"]].to_dict("records"))
