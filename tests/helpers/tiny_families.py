"""Tiny random models of every family in `layerwise.families`, built offline from transformers' config
classes: 2 layers, width 32, 4 heads (2 key/value heads where the family has grouped queries), vocabulary 128.

Initialised with a wide `initializer_range` and a random final-norm gain/bias, so that the decoders differ
(`full` vs `norm_only`) and Gemma's soft-cap bends the logits (its cap is set low for the same reason)."""

from __future__ import annotations

import torch

from layerwise.families import DECODER_FAMILIES, ENCODER_FAMILIES

VOCAB = 128
N_LAYERS = 2
WIDTH = 32
SOFTCAP = 2.0  # low enough that tanh visibly bends logits of a few units


def tiny_config(model_type: str, **overrides):
    """The config of a tiny `model_type` model; `overrides` go to the config class."""
    import transformers as T

    ids = dict(vocab_size=VOCAB, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    size = dict(num_hidden_layers=N_LAYERS, hidden_size=WIDTH, num_attention_heads=4, intermediate_size=64)
    gqa = dict(size, num_key_value_heads=2, head_dim=8, max_position_embeddings=64)
    init = dict(initializer_range=0.2)
    build = {
        "gpt2": lambda: T.GPT2Config(n_layer=N_LAYERS, n_embd=WIDTH, n_head=4, n_positions=64, **ids, **init),
        "gpt_neox": lambda: T.GPTNeoXConfig(**size, max_position_embeddings=64, **ids, **init),
        "llama": lambda: T.LlamaConfig(**gqa, **ids, **init),
        "mistral": lambda: T.MistralConfig(**gqa, **ids, **init),
        "qwen2": lambda: T.Qwen2Config(**gqa, **ids, **init),
        "qwen3": lambda: T.Qwen3Config(**gqa, **ids, **init),
        "phi3": lambda: T.Phi3Config(**{k: v for k, v in gqa.items() if k != "head_dim"}, **ids, **init),
        "olmo2": lambda: T.Olmo2Config(**{k: v for k, v in gqa.items() if k != "head_dim"}, **ids, **init),
        "gemma2": lambda: T.Gemma2Config(**gqa, final_logit_softcapping=SOFTCAP, **ids, **init),
        "gemma3_text": lambda: T.Gemma3TextConfig(**gqa, final_logit_softcapping=SOFTCAP, **ids, **init),
        "gptj": lambda: T.GPTJConfig(n_layer=N_LAYERS, n_embd=WIDTH, n_head=4, rotary_dim=4, n_positions=64,
                                     **ids, **init),
        "gpt_neo": lambda: T.GPTNeoConfig(num_layers=N_LAYERS, hidden_size=WIDTH, num_heads=4, window_size=4,
                                          attention_types=[[["global", "local"], 1]], max_position_embeddings=64,
                                          **ids, **init),
        # word_embed_proj_dim < hidden_size: the project_in / project_out pair of opt-350m, here pre-norm
        "opt": lambda: T.OPTConfig(**{k: v for k, v in size.items() if k != "intermediate_size"}, ffn_dim=64,
                                   word_embed_proj_dim=16, max_position_embeddings=64, **ids, **init),
        "falcon": lambda: T.FalconConfig(num_hidden_layers=N_LAYERS, hidden_size=WIDTH, num_attention_heads=4,
                                         **ids, **init),
        "bert": lambda: T.BertConfig(**size, max_position_embeddings=64, **ids, **init),
        "roberta": lambda: T.RobertaConfig(**size, max_position_embeddings=64, **ids, **init),
        "albert": lambda: T.AlbertConfig(**size, embedding_size=16, max_position_embeddings=64, **ids, **init),
        "distilbert": lambda: T.DistilBertConfig(n_layers=N_LAYERS, dim=WIDTH, n_heads=4, hidden_dim=64,
                                                 max_position_embeddings=64, vocab_size=VOCAB, pad_token_id=0,
                                                 **init),
        "deberta-v2": lambda: T.DebertaV2Config(**size, max_position_embeddings=64, **ids, **init),
        "electra": lambda: T.ElectraConfig(**size, embedding_size=16, max_position_embeddings=64, **ids, **init),
        "modernbert": lambda: T.ModernBertConfig(**size, max_position_embeddings=64, cls_token_id=1,
                                                 sep_token_id=2, **ids, **init),
    }[model_type]
    config = build()
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def tiny_model(model_type: str, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides):
    """A seeded tiny random model in eval mode: the causal-LM class for a decoder, the base model for an
    encoder; its final norm (if any) gets a random gain and bias."""
    from transformers import AutoModel, AutoModelForCausalLM

    from layerwise.resources.models import final_norm

    config = tiny_config(model_type, **overrides)
    torch.manual_seed(seed)
    cls = AutoModelForCausalLM if model_type in DECODER_FAMILIES else AutoModel
    model = cls.from_config(config, dtype=dtype)
    norm = final_norm(model)
    with torch.no_grad():
        if norm is not None and getattr(norm, "weight", None) is not None:
            norm.weight.normal_(1.0 if not model_type.startswith("gemma") else 0.0, 0.5)  # Gemma's gain: 1 + w
        if norm is not None and getattr(norm, "bias", None) is not None:
            norm.bias.normal_(0.0, 0.5)
    return model.eval()


ALL_FAMILIES = DECODER_FAMILIES + ENCODER_FAMILIES
