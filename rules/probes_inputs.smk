# Study 1's path helpers and input functions, included by rules/probes.smk once its settings are defined.


def probe_dir(model, dataset=None, sampling_=None):
    return f"results/probes/{model}/{dataset or PROBES['dataset']}/{sampling_ or PROBE_SAMPLING}"


def saved_probe(model, dataset, sampling_, condition="raw"):
    """The fitted probe (probe.npz) a later rule loads instead of fitting it again."""
    return f"{probe_dir(model, dataset, sampling_)}/{condition}/probe.npz"


# The probe each random control's vectors go through "as trained" (layerwise.probes.controls.REFERENCE_CONDITION,
# kept equal by a test): that fit's saved probe is loaded, not fitted again.
RANDOM_REFERENCE = {"random_scalar": "normalised", "random_per_dimension": "raw", "random_covariance": "raw"}


def probe_condition_inputs(wc):
    inputs = {"store": f"results/activations/{wc.model}/{wc.dataset}/{wc.sampling}"}
    if wc.condition in RANDOM_REFERENCE:
        inputs["reference"] = saved_probe(wc.model, wc.dataset, wc.sampling, RANDOM_REFERENCE[wc.condition])
    return inputs


def probe_inputs(model):
    main, variant = probe_dir(model), probe_dir(model, sampling_=PROBE_VARIANT_SAMPLING)
    transfer = f"results/probes/{model}/transfer_{{}}_n{{}}.csv"
    return {
        "raw": f"{main}/raw/scores.csv",
        "conditions": [f"{main}/{c}/scores.csv" for c in MAIN_CONDITIONS],
        "variant_raw": f"{variant}/raw/scores.csv",
        "variant_masks": f"{variant}/raw/masks.csv",
        "variant_conditions": [f"{variant}/{c}/scores.csv" for c in VARIANT_CONDITIONS],
        "histories": [f"{main}/raw/history.csv", f"{main}/normalised/history.csv"],
        "nopunct": f"{probe_dir(model, NOPUNCT, PROBE_VARIANT_SAMPLING)}/raw/scores.csv",
        "grid": [f"{probe_dir(model, sampling_=sampling(n, l))}/raw/scores.csv" for n in PROBES["grid"]["n_texts"]
                 for l in PROBES["grid"]["max_tokens"]],
        "transfer": transfer.format("raw", PROBES["n_texts"]),
        "variant_transfer": transfer.format("raw", PROBE_VARIANT_N),
        "transfer_nopunct": transfer.format("nopunct", PROBE_VARIANT_N),
        "stability": f"results/probes/{model}/stability_runs.csv",
    }
