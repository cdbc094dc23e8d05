# The cross-study view's input function, included by rules/crossstudy.smk once its settings are defined.


def crossstudy_inputs(wc):
    """The probe store and the studies' tables for one model; a study that did not run it adds no column.

    Study 1's side is its raw probe at the additions' size (`probes.variant_n_texts`): the view is our
    addition, and its per-layer TwoNN bootstrap over the store grows with the square of the vectors."""
    main = probe_dir(wc.model, sampling_=PROBE_VARIANT_SAMPLING)
    inputs = {
        "store": store_dir(wc.model, PROBES["dataset"], PROBE_VARIANT_N, PROBES["max_tokens"]),
        "confusion": f"{main}/raw/confusion.csv",
        "predictions": f"{main}/raw/predictions.parquet",  # per-text probe recall
    }
    if wc.model in GEOMETRY["models"]:
        inputs["geometry"] = study_table("geometry", wc.model, GEOMETRY)
    if wc.model in NORMS["models"]:
        inputs["norms"] = study_table("norms", wc.model, NORMS)
    if wc.model in LENS["models"]:
        inputs["lens"] = study_table("lens", wc.model, LENS, ext=f"{CROSS_DECODER}.parquet")
    return inputs
