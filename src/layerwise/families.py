"""The model families extraction and the logit lens know, each with its quirks named in one table.

A family is a transformers `model_type`. For each one the table says where its blocks and final norm sit
inside the base model, which block sub-module writes attention's contribution into the residual stream
(for the lens's after-attention streams), and what else differs from a plain pre-norm decoder with a tied or
untied linear head: an output projection after the final norm (OPT), a soft-cap on the final logits
(Gemma 2), embeddings scaled by sqrt(d) (Gemma), parallel attention and MLP (GPT-J, Falcon, GPT-NeoX), one
block shared by every layer (ALBERT), a final norm in an encoder (ModernBERT).

Extraction reads any architecture whose blocks it can find (`layerwise.models.transformer_blocks` falls back
to the list of `n_layers` modules); the logit lens accepts only the decoder families listed here and refuses
any other by name, because a wrong guess (a post-norm model, an unknown projection or cap) would give
meaningless lens outputs without an error.

Tied versus untied heads need no entry: the lens decodes with `get_output_embeddings()`, whichever
parameters it shares, and `ModelFacts.tied_embeddings` records which it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: the workflow reads the table when it parses
    import torch
    from torch import nn


@dataclass(frozen=True)
class Family:
    """Where one family keeps its parts, relative to its base model (`model.base_model`), and its quirks."""

    model_type: str
    kind: str  # "decoder" (causal LM head: the lens applies) or "encoder" (extraction only)
    blocks: str  # attribute path of the list of blocks
    final_norm: str | None  # attribute path of the final norm; None: post-norm (the last block is normalised)
    attention: str | None = None  # block sub-module whose output is attention's addition to the residual
    mlp: str | None = None  # block sub-module whose output is the MLP's addition to the residual
    project_out: str | None = None  # projection between the final norm and the head (OPT-350m style)
    softcap: str | None = None  # config attribute of a tanh cap on the final logits
    embedding_scale: bool = False  # embeddings multiplied by sqrt(hidden_size) before block 0
    parallel: bool = False  # attention and MLP read the same input and add to the residual together
    shared_blocks: bool = False  # one module per group of layers, applied repeatedly (ALBERT)
    # transformers' hidden_states[-1] is post-norm even with config.tie_last_hidden_states=False (the family
    # collects its hidden states by hand): extraction's hooks are the only way to the pre-norm last layer
    post_norm_last_hidden_state: bool = False
    note: str = ""

    def quirks(self) -> list[str]:
        """The family's departures from a plain pre-norm decoder, in words (for error messages and docs)."""
        named = []
        if self.final_norm is None:
            named.append("post-norm: no final norm, the last block's output is already normalised")
        if self.project_out:
            named.append(f"output projection `{self.project_out}` after the final norm, before the head")
        if self.softcap:
            named.append(f"final logits soft-capped: cap * tanh(logits / cap), cap = config.{self.softcap}")
        if self.embedding_scale:
            named.append("embeddings scaled by sqrt(hidden_size) before block 0 (included in hidden_states[0])")
        if self.parallel:
            named.append("parallel attention and MLP blocks (nothing special for the residual stream)")
        if self.post_norm_last_hidden_state:
            named.append("hidden_states[-1] is post-norm whatever config.tie_last_hidden_states says")
        if self.shared_blocks:
            named.append("layers share one block per group; a shared block is hooked once and fires per layer")
        if self.note:
            named.append(self.note)
        return named


_LLAMA_LIKE = dict(kind="decoder", blocks="layers", final_norm="norm", attention="self_attn", mlp="mlp")
# Gemma 2/3 and OLMo-2 normalise attention's and the MLP's outputs before adding them to the residual: what
# enters the stream is the post-attention norm's output, not the attention module's.
_POST_SUBLAYER_NORMS = dict(_LLAMA_LIKE, attention="post_attention_layernorm", mlp="post_feedforward_layernorm")

FAMILIES: dict[str, Family] = {f.model_type: f for f in [
    # decoders --------------------------------------------------------------------------------------------------
    Family("gpt2", kind="decoder", blocks="h", final_norm="ln_f", attention="attn", mlp="mlp"),
    Family("gpt_neox", kind="decoder", blocks="layers", final_norm="final_layer_norm", attention="attention",
           mlp="mlp", parallel=True, note="parallel residual unless config.use_parallel_residual is False"),
    Family("llama", **_LLAMA_LIKE, note="Llama 1-3 (rope scaling changes nothing for the lens)"),
    Family("mistral", **_LLAMA_LIKE),
    Family("qwen2", **_LLAMA_LIKE),
    Family("qwen3", **_LLAMA_LIKE, note="RMS norm on queries and keys inside attention (nothing for the stream)"),
    Family("phi3", **_LLAMA_LIKE),
    Family("olmo2", **_POST_SUBLAYER_NORMS,
           note="norms after attention and MLP, none before them: the residual receives the normed outputs"),
    Family("gemma2", **_POST_SUBLAYER_NORMS, softcap="final_logit_softcapping", embedding_scale=True,
           note="RMSNorm gain is (1 + weight); norms after attention and MLP feed the residual"),
    Family("gemma3_text", **_POST_SUBLAYER_NORMS, softcap="final_logit_softcapping", embedding_scale=True,
           note="RMSNorm gain is (1 + weight); the sqrt(d) scale lives in the embedding module itself"),
    Family("gptj", kind="decoder", blocks="h", final_norm="ln_f", attention="attn", mlp="mlp", parallel=True,
           post_norm_last_hidden_state=True, note="untied head with a bias"),
    Family("gpt_neo", kind="decoder", blocks="h", final_norm="ln_f", attention="attn", mlp="mlp",
           post_norm_last_hidden_state=True,
           note="alternating global and local attention (nothing for the stream)"),
    Family("opt", kind="decoder", blocks="decoder.layers", final_norm="decoder.final_layer_norm",
           attention="self_attn", mlp="fc2", project_out="decoder.project_out",
           note="config.do_layer_norm_before=False (opt-350m) is post-norm: extraction only, no lens"),
    Family("falcon", kind="decoder", blocks="h", final_norm="ln_f", attention="self_attention", mlp="mlp",
           parallel=True, post_norm_last_hidden_state=True,
           note="parallel attention unless config.parallel_attn is False in the old architecture"),
    # encoders (extraction only: no next-token head, so no lens) -----------------------------------------------
    Family("bert", kind="encoder", blocks="encoder.layer", final_norm=None),
    Family("roberta", kind="encoder", blocks="encoder.layer", final_norm=None),
    Family("albert", kind="encoder", blocks="encoder.albert_layer_groups", final_norm=None, shared_blocks=True,
           note="embeddings projected to hidden_size before block 0 (included in hidden_states[0])"),
    Family("distilbert", kind="encoder", blocks="transformer.layer", final_norm=None),
    Family("deberta-v2", kind="encoder", blocks="encoder.layer", final_norm=None,
           note="DeBERTa v2 and v3 (relative positions inside attention; nothing for the stream)"),
    Family("electra", kind="encoder", blocks="encoder.layer", final_norm=None,
           note="embeddings projected to hidden_size before block 0 when embedding_size differs"),
    Family("modernbert", kind="encoder", blocks="layers", final_norm="final_norm",
           note="pre-norm encoder: a final norm after the last block, stored like a decoder's"),
]}
DECODER_FAMILIES: tuple[str, ...] = tuple(sorted(k for k, f in FAMILIES.items() if f.kind == "decoder"))
ENCODER_FAMILIES: tuple[str, ...] = tuple(sorted(k for k, f in FAMILIES.items() if f.kind == "encoder"))


def family_of(model: nn.Module) -> Family | None:
    """The table's entry for `model`'s config.model_type, or None for an unlisted family."""
    config = getattr(model, "config", None)
    return FAMILIES.get(getattr(config, "model_type", None))


def submodule(root: nn.Module, path: str | None) -> nn.Module | None:
    """`root`'s sub-module at a dotted attribute path, or None (no path, or a missing/None attribute)."""
    from torch import nn

    if path is None:
        return None
    module = root
    for name in path.split("."):
        module = getattr(module, name, None)
        if module is None:
            return None
    return module if isinstance(module, nn.Module) else None


def family_blocks(base: nn.Module, family: Family, n_layers: int) -> nn.ModuleList | None:
    """The family's `n_layers` blocks in forward order; a shared block appears once per layer it serves."""
    from torch import nn

    blocks = submodule(base, family.blocks)
    if not isinstance(blocks, nn.ModuleList):
        return None
    if family.shared_blocks:
        if n_layers % len(blocks):
            raise RuntimeError(f"{family.model_type}: {n_layers} layers do not divide into {len(blocks)} groups")
        per_group = n_layers // len(blocks)
        return nn.ModuleList([blocks[i // per_group] for i in range(n_layers)])
    return blocks if len(blocks) == n_layers else None


def softcap_of(model: nn.Module) -> float | None:
    """The cap of the model's final-logit soft-capping, or None when it has none."""
    family = family_of(model)
    if family is None or family.softcap is None:
        return None
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(config, family.softcap, None)
    return float(cap) if cap else None


def apply_softcap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """cap * tanh(logits / cap), in the order of operations the models use (Gemma 2's head)."""
    import torch

    if cap is None:
        return logits
    return torch.tanh(logits / cap) * cap


def embedding_scale(model: nn.Module) -> float:
    """The factor a family multiplies its token embeddings by before block 0 (sqrt(d) for Gemma, else 1)."""
    family = family_of(model)
    if family is None or not family.embedding_scale:
        return 1.0
    return math.sqrt(model.config.get_text_config().hidden_size)


def random_config(model_type: str, *, n_layers: int, width: int, n_heads: int, ffn: int, max_positions: int,
                  tied: bool | None, ids: dict):
    """A transformers config of a random model of a listed family, sized by a registry entry (`source: random`).

    `ids` holds vocab_size and the special-token ids of its tokenizer. Grouped-query families get one key/value
    head per query head and head_dim = width / n_heads (some families default to a fixed head_dim); tying
    follows `tied` where given, else the family's default."""
    import transformers as T

    if model_type not in FAMILIES:
        raise ValueError(f"no random {model_type!r}: random architectures are {tuple(sorted(FAMILIES))}")
    head_dim = width // n_heads
    size = dict(num_hidden_layers=n_layers, hidden_size=width, num_attention_heads=n_heads, intermediate_size=ffn)
    gqa = dict(size, num_key_value_heads=n_heads, head_dim=head_dim, max_position_embeddings=max_positions)
    bert = dict(size, max_position_embeddings=max_positions)
    tie = {} if tied is None else {"tie_word_embeddings": tied}
    build = {
        "gpt2": lambda: T.GPT2Config(n_layer=n_layers, n_embd=width, n_head=n_heads, n_positions=max_positions,
                                     n_inner=ffn),
        "gpt_neox": lambda: T.GPTNeoXConfig(**size, max_position_embeddings=max_positions),
        "llama": lambda: T.LlamaConfig(**gqa),
        "mistral": lambda: T.MistralConfig(**gqa),
        "qwen2": lambda: T.Qwen2Config(**gqa),
        "qwen3": lambda: T.Qwen3Config(**gqa),
        "phi3": lambda: T.Phi3Config(**{k: v for k, v in gqa.items() if k != "head_dim"}),
        "olmo2": lambda: T.Olmo2Config(**{k: v for k, v in gqa.items() if k != "head_dim"}),
        "gemma2": lambda: T.Gemma2Config(**gqa),
        "gemma3_text": lambda: T.Gemma3TextConfig(**gqa),
        "gptj": lambda: T.GPTJConfig(n_layer=n_layers, n_embd=width, n_head=n_heads, n_inner=ffn,
                                     rotary_dim=max(2, head_dim // 2), n_positions=max_positions),
        "gpt_neo": lambda: T.GPTNeoConfig(num_layers=n_layers, hidden_size=width, num_heads=n_heads,
                                          intermediate_size=ffn, max_position_embeddings=max_positions,
                                          attention_types=[[["global"], n_layers]]),
        "opt": lambda: T.OPTConfig(num_hidden_layers=n_layers, hidden_size=width, num_attention_heads=n_heads,
                                   ffn_dim=ffn, word_embed_proj_dim=width, max_position_embeddings=max_positions),
        "falcon": lambda: T.FalconConfig(num_hidden_layers=n_layers, hidden_size=width, num_attention_heads=n_heads,
                                         ffn_hidden_size=ffn, max_position_embeddings=max_positions),
        "bert": lambda: T.BertConfig(**bert),
        # RoBERTa's positions start after its padding index
        "roberta": lambda: T.RobertaConfig(**dict(bert, max_position_embeddings=max_positions + ids["pad_token_id"]
                                                  + 2)),
        "albert": lambda: T.AlbertConfig(**bert, embedding_size=width),
        "distilbert": lambda: T.DistilBertConfig(n_layers=n_layers, dim=width, n_heads=n_heads, hidden_dim=ffn,
                                                 max_position_embeddings=max_positions),
        "deberta-v2": lambda: T.DebertaV2Config(**bert),
        "electra": lambda: T.ElectraConfig(**bert, embedding_size=width),
        "modernbert": lambda: T.ModernBertConfig(**bert, cls_token_id=ids["bos_token_id"],
                                                 sep_token_id=ids["eos_token_id"]),
    }[model_type]
    config = build()
    for key, value in {**ids, **tie}.items():
        setattr(config, key, value)
    return config
