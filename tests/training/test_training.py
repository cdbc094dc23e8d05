"""Own-checkpoint training: seeded init, checkpoint files, learning, determinism, step grids."""

from __future__ import annotations

import dataclasses
import json
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    BertForMaskedLM,
    GPT2LMHeadModel,
)

from layerwise.resources.byte_tokenizer import make_byte_tokenizer
from layerwise.training.checkpoints import (
    PYTHIA_STEPS,
    checkpoint_dir,
    hub_checkpoint_models,
    hub_revisions,
    list_checkpoints,
    log_spaced_steps,
    pythia_checkpoint_steps,
    pythia_revision,
    remove_stale_temporaries,
    save_checkpoint,
)
from layerwise.plots.training import plot_learning_curves
from layerwise.training.checkpoint_states import checkpoint_hidden_states
from layerwise.training.summary import layer_means
from layerwise.training.runs import (
    LOG_COLUMNS,
    TrainingConfig,
    build_model,
    lr_multiplier,
    train,
    training_batches,
)
from layerwise.training.data import (
    IGNORE_INDEX,
    causal_targets,
    encode_text,
    evenly_spaced_windows,
    heldout_chunks,
    mask_tokens,
    split_ids,
)

matplotlib.use("Agg")

TINY = TrainingConfig(arch="gpt2", n_layers=2, width=32, n_heads=2, seq_len=32, batch_size=8,
                      max_steps=40, lr=3e-3, warmup_steps=5, eval_every=20, eval_batches=2,
                      n_checkpoints=4, seed=0)
LOADERS = {"decoder": AutoModelForCausalLM, "encoder": AutoModelForCausalLM}  # matched: one class


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def text() -> str:
    """Learnable text: words from a small lexicon (some multi-byte UTF-8) in seeded random order."""
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "café", "über", "naïve"]
    return " ".join(rng.choice(words, size=12_000))


@pytest.fixture(scope="module")
def runs(text, tmp_path_factory) -> dict[str, tuple[pd.DataFrame, object]]:
    out = {}
    for kind in ("decoder", "encoder"):
        folder = tmp_path_factory.mktemp(kind)
        out[kind] = (train(kind, text, TINY, folder), folder)
    return out


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- step grids and revision names ------------------------------------------------------------

@pytest.mark.parametrize("max_step,n", [(800, 12), (1500, 15), (143_000, 30), (10, 5), (7, 8), (1, 2)])
def test_log_spaced_steps_shape(max_step, n):
    steps = log_spaced_steps(max_step, n)
    assert steps[0] == 0 and steps[-1] == max_step
    assert steps == sorted(set(steps))
    assert len(steps) == min(n, max_step + 1)


def test_log_spaced_steps_are_geometric_on_a_long_run():
    steps = np.array(log_spaced_steps(143_000, 20)[1:], dtype=float)
    ratios = np.diff(np.log(steps))
    ideal = math.log(143_000) / 18
    assert np.allclose(ratios[5:], ideal, atol=0.1)  # integer rounding only bites at the start


def test_linear_steps_add_the_tail_after_an_early_peak():
    from layerwise.training.checkpoints import linear_steps
    assert linear_steps(450, 4) == [112, 225, 338, 450]  # round(i * 450 / 4): 112.5 rounds to even
    assert linear_steps(450, 0) == []
    grid = sorted(set(log_spaced_steps(450, 12)) | set(linear_steps(450, 4)))
    assert sum(step > 450 / 2 for step in log_spaced_steps(450, 12)) < sum(step > 450 / 2 for step in grid)
    with pytest.raises(ValueError, match=">= 0"):
        linear_steps(450, -1)


def test_too_many_steps_returns_every_step():
    assert log_spaced_steps(5, 50) == [0, 1, 2, 3, 4, 5]


def test_pythia_revisions_are_published_ones():
    published = {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512} | set(range(1000, 143_001, 1000))
    assert set(PYTHIA_STEPS) == published
    for n in (2, 5, 20, 60, 154):
        steps = pythia_checkpoint_steps(n)
        assert len(steps) == n and steps[0] == 0 and steps[-1] == 143_000
        assert steps == sorted(set(steps)) and set(steps) <= published
    assert [pythia_revision(s) for s in (0, 1, 512, 1000, 143_000)] == \
        ["step0", "step1", "step512", "step1000", "step143000"]
    assert pythia_checkpoint_steps(11, max_step=512) == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def test_hub_revisions_are_pythia_steps_by_count_or_named_branches_by_the_step_they_carry():
    pythia = hub_revisions({"id": "EleutherAI/pythia-160m", "n_revisions": 5})
    assert pythia == {step: f"step{step}" for step in pythia_checkpoint_steps(5)} and len(pythia) == 5
    # OLMo's branches, listed out of order: sorted by the step each name carries, the tokens part ignored
    olmo = {"id": "allenai/OLMo-2-1124-7B",
            "revisions": ["stage1-step928646-tokens3896B", "stage1-step1000-tokens5B", "step150-tokens1B"]}
    assert hub_revisions(olmo) == {150: "step150-tokens1B", 1000: "stage1-step1000-tokens5B",
                                   928646: "stage1-step928646-tokens3896B"}
    with pytest.raises(ValueError, match="'main' of 'allenai/OLMo-2-1124-7B' names no training step"):
        hub_revisions({**olmo, "revisions": ["stage1-step1000-tokens5B", "main"]})
    with pytest.raises(ValueError, match="names no training step"):  # "steps" is not a step number
        hub_revisions({**olmo, "revisions": ["warmup-steps5"]})
    with pytest.raises(ValueError, match="are both step 1000"):
        hub_revisions({**olmo, "revisions": ["stage1-step1000-tokens5B", "step1000-tokens4B"]})


def test_hub_checkpoints_take_the_settings_of_the_model_they_are_like_but_their_own_revision():
    models = {"olmo-2-7b": {"source": "hf", "id": "allenai/OLMo-2-1124-7B", "revision": "main", "kind": "decoder",
                            "n_layers": 32, "width": 4096, "dtype": "bfloat16", "device_map": "auto",
                            "display": "OLMo-2-7B"}}
    hub = {"olmo-ckpt": {"id": "allenai/OLMo-2-1124-7B", "like": "olmo-2-7b",
                         "revisions": ["stage1-step1000-tokens5B", "stage1-step10000-tokens42B"]}}
    registry = hub_checkpoint_models(hub, models)
    assert set(registry) == {"olmo-ckpt@step1000", "olmo-ckpt@step10000"}
    entry = registry["olmo-ckpt@step10000"]
    assert entry["revision"] == "stage1-step10000-tokens42B" and entry["display"] == "olmo-ckpt"
    assert {k: entry[k] for k in ("kind", "n_layers", "width", "dtype", "device_map")} == \
        {"kind": "decoder", "n_layers": 32, "width": 4096, "dtype": "bfloat16", "device_map": "auto"}
    # without `like`, a checkpoint is a bare hub entry (Pythia's, whose sizes the model job reads)
    bare = hub_checkpoint_models({"pythia": {"id": "EleutherAI/pythia-160m", "n_revisions": 2}})
    assert bare["pythia@step143000"] == {"source": "hf", "id": "EleutherAI/pythia-160m", "revision": "step143000",
                                         "display": "pythia"}
    with pytest.raises(ValueError, match="like = 'olmo-7b' is not a key of `models`"):
        hub_checkpoint_models({"x": {**hub["olmo-ckpt"], "like": "olmo-7b"}}, models)


@pytest.mark.parametrize("step", [3, 1500, 143_001, -1])
def test_unpublished_pythia_step_is_rejected(step):
    with pytest.raises(ValueError, match="not a published Pythia revision"):
        pythia_revision(step)


def test_lr_schedule_warmup_then_cosine_to_floor():
    cfg = TrainingConfig(max_steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_multiplier(0, cfg) == pytest.approx(0.1)
    assert lr_multiplier(9, cfg) == pytest.approx(1.0)
    assert lr_multiplier(10, cfg) == pytest.approx(1.0)
    assert lr_multiplier(55, cfg) == pytest.approx(0.55)  # cosine midpoint: halfway to the floor
    assert lr_multiplier(100, cfg) == pytest.approx(0.1)


# --- data -------------------------------------------------------------------------------------

def test_encode_text_is_one_id_per_utf8_byte_and_matches_the_tokenizer():
    tok = make_byte_tokenizer()
    sample = "naïve café — 日本 <b>"
    ids = encode_text(sample, tok)
    assert len(ids) == len(sample.encode("utf-8"))
    assert ids.tolist() == tok(sample)["input_ids"]
    assert encode_text(sample.encode("utf-8"), tok).tolist() == ids.tolist()
    assert tok.decode(ids) == sample
    with pytest.raises(ValueError, match="UTF-8"):
        encode_text(b"\xff\xfe", tok)


def test_split_is_contiguous_and_heldout_chunks_come_from_the_tail(text):
    tok = make_byte_tokenizer()
    ids = encode_text(text, tok)
    train_ids, val_ids = split_ids(ids, 0.1)
    assert np.array_equal(np.concatenate([train_ids, val_ids]), ids)
    assert len(val_ids) == round(0.1 * len(ids))
    chunks = heldout_chunks(text, tok, n_chunks=10, chunk_len=50)
    assert chunks.shape == (10, 50)
    windows = np.lib.stride_tricks.sliding_window_view(val_ids, 50)
    starts = [np.flatnonzero((windows == c).all(axis=1)) for c in chunks]
    assert all(len(s) >= 1 for s in starts)  # every chunk lies inside the held-out tail
    assert (np.diff([s[0] for s in starts]) >= 50).all()  # in order, non-overlapping
    with pytest.raises(ValueError, match="too short"):
        evenly_spaced_windows(val_ids, n_windows=len(val_ids), seq_len=2)


def test_decoder_and_encoder_see_the_same_windows(text):
    tok = make_byte_tokenizer()
    train_ids, _ = split_ids(encode_text(text, tok), TINY.val_fraction)
    dec = training_batches("decoder", train_ids, TINY, tok)
    enc = training_batches("encoder", train_ids, TINY, tok)
    for _ in range(3):
        (x, _), (masked, targets) = next(dec), next(enc)
        picked = targets != IGNORE_INDEX
        assert torch.equal(targets[picked], x[picked]) and torch.equal(masked[~picked], x[~picked])


def test_causal_targets_shift_by_one():
    x = np.arange(12).reshape(2, 6)
    t = causal_targets(x)
    assert np.array_equal(t[:, :-1], x[:, 1:]) and (t[:, -1] == IGNORE_INDEX).all()


def test_mask_tokens_follows_the_80_10_10_rule():
    tok = make_byte_tokenizer()
    rng = np.random.default_rng(1)
    inputs = rng.integers(0, 256, size=(400, 500))
    replacement = np.arange(256)
    corrupted, targets = mask_tokens(inputs, np.random.default_rng(7), tok.mask_token_id, replacement)
    picked = targets != IGNORE_INDEX
    n = inputs.size
    assert abs(picked.mean() - 0.15) < 4 * math.sqrt(0.15 * 0.85 / n)
    assert np.array_equal(targets[picked], inputs[picked])
    assert np.array_equal(corrupted[~picked], inputs[~picked])
    k = picked.sum()
    as_mask = (corrupted[picked] == tok.mask_token_id).mean()
    kept = (corrupted[picked] == inputs[picked]).mean()
    # a random replacement equals the original byte with probability 1/256
    assert abs(as_mask - 0.8) < 4 * math.sqrt(0.16 / k)
    assert abs(kept - (0.1 + 0.1 / 256)) < 4 * math.sqrt(0.09 / k)
    unmasked = corrupted[corrupted != tok.mask_token_id]
    assert not np.isin(unmasked, tok.all_special_ids).any()  # random replacements are bytes only
    again, _ = mask_tokens(inputs, np.random.default_rng(7), tok.mask_token_id, replacement)
    assert np.array_equal(again, corrupted)


# --- initialisation and checkpoints -----------------------------------------------------------

@pytest.mark.parametrize("kind,cls", [("decoder", GPT2LMHeadModel), ("encoder", GPT2LMHeadModel)])
def test_step0_checkpoint_is_the_seeded_initialisation(runs, kind, cls):
    _, folder = runs[kind]
    step0 = checkpoint_dir(folder, 0)
    saved = load_file(step0 / "model.safetensors")
    config = AutoConfig.from_pretrained(step0)
    torch.manual_seed(TINY.seed)  # plain transformers init from the saved config, same seed
    fresh = _state(cls(config))
    assert all(torch.equal(saved[k], fresh[k]) for k in saved)
    torch.manual_seed(TINY.seed + 1)
    other = _state(cls(config))
    assert not all(torch.equal(saved[k], other[k]) for k in saved)
    trained = load_file(checkpoint_dir(folder, TINY.max_steps) / "model.safetensors")
    assert not all(torch.equal(saved[k], trained[k]) for k in saved)


def test_build_model_depends_only_on_the_seed():
    tok = make_byte_tokenizer()
    bert = dataclasses.replace(TINY, encoder_block="bert")
    for kind, cfg in (("decoder", TINY), ("encoder", TINY), ("encoder", bert)):
        a = _state(build_model(kind, cfg, tok))
        b = _state(build_model(kind, cfg, tok))
        c = _state(build_model(kind, dataclasses.replace(cfg, seed=1), tok))
        assert _same_weights(a, b) and not _same_weights(a, c)
    assert isinstance(build_model("encoder", bert, tok), BertForMaskedLM)  # the unmatched pair, kept


@pytest.mark.parametrize("kind", ["decoder", "encoder"])
def test_checkpoints_are_exactly_the_configured_steps(runs, kind):
    _, folder = runs[kind]
    assert list_checkpoints(folder) == log_spaced_steps(TINY.max_steps, TINY.n_checkpoints)
    assert not any(p.name.startswith(".") for p in folder.iterdir())  # no temp folders left
    state = json.loads((checkpoint_dir(folder, 1) / "training_state.json").read_text())
    assert state["step"] == 1 and state["kind"] == kind
    assert state["tokens_seen"] == TINY.batch_size * TINY.seq_len


@pytest.mark.parametrize("kind", ["decoder", "encoder"])
def test_checkpoint_round_trip_is_bit_exact(tmp_path, kind):
    tok = make_byte_tokenizer()
    model = build_model(kind, dataclasses.replace(TINY, arch="llama"), tok)
    with torch.no_grad():  # move away from the init so the check is not init-vs-init
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    path = save_checkpoint(model, tok, tmp_path, 7)
    assert path == tmp_path / "step7" and (path / "config.json").is_file()
    loaded = LOADERS[kind].from_pretrained(path)
    assert _same_weights(_state(model), _state(loaded))
    x = torch.randint(0, 256, (2, 16))
    assert torch.equal(model.eval()(input_ids=x).logits, loaded.eval()(input_ids=x).logits)
    assert AutoTokenizer.from_pretrained(path)("é a")["input_ids"] == tok("é a")["input_ids"]


def test_interrupted_save_leaves_no_checkpoint(tmp_path):
    class Exploding:
        def save_pretrained(self, path, **_):
            (path / "config.json").write_text("{}")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(Exploding(), make_byte_tokenizer(), tmp_path, 3)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    """A SIGKILL between mkdtemp and rename leaves `.stepN.xyz.tmp`; the next run clears only those."""
    save_checkpoint(build_model("decoder", TrainingConfig(n_layers=1, width=16, n_heads=2, seq_len=16),
                                make_byte_tokenizer()), make_byte_tokenizer(), tmp_path, 0)
    stale = tmp_path / ".step5.abc123.tmp"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step0"]
    assert list_checkpoints(tmp_path) == [0]
    assert remove_stale_temporaries(tmp_path / "missing") == []


# --- the matched pair -------------------------------------------------------------------------

def test_matched_pair_differs_only_in_mask_and_objective(runs):
    """Read back from what training saved: same architecture config, same hyper-parameters, same
    initial weights; only the attention and the objective recorded for each differ."""
    dec, enc = (checkpoint_dir(runs[kind][1], 0) for kind in ("decoder", "encoder"))
    assert json.loads((dec / "config.json").read_text()) == json.loads((enc / "config.json").read_text())
    states = [json.loads((d / "training_state.json").read_text()) for d in (dec, enc)]
    assert states[0]["config"] == states[1]["config"]
    differing = {k for k in states[0] if states[0][k] != states[1][k]}
    assert differing == {"kind", "attention", "objective"}, differing
    assert (states[0]["attention"], states[1]["attention"]) == ("causal", "bidirectional")
    assert (states[0]["objective"], states[1]["objective"]) == ("causal_lm", "masked_lm")
    assert _same_weights(load_file(dec / "model.safetensors"), load_file(enc / "model.safetensors"))
    logs = {kind: runs[kind][0] for kind in ("decoder", "encoder")}
    assert logs["decoder"]["arch"].iloc[0] == logs["encoder"]["arch"].iloc[0] == TINY.arch


def test_matched_encoder_attends_both_ways_and_the_decoder_only_back(runs):
    """Changing the last byte of a chunk changes the first position's layer-1 state in the encoder
    only; the post-final-norm states come back too."""
    chunks = np.tile(np.arange(40, 40 + TINY.seq_len), (2, 1))
    changed = chunks.copy()
    changed[:, -1] += 1
    for kind, moves in (("decoder", False), ("encoder", True)):
        step = checkpoint_dir(runs[kind][1], TINY.max_steps)
        (a, post), (b, _) = (checkpoint_hidden_states(step, c, include_position0=True, device="cpu")
                             for c in (chunks, changed))
        first = slice(0, None, TINY.seq_len)  # position 0 of each chunk
        assert (not np.allclose(a[1][first], b[1][first])) == moves, kind
        assert sorted(a) == list(range(TINY.n_layers + 1))
        assert post.shape == a[TINY.n_layers].shape and not np.allclose(post, a[TINY.n_layers])


# --- training ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["decoder", "encoder"])
def test_tiny_run_learns(runs, kind):
    log, _ = runs[kind]
    assert list(log.columns) == LOG_COLUMNS
    val = log[log.split == "val"].set_index("step")
    # an untrained model is near-uniform over the 261 tokens
    assert val.loc[0, "loss"] == pytest.approx(math.log(261), abs=0.1)
    assert val.loc[0, "bits_per_byte"] == pytest.approx(math.log2(261), abs=0.15)
    assert val.loc[TINY.max_steps, "loss"] < val.loc[0, "loss"] - 1.0
    train_rows = log[log.split == "train"]
    assert train_rows["loss"].iloc[-1] < train_rows["loss"].iloc[0]
    assert (train_rows["tokens_seen"] == train_rows["step"] * TINY.batch_size * TINY.seq_len).all()
    assert set(val.index) == set(range(0, 41, 20)) | set(log_spaced_steps(40, 4))


def test_same_seed_same_losses_other_seed_other_losses(text, tmp_path):
    short = dataclasses.replace(TINY, max_steps=6, eval_every=3, n_checkpoints=2)
    for kind in ("decoder", "encoder"):
        a, b, c = (train(kind, text, cfg, tmp_path / f"{kind}{i}", checkpoint_steps=[])
                   for i, cfg in enumerate([short, short, dataclasses.replace(short, seed=1)]))
        losses = [run.drop(columns="elapsed_s") for run in (a, b, c)]
        pd.testing.assert_frame_equal(losses[0], losses[1], check_exact=True)
        assert not np.allclose(losses[0]["loss"], losses[2]["loss"])


@pytest.mark.parametrize("bad,match", [
    (dict(arch="mamba"), "unknown decoder arch"),
    (dict(width=30, n_heads=4), "does not divide"),
    (dict(arch="llama", width=36, n_heads=4), "even head size"),
    (dict(batch_size=0), "batch_size must be a positive int"),
    (dict(n_checkpoints=1), "n_checkpoints"),
])
def test_bad_config_is_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **bad)


def test_bad_train_arguments_are_rejected(text, tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        train("seq2seq", text, TINY, tmp_path)
    with pytest.raises(ValueError, match="text too short"):
        train("decoder", text[:200], TINY, tmp_path)
    with pytest.raises(ValueError, match="checkpoint steps must lie"):
        train("decoder", text, TINY, tmp_path, checkpoint_steps=[0, 41])
    with pytest.raises(TypeError, match="str or bytes"):
        train("decoder", ["a list"], TINY, tmp_path)


def test_learning_curve_figure(runs):
    log = pd.concat([runs["decoder"][0], runs["encoder"][0]])
    fig = plot_learning_curves(log, splits=("val", "train"))
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog"
    assert len([line for line in ax.get_lines() if len(line.get_xdata()) > 1]) == 4
    with pytest.raises(ValueError, match="lacks columns"):
        plot_learning_curves(log.drop(columns="bits_per_byte"))
    with pytest.raises(ValueError, match="splits must be"):
        plot_learning_curves(log, splits=("test",))


def test_layer_averages_leave_layer0_out_unless_asked():
    table = pd.DataFrame({"kind": "decoder", "step": 0, "metric": "twonn_id",
                          "layer": [0, 1, 2], "mean": [100.0, 4.0, 6.0]})
    assert layer_means(table, "twonn_id")["mean"].tolist() == [5.0]
    assert layer_means(table, "twonn_id", include_layer0=True)["mean"].tolist() == [110.0 / 3]
