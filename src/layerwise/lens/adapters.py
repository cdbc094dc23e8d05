"""Where the logit lens finds its parts inside a Hugging Face causal LM, and how it decodes a stream.

The lens needs four things from a model: the list of blocks (to read the residual stream between
them), the attention sub-module of each block (for the optional after-attention stream), the final
norm and the unembedding, plus, where a family has them, a projection between the final norm and the head
(OPT) and a soft-cap on the final logits (Gemma 2). Each supported family is listed explicitly, with its
quirks, in `layerwise.families`; anything else is rejected by name instead of guessed at, because a wrong
guess (say, a post-norm model or a model with a logit soft-cap) would silently give meaningless lens outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from layerwise.families import DECODER_FAMILIES, FAMILIES, apply_softcap, softcap_of, submodule
from layerwise.resources.models import base_model, final_norm, transformer_blocks

Decoder = Literal["full", "norm_only", "none"]
DECODERS: tuple[str, ...] = ("full", "norm_only", "none")


# The families the lens accepts, each with the name of the block sub-module that adds attention's output to
# the residual (`layerwise.families`). Blocks and final norm are located by `layerwise.resources.models` (the same
# modules extraction hooks); the unembedding by the official `get_output_embeddings()` (GPT-NeoX's head was
# `embed_out` before transformers 5, `lm_head` since), tied or not.
_ATTENTION: dict[str, str] = {k: FAMILIES[k].attention for k in DECODER_FAMILIES}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_ATTENTION))


@dataclass(frozen=True)
class LensParts:
    """The modules the lens reads from or decodes with, located once per model."""

    model_type: str
    blocks: nn.ModuleList
    attention_name: str
    final_norm: nn.Module
    unembed: nn.Module
    project_out: nn.Module | None = None  # between the final norm and the unembedding (OPT), for every decoder
    softcap: float | None = None  # cap * tanh(logits / cap) on the `full` decoder's logits (Gemma 2)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)


def lens_parts(model: PreTrainedModel) -> LensParts:
    """Locate blocks, final norm and unembedding of a supported causal LM, or fail naming the model."""
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"logit lens needs a transformers PreTrainedModel, got {type(model).__name__}")
    model_type = getattr(model.config, "model_type", None)
    name = type(model).__name__
    attention = _ATTENTION.get(model_type)
    if attention is None:
        kind = ("it is not a causal language model (encoders such as BERT predict masked tokens, "
                "not the next token, so there is no next-token unembedding to decode with)"
                if not model.can_generate() else "its architecture has no lens adapter")
        raise ValueError(f"logit lens does not support {name} (model_type={model_type!r}): {kind}; "
                         f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}")
    unembed = model.get_output_embeddings()
    if unembed is None:
        raise ValueError(f"{name} has no unembedding (output embeddings): load the model with its "
                         "language-modelling head (AutoModelForCausalLM), not the bare base model")
    norm = final_norm(model)
    if norm is None:
        raise ValueError(f"{name} (model_type={model_type!r}) has no final norm where its family keeps it: "
                         "a post-norm variant (e.g. OPT with do_layer_norm_before=False, opt-350m) has no "
                         "pre-norm residual stream for the lens to decode; extraction still reads it")
    _norm_kind(norm)  # fail early on an unexpected norm
    blocks = transformer_blocks(model, model.config.get_text_config().num_hidden_layers)
    return LensParts(model_type=model_type, blocks=blocks, attention_name=attention, final_norm=norm,
                     unembed=unembed, project_out=submodule(base_model(model), FAMILIES[model_type].project_out),
                     softcap=softcap_of(model))


def _norm_kind(norm: nn.Module) -> Literal["layernorm", "rmsnorm"]:
    if isinstance(norm, nn.LayerNorm):
        return "layernorm"
    if isinstance(norm, nn.RMSNorm) or type(norm).__name__.endswith("RMSNorm"):
        return "rmsnorm"
    raise ValueError(f"unsupported final norm {type(norm).__name__}: expected LayerNorm or an RMSNorm")


def final_norm_kind(model: PreTrainedModel) -> Literal["layernorm", "rmsnorm"]:
    """"layernorm" or "rmsnorm": the family of the model's final norm (what `norm_only` leaves of it differs)."""
    return _norm_kind(lens_parts(model).final_norm)


def _norm_eps(norm: nn.Module) -> float:
    for attr in ("eps", "variance_epsilon"):
        eps = getattr(norm, attr, None)
        if eps is not None:
            return float(eps)
    raise ValueError(f"cannot find the epsilon of {type(norm).__name__}")


def normalise_without_gain(norm: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Apply `norm`'s normalisation (same eps, same float32 upcast) but not its learned gain/bias.

    The post's footnote describes its activations this way, but its code (transformer-utils) decodes with
    the full final norm (`full`); this is a variant. On an RMSNorm model it divides each position's stream
    by one positive number, so it ranks tokens exactly as the raw stream (`none`) does.
    """
    eps = _norm_eps(norm)
    if _norm_kind(norm) == "layernorm":
        return F.layer_norm(hidden, hidden.shape[-1:], weight=None, bias=None, eps=eps)
    h32 = hidden.to(torch.float32)
    h32 = h32 * torch.rsqrt(h32.pow(2).mean(-1, keepdim=True) + eps)
    return h32.to(hidden.dtype)


def normalise(parts: LensParts, hidden: torch.Tensor, decoder: Decoder = "full") -> torch.Tensor:
    """The stream as the unembedding sees it under `decoder` (see `decode`)."""
    if decoder == "full":
        return parts.final_norm(hidden)
    if decoder == "norm_only":
        return normalise_without_gain(parts.final_norm, hidden)
    if decoder != "none":
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {DECODERS}")
    return hidden


def decode(parts: LensParts, hidden: torch.Tensor, decoder: Decoder = "full") -> torch.Tensor:
    """Logits [..., vocab] of a residual stream [..., d_model] under one of the three decoders.

    `full` = the plain logit lens as the post's code (transformer-utils) runs it: the final norm with its
    gain/bias, then the unembedding (equals the model's own head on the last block's stream); `norm_only` =
    normalisation without gain/bias, then the unembedding (a variant, after the post's footnote "after layer
    norm, but before the learned point-wise transformation"; on RMSNorm it ranks like the raw stream);
    `none` = unembedding of the raw stream. A family's output projection (OPT) is applied under every
    decoder (the unembedding reads its output); its logit soft-cap (Gemma 2) under `full` only, where it
    makes the lens at the last block equal the model's own logits.
    """
    normed = normalise(parts, to_module_device(parts.final_norm, hidden), decoder)
    if parts.project_out is not None:  # part of the head, whatever the decoder does with the norm
        normed = parts.project_out(to_module_device(parts.project_out, normed))
    logits = parts.unembed(to_module_device(parts.unembed, normed))
    return apply_softcap(logits, parts.softcap) if decoder == "full" else logits


def to_module_device(module: nn.Module, tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` on the device of `module`'s parameters: on a model sharded across devices (device_map) a
    stream recorded at one block may have to meet a norm or head that lives on another."""
    param = next(module.parameters(), None)
    return tensor if param is None or param.device == tensor.device else tensor.to(param.device)
